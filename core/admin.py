"""Support staff's view of organizations and their diagnostic log."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.models import AuditEntry, Organization


def mask_secret(value: str, visible: int = 4) -> str:
    """What admin shows instead of a secret: enough to tell two apart, never enough to use."""
    if not value:
        return "—"
    return f"{value[:visible]}…" if len(value) > visible * 3 else "•" * 8


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
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
    readonly_fields = (
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
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "level", "kind", "message")
    list_filter = ("level", "kind", "created_at")
    search_fields = ("message", "kind", "organization__name", "=organization__amo_account_id")
    list_select_related = ("organization",)
    readonly_fields = ("created_at", "organization", "level", "kind", "message", "data")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
