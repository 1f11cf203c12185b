from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from integration.models import (
    AuditEntry,
    CallDelivery,
    CallSettings,
    ManagerMapping,
    Organization,
    RoutingRule,
)


def mask_secret(value: str, visible: int = 4) -> str:
    """What admin shows instead of a secret: enough to tell two apart, never enough to use."""
    if not value:
        return "—"
    return f"{value[:visible]}…" if len(value) > visible * 3 else "•" * 8


class CallSettingsInline(admin.StackedInline):
    model = CallSettings
    can_delete = False
    extra = 0
    # Admin runs unscoped: a number picker would offer every organization's numbers.
    exclude = ("routing_numbers",)


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
    inlines = (CallSettingsInline,)
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
class ManagerMappingAdmin(admin.ModelAdmin):
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
class CallDeliveryAdmin(admin.ModelAdmin):
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

    @admin.action(description=_("Повторить передачу в amoCRM"))
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet[CallDelivery]) -> None:
        from integration.pipeline import delivery_retry

        retried = 0
        for delivery in queryset.select_related("organization"):
            retried += delivery_retry(
                organization=delivery.organization, call_id=delivery.pbx_call_id
            )
        self.message_user(request, _("Поставлено в очередь: %(n)s") % {"n": retried})


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    """«Звонок ответственному»: the ICR rules Beetel keeps, read-only (the sync owns them)."""

    list_display = (
        "organization",
        "phone_national",
        "extension",
        "state",
        "contact_id",
        "amo_user_id",
        "last_error",
        "updated_at",
    )
    list_filter = ("state",)
    search_fields = ("phone_national", "organization__name", "=organization__amo_account_id")
    list_select_related = ("organization",)
    readonly_fields = [f.name for f in RoutingRule._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
