"""Support staff's view of organizations and their diagnostic log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.models import AuditEntry, Organization

ACT_FOR_CUSTOMER = "core.act_for_customer"


def mask_secret(value: str, visible: int = 4) -> str:
    """What admin shows instead of a secret: enough to tell two apart, never enough to use."""
    if not value:
        return "—"
    return f"{value[:visible]}…" if len(value) > visible * 3 else "•" * 8


class TenantAdmin(admin.ModelAdmin):
    """Admin of tenant data for support staff [docs/security.md].

    Viewing and editing follow Django's model permissions. Actions that act for a customer
    (retry, token refresh, resync, key or secret rotation…) are declared with
    ``permissions=["act_for_customer"]``, so they need ``core.act_for_customer``. Every change
    made here is written to the organization's audit log with the staff member's name.
    """

    def has_act_for_customer_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACT_FOR_CUSTOMER))

    def audit(self, request: HttpRequest, organization: Any, action: str) -> None:
        from core.services import audit_staff_action

        audit_staff_action(organization=organization, user=request.user, action=action)

    def _organization_of(self, obj: Model) -> int | None:
        if isinstance(obj, Organization):
            return obj.pk
        return getattr(obj, "organization_id", None)

    def _audit_admin_edit(self, request: HttpRequest, obj: Model, verb: str) -> None:
        org_id = self._organization_of(obj)
        if org_id and Organization.objects.filter(pk=org_id).exists():
            self.audit(request, org_id, f"{verb} в админке: {obj._meta.verbose_name} «{obj}»")

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_admin_edit(request, obj, "добавлено")
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_admin_edit(request, obj, "изменено")
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            if not isinstance(obj, Organization):
                self._audit_admin_edit(request, obj, "удалено")
        return super().log_deletions(request, queryset)


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    list_display = (
        "name",
        "amo_account_id",
        "amo_link",
        "status",
        "installed_at",
        "disconnected_at",
    )
    list_filter = ("status", "installed_at", "disconnected_at")
    search_fields = ("name", "amo_subdomain", "amo_host", "=amo_account_id")
    # amo_host is where the client secret goes on every token refresh: set by the install flow
    # (validated referer) only, never typed in here.
    readonly_fields = (
        "amo_host",
        "access_key_masked",
        "installed_at",
        "disconnected_at",
        "created_at",
        "updated_at",
    )
    fields = (
        "name",
        "amo_account_id",
        "amo_subdomain",
        "amo_host",
        "status",
        "status_reason",
        "access_key_masked",
        "installed_at",
        "disconnected_at",
        "created_at",
        "updated_at",
    )
    date_hierarchy = "installed_at"
    actions: Any = ("rotate_access_key",)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting a customer's data is irreversible: superusers only.
        return bool(request.user.is_superuser)

    @admin.action(description=_("Выдать новый ключ доступа"), permissions=["act_for_customer"])
    def rotate_access_key(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        from core.services import organization_access_key_rotate

        for organization in queryset:
            organization_access_key_rotate(organization=organization)
            self.audit(request, organization, "выдан новый ключ доступа")
        self.message_user(request, _("Ключи заменены: %(n)s") % {"n": queryset.count()})

    @admin.display(description=_("amoCRM"), ordering="amo_host")
    def amo_link(self, obj: Organization) -> str:
        if not obj.amo_host:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.amo_url, obj.amo_host
        )

    @admin.display(description=_("ключ доступа"))
    def access_key_masked(self, obj: Organization) -> str:
        return mask_secret(obj.access_key, visible=5)


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantAdmin):
    list_display = ("created_at", "organization", "level", "kind", "message")
    list_filter = ("level", "kind", "created_at")
    search_fields = ("message", "kind", "organization__name", "=organization__amo_account_id")
    list_select_related = ("organization",)
    readonly_fields = ("created_at", "organization", "level", "kind", "message", "data")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
