from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import TenantAdmin, mask_secret
from crm import services
from crm.errors import AmoError
from crm.models import AmoAccountState, AmoCredentials, AmoUser, ContactIndex


@admin.register(AmoCredentials)
class AmoCredentialsAdmin(TenantAdmin):
    list_display = (
        "organization",
        "status",
        "expires_at",
        "refreshed_at",
        "access_token_masked",
        "last_error",
    )
    list_filter = ("status", "expires_at", "refreshed_at")
    search_fields = ("organization__name", "=organization__amo_account_id", "last_error")
    list_select_related = ("organization",)
    fields = (
        "organization",
        "status",
        "expires_at",
        "refreshed_at",
        "access_token_masked",
        "refresh_token_masked",
        "last_error",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ("refresh_now", "resync_users")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("access token"))
    def access_token_masked(self, obj: AmoCredentials) -> str:
        return mask_secret(obj.access_token)

    @admin.display(description=_("refresh token"))
    def refresh_token_masked(self, obj: AmoCredentials) -> str:
        return mask_secret(obj.refresh_token)

    @admin.action(description=_("Обновить токен сейчас"), permissions=["act_for_customer"])
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[AmoCredentials]) -> None:
        for creds in queryset.select_related("organization"):
            self.audit(request, creds.organization, "обновление токена amoCRM")
            try:
                services.amo_tokens_refresh(organization=creds.organization, force=True)
            except AmoError as exc:
                self.message_user(
                    request, f"{creds.organization}: {exc.message}", level=messages.ERROR
                )
            else:
                self.message_user(request, f"{creds.organization}: {_('токен обновлён')}")

    @admin.action(
        description=_("Перезагрузить пользователей amoCRM"), permissions=["act_for_customer"]
    )
    def resync_users(self, request: HttpRequest, queryset: QuerySet[AmoCredentials]) -> None:
        for creds in queryset.select_related("organization"):
            self.audit(request, creds.organization, "загрузка пользователей amoCRM")
            try:
                users = services.amo_users_refresh(organization=creds.organization)
            except AmoError as exc:
                self.message_user(
                    request, f"{creds.organization}: {exc.message}", level=messages.ERROR
                )
            else:
                self.message_user(request, f"{creds.organization}: {len(users)}")


@admin.register(AmoAccountState)
class AmoAccountStateAdmin(TenantAdmin):
    list_display = ("organization", "paused_reason", "paused_at", "paused_detail", "updated_at")
    list_filter = ("paused_reason", "paused_at")
    search_fields = ("organization__name", "=organization__amo_account_id")
    list_select_related = ("organization",)
    readonly_fields = ("organization", "paused_at", "paused_detail", "updated_at")
    actions = ("resume",)

    @admin.action(description=_("Возобновить отправку в amoCRM"), permissions=["act_for_customer"])
    def resume(self, request: HttpRequest, queryset: QuerySet[AmoAccountState]) -> None:
        resumed = 0
        for state in queryset.select_related("organization"):
            if services.amo_resume(organization=state.organization):
                resumed += 1
                self.audit(request, state.organization, "возобновлена отправка в amoCRM")
        self.message_user(request, _("Возобновлено: %d") % resumed)


@admin.register(AmoUser)
class AmoUserAdmin(TenantAdmin):
    list_display = (
        "name",
        "amo_id",
        "organization",
        "email",
        "phone_national",
        "is_admin",
        "active",
        "fetched_at",
    )
    list_filter = ("active", "is_admin", "fetched_at")
    search_fields = ("name", "email", "phone_national", "=amo_id", "organization__name")
    list_select_related = ("organization",)
    readonly_fields = ("fetched_at",)


@admin.register(ContactIndex)
class ContactIndexAdmin(TenantAdmin):
    list_display = ("phone_national", "contact_id", "organization", "created_by_us", "created_at")
    list_filter = ("created_by_us", "created_at")
    search_fields = ("phone_national", "=contact_id", "organization__name")
    list_select_related = ("organization",)
