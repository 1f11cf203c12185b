from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core import admin as core_admin
from core.models import Organization
from integration.delivery.operations import delivery_retry
from integration.models import (
    CallbackSettings,
    CallDelivery,
    CallSettings,
    ManagerMapping,
    MissedCall,
    RoutingRule,
)


class CallSettingsInline(admin.StackedInline):
    model = CallSettings
    can_delete = False
    extra = 0
    # Admin runs unscoped: a number picker would offer every organization's numbers.
    exclude = ("routing_numbers",)


class CallbackSettingsInline(admin.StackedInline):
    model = CallbackSettings
    can_delete = False
    extra = 0


# core registers the organization admin; the join adds the call settings to its page.
admin.site.unregister(Organization)


@admin.register(Organization)
class OrganizationAdmin(core_admin.OrganizationAdmin):
    inlines = (CallSettingsInline, CallbackSettingsInline)
    actions = (*core_admin.OrganizationAdmin.actions, "revoke_recording_links")

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
class ManagerMappingAdmin(core_admin.TenantAdmin):
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
class CallDeliveryAdmin(core_admin.TenantAdmin):
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


@admin.register(MissedCall)
class MissedCallAdmin(core_admin.TenantAdmin):
    """Support reads what call-back tracking decided; the decisions are the code's to make."""

    list_display = (
        "missed_at",
        "organization",
        "phone_national",
        "returned_at",
        "wait_seconds",
        "task_state",
        "sla_notified_at",
    )
    list_filter = ("task_state", "returned_by_client", "organization")
    search_fields = ("phone_national", "=task_id", "organization__name")
    list_select_related = ("organization",)
    date_hierarchy = "missed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
