from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from integration.models import (
    AuditEntry,
    CallDelivery,
    CallSettings,
    ManagerMapping,
    Organization,
)


def mask_secret(value: str, visible: int = 4) -> str:
    """What admin shows instead of a secret: enough to tell two apart, never enough to use."""
    if not value:
        return "—"
    return f"{value[:visible]}…" if len(value) > visible * 3 else "•" * 8


ACT_FOR_CUSTOMER = "integration.act_for_customer"


class TenantAdmin(admin.ModelAdmin):
    """Admin of tenant data for support staff [docs/security.md].

    Viewing and editing follow Django's model permissions. Actions that act for a customer
    (retry, token refresh, resync, key or secret rotation…) are declared with
    ``permissions=["act_for_customer"]``, so they need ``integration.act_for_customer``. Every
    change made here is written to the organization's audit log with the staff member's name.
    """

    def has_act_for_customer_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACT_FOR_CUSTOMER))

    def audit(self, request: HttpRequest, organization: Any, action: str) -> None:
        from integration.services import audit_staff_action

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


class CallSettingsInline(admin.StackedInline):
    model = CallSettings
    can_delete = False
    extra = 0


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
    inlines = (CallSettingsInline,)
    date_hierarchy = "installed_at"
    actions = ("rotate_access_key", "revoke_recording_links")

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting a customer's data is irreversible: superusers only.
        return bool(request.user.is_superuser)

    @admin.action(description=_("Выдать новый ключ доступа"), permissions=["act_for_customer"])
    def rotate_access_key(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        from integration.services import organization_access_key_rotate

        for organization in queryset:
            organization_access_key_rotate(organization=organization)
            self.audit(request, organization, "выдан новый ключ доступа")
        self.message_user(request, _("Ключи заменены: %(n)s") % {"n": queryset.count()})

    @admin.action(
        description=_("Отозвать ссылки на записи разговоров"), permissions=["act_for_customer"]
    )
    def revoke_recording_links(
        self, request: HttpRequest, queryset: QuerySet[Organization]
    ) -> None:
        from pbx.recording_links import recording_links_revoke

        for organization in queryset:
            recording_links_revoke(organization=organization)
            self.audit(request, organization, "отозваны ссылки на записи разговоров")
        self.message_user(request, _("Ссылки отозваны: %(n)s") % {"n": queryset.count()})

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


class MappedFilter(admin.SimpleListFilter):
    title = _("менеджер amoCRM")
    parameter_name = "mapped"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", str(_("выбран"))), ("no", str(_("«Нет»")))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ManagerMapping]) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(amo_user_id__isnull=False)
        if self.value() == "no":
            return queryset.filter(amo_user_id__isnull=True)
        return queryset


@admin.register(ManagerMapping)
class ManagerMappingAdmin(TenantAdmin):
    list_display = ("organization", "abonent", "enabled", "amo_user_id", "updated_at")
    list_filter = ("enabled", MappedFilter, "organization")
    search_fields = (
        "abonent__phone",
        "abonent__last_name",
        "=amo_user_id",
        "organization__name",
        "=organization__amo_account_id",
    )
    list_select_related = ("organization", "abonent")
    raw_id_fields = ("abonent",)
    readonly_fields = ("updated_at",)


@admin.register(CallDelivery)
class CallDeliveryAdmin(TenantAdmin):
    """Support's view of the pipeline: what became of each call, and «retry» for failed ones."""

    list_display = (
        "created_at",
        "organization",
        "pbx_call",
        "status",
        "contact_id",
        "amo_call_id",
        "task_id",
        "attempts",
        "last_error",
    )
    list_filter = ("status", "call_state", "task_state", "created_at")
    search_fields = (
        "pbx_call__ext_tracking_id",
        "pbx_call__external_phone_national",
        "organization__name",
        "=organization__amo_account_id",
        "=contact_id",
    )
    list_select_related = ("organization", "pbx_call")
    date_hierarchy = "created_at"
    actions = ("retry_deliveries",)
    readonly_fields = [f.name for f in CallDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Повторить передачу в amoCRM"), permissions=["act_for_customer"])
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet[CallDelivery]) -> None:
        from integration.pipeline import delivery_retry

        retried = 0
        for delivery in queryset.select_related("organization"):
            if delivery_retry(organization=delivery.organization, call_id=delivery.pbx_call_id):
                retried += 1
                self.audit(
                    request,
                    delivery.organization,
                    f"повтор передачи звонка #{delivery.pbx_call_id} в amoCRM",
                )
        self.message_user(request, _("Поставлено в очередь: %(n)s") % {"n": retried})
