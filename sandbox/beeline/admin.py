from __future__ import annotations

from django.contrib import admin

from sandbox.beeline.models import Abonent, DeliveredEvent, Number, Pbx, Record, Subscription


@admin.register(Pbx)
class PbxAdmin(admin.ModelAdmin):
    list_display = ("name", "token", "down", "timeout", "fail_next", "created_at")


@admin.register(Abonent)
class AbonentAdmin(admin.ModelAdmin):
    list_display = ("user_id", "phone", "first_name", "last_name", "extension", "pbx")


@admin.register(Number)
class NumberAdmin(admin.ModelAdmin):
    list_display = ("phone", "name", "multichannel", "pbx")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("subscription_id", "target_type", "url", "expires_at", "terminated_at")


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("ext_tracking_id", "abonent", "direction", "duration_ms", "ready_at")


@admin.register(DeliveredEvent)
class DeliveredEventAdmin(admin.ModelAdmin):
    list_display = ("sent_at", "event_type", "target_id", "status_code", "error")
