from __future__ import annotations

from django.contrib import admin

from core.admin import mask_secret
from sandbox.amocrm.models import Account, Call, Contact, Event, Integration, Task, User


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "subdomain", "unpaid", "down", "banned_at", "created_at")
    search_fields = ("name", "subdomain", "=id")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "email", "phone", "is_admin", "account")
    list_select_related = ("account",)


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ("client_id", "name", "redirect_uri", "secret_masked")
    exclude = ("client_secret",)

    @admin.display(description="client secret")
    def secret_masked(self, obj: Integration) -> str:
        return mask_secret(obj.client_secret)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "account", "responsible_user", "created_at")
    list_select_related = ("account", "responsible_user")


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "direction", "phone", "duration", "call_status", "uniq")
    list_select_related = ("account",)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "text", "responsible_user_id", "complete_till")
    list_select_related = ("account",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "type", "phone_number", "received_at")
    list_select_related = ("account",)
