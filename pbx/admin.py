from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import TenantAdmin, mask_secret
from pbx import subscriptions
from pbx.connection import pbx_sync
from pbx.errors import BeelineError, BeelineNotConfigured
from pbx.models import (
    Abonent,
    BeelineCredentials,
    PbxCall,
    PbxCallLeg,
    PbxEvent,
    PbxNumber,
    Subscription,
)
from pbx.subscriptions import subscription_renew
from pbx.xsi import xsi_body_scrub

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@admin.register(BeelineCredentials)
class BeelineCredentialsAdmin(TenantAdmin):
    list_display = ("organization", "status", "token_masked", "verified_at", "last_error")
    list_filter = ("status", "verified_at")
    search_fields = ("organization__name", "=organization__amo_account_id", "last_error")
    list_select_related = ("organization",)
    readonly_fields = (
        "organization",
        "token_masked",
        "verified_at",
        "last_error",
        "subscription_failures",
        "subscription_retry_at",
        "subscription_renew_queued_at",
        "created_at",
        "updated_at",
    )
    fields = ("status", *readonly_fields)
    actions = ("resync_abonents", "renew_subscription", "rotate_webhook_secret")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are saved through the cabinet, which verifies them

    @admin.display(description=_("Beeline API Token"))
    def token_masked(self, obj: BeelineCredentials) -> str:
        return mask_secret(obj.api_token)

    @admin.action(
        description=_("Обновить абонентов и номера из Beeline"), permissions=["act_for_customer"]
    )
    def resync_abonents(self, request: HttpRequest, queryset: QuerySet[BeelineCredentials]) -> None:
        for credentials in queryset.select_related("organization"):
            self.audit(request, credentials.organization, "обновление абонентов из Beeline")
            try:
                abonents, numbers = pbx_sync(organization=credentials.organization)
            except (BeelineError, BeelineNotConfigured) as exc:
                self.message_user(request, f"{credentials.organization}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(org)s: абонентов %(a)s, номеров %(n)s")
                    % {"org": credentials.organization, "a": abonents, "n": numbers},
                )

    @admin.action(description=_("Продлить подписку на события"), permissions=["act_for_customer"])
    def renew_subscription(
        self, request: HttpRequest, queryset: QuerySet[BeelineCredentials]
    ) -> None:
        for credentials in queryset.select_related("organization"):
            self.audit(request, credentials.organization, "продление подписки Beeline")
            try:
                subscription = subscription_renew(organization=credentials.organization)
            except (BeelineError, BeelineNotConfigured) as exc:
                self.message_user(request, f"{credentials.organization}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(org)s: подписка до %(until)s")
                    % {"org": credentials.organization, "until": subscription.expires_at},
                )

    @admin.action(
        description=_("Сменить секрет адреса событий (переподписка в Beeline)"),
        permissions=["act_for_customer"],
    )
    def rotate_webhook_secret(
        self, request: HttpRequest, queryset: QuerySet[BeelineCredentials]
    ) -> None:
        for credentials in queryset.select_related("organization"):
            try:
                subscriptions.webhook_secret_rotate(organization=credentials.organization)
            except (BeelineError, BeelineNotConfigured) as exc:
                self.message_user(request, f"{credentials.organization}: {exc}", messages.ERROR)
            else:
                self.audit(request, credentials.organization, "сменён секрет адреса событий")
                self.message_user(
                    request, _("%(org)s: секрет сменён") % {"org": credentials.organization}
                )


@admin.register(Abonent)
class AbonentAdmin(TenantAdmin):
    list_display = (
        "phone",
        "first_name",
        "last_name",
        "extension",
        "department",
        "organization",
        "active",
    )
    list_filter = ("active", "department")
    search_fields = (
        "phone",
        "user_id",
        "first_name",
        "last_name",
        "email",
        "extension",
        "organization__name",
    )
    list_select_related = ("organization",)
    readonly_fields = ("organization", "user_id", "synced_at")


@admin.register(PbxNumber)
class PbxNumberAdmin(TenantAdmin):
    list_display = ("phone", "name", "is_multichannel", "organization", "synced_at")
    list_filter = ("is_multichannel",)
    search_fields = ("phone", "name", "number_id", "organization__name")
    list_select_related = ("organization",)
    readonly_fields = ("organization", "number_id", "synced_at")


@admin.register(Subscription)
class SubscriptionAdmin(TenantAdmin):
    list_display = (
        "subscription_id",
        "organization",
        "status",
        "granted_seconds",
        "expires_at",
        "renew_at",
        "created_at",
    )
    list_filter = ("status", "created_at")
    search_fields = ("subscription_id", "organization__name")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class QuarantinedFilter(admin.SimpleListFilter):
    """Malformed events set aside (left out of their calls' folds, never retried)."""

    title = _("отложено как ошибочное?")
    parameter_name = "quarantined"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return [("yes", _("Да")), ("no", _("Нет"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(quarantined_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(quarantined_at__isnull=True)
        return queryset


@admin.register(PbxEvent)
class PbxEventAdmin(TenantAdmin):
    list_display = (
        "received_at",
        "organization",
        "event_type",
        "ext_tracking_id",
        "target_id",
        "processed_at",
        "quarantined_at",
        "error",
    )
    list_filter = (
        QuarantinedFilter,
        "event_type",
        "received_at",
        ("error", admin.EmptyFieldListFilter),
    )
    search_fields = ("=event_id", "=ext_tracking_id", "target_id", "organization__name")
    list_select_related = ("organization",)
    date_hierarchy = "received_at"
    readonly_fields = (
        "organization",
        "event_id",
        "event_type",
        "ext_tracking_id",
        "target_id",
        "subscription_id",
        "body_scrubbed",
        "received_at",
        "processed_at",
        "quarantined_at",
        "error",
    )
    fields = readonly_fields  # the raw body is never a form field

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("тело"))
    def body_scrubbed(self, obj: PbxEvent) -> str:
        # Bodies stored before scrubbing existed still carry the callback URL: never shown.
        return xsi_body_scrub(obj.body)


class PbxCallLegInline(admin.TabularInline):
    model = PbxCallLeg
    extra = 0
    can_delete = False
    fields = (
        "target_id",
        "call_id",
        "abonent",
        "personality",
        "state",
        "started_at",
        "answered_at",
        "released_at",
        "release_cause",
    )
    readonly_fields = fields


@admin.register(PbxCall)
class PbxCallAdmin(TenantAdmin):
    list_display = (
        "started_at",
        "organization",
        "direction",
        "external_phone",
        "abonent",
        "number",
        "outcome",
        "talk_seconds",
        "status",
        "handed_off_at",
        "recovered",
    )
    list_filter = ("direction", "outcome", "status", "recovered", "started_at")
    search_fields = (
        "=ext_tracking_id",
        "=events_tracking_id",
        "external_phone_national",
        "external_phone",
        "organization__name",
    )
    list_select_related = ("organization", "abonent", "number")
    date_hierarchy = "started_at"
    inlines = (PbxCallLegInline,)
    readonly_fields = tuple(
        f.name for f in PbxCall._meta.get_fields() if f.concrete and not f.primary_key
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
