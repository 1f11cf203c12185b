"""The emulated amoCRM's own data: accounts, users, OAuth grants and what the API received.

Not tenant-scoped: this is "amoCRM's" database, not ours. Ids of the main entities start in
distinct ranges (see the first migration) so an account id can never be mistaken for a user id
in a test that would otherwise pass by accident.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models

from core.fields import EncryptedTextField


class Account(models.Model):
    subdomain = models.SlugField("поддомен", max_length=63, unique=True)
    name = models.CharField("название", max_length=255)
    is_unsorted_on = models.BooleanField("неразобранное включено", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Billing and abuse state.
    unpaid = models.BooleanField("не оплачен (402)", default=False)
    ban_mode = models.BooleanField("бан при систематическом превышении лимита", default=False)
    banned_at = models.DateTimeField("заблокирован (403)", null=True, blank=True)

    # Fault knobs (see sandbox.amocrm.faults).
    down = models.BooleanField("недоступен (503)", default=False)
    latency_ms = models.PositiveIntegerField("задержка, мс", default=0)
    fail_next = models.PositiveIntegerField("провалить следующие N запросов", default=0)
    fail_status = models.PositiveSmallIntegerField("код ошибки", default=500)
    error_rate = models.FloatField("доля ошибок (0..1)", default=0.0)
    timeout = models.BooleanField("зависать дольше таймаута клиента", default=False)
    timeout_seconds = models.PositiveIntegerField("зависание, с", default=15)
    # A write is applied, but its answer is lost on the way back (the client sees a 504).
    lost_answer_rate = models.FloatField("доля записей без ответа (0..1)", default=0.0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.host})"

    @property
    def host(self) -> str:
        return f"{self.subdomain}.amocrm.ru"

    @property
    def phone_field_id(self) -> int:
        # Every account has its own id for the system PHONE field; derive a stable one.
        return 100_000 + self.pk * 10 + 1

    @property
    def email_field_id(self) -> int:
        return 100_000 + self.pk * 10 + 2


class User(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="users")
    name = models.CharField("имя", max_length=255)
    email = models.EmailField("e-mail")
    # The profile field «Телефон моб.», free text exactly as the user typed it.
    phone = models.CharField("Телефон моб.", max_length=64, blank=True)
    is_admin = models.BooleanField("администратор", default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Integration(models.Model):
    """Our public integration as registered in amoCRM (mirrors the AMOCRM_* settings)."""

    client_id = models.CharField(max_length=255, unique=True)
    client_secret = EncryptedTextField()
    name = models.CharField(max_length=255, default="Звонок Beeline")
    redirect_uri = models.URLField(max_length=500)
    disconnect_hook_url = models.URLField(max_length=500)

    def __str__(self) -> str:
        return self.name


class Installation(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="installations")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE)
    installed_at = models.DateTimeField()
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "integration"], name="sb_amo_install_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.integration_id}@{self.account_id}"

    @property
    def is_active(self) -> bool:
        return self.uninstalled_at is None


class AuthorizationCode(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="codes")
    user = models.ForeignKey(User, on_delete=models.CASCADE)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=64, unique=True)
    redirect_uri = models.URLField(max_length=500)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"code #{self.pk} ({self.account_id})"


class TokenPair(models.Model):
    """One access/refresh pair. Only hashes and the access token's jti are stored."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="token_pairs")
    user = models.ForeignKey(User, on_delete=models.CASCADE)
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE)
    access_jti = models.CharField(max_length=64, unique=True)
    access_expires_at = models.DateTimeField()
    refresh_hash = models.CharField(max_length=64, unique=True)
    refresh_expires_at = models.DateTimeField()
    refresh_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"tokens #{self.pk} ({self.account_id})"


class Tag(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="sb_amo_tag_uniq")]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=255, blank=True)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    responsible_user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_by = models.BigIntegerField(default=0)
    updated_by = models.BigIntegerField(default=0)
    # As GET /api/v4/contacts shows them: field_id, field_name, field_code, field_type, values.
    custom_fields_values = models.JSONField(default=list)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or f"Контакт #{self.pk}"


class ContactPhone(models.Model):
    """One PHONE value of a contact, with its digits for search and call matching."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="phones")
    value = models.CharField(max_length=255)
    enum_code = models.CharField(max_length=16, default="WORK")
    digits = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.value


class Call(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="calls")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="calls")
    # Set when amoCRM put the call on the contact's only open lead instead of the contact.
    lead = models.ForeignKey(
        "Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    direction = models.CharField(max_length=16)
    duration = models.PositiveIntegerField()
    source = models.CharField(max_length=255)
    phone = models.CharField(max_length=64)
    uniq = models.CharField(max_length=255, blank=True, db_index=True)
    link = models.URLField(max_length=1000, blank=True)
    call_result = models.CharField(max_length=255, blank=True)
    call_status = models.PositiveSmallIntegerField(null=True, blank=True)
    call_responsible = models.CharField(max_length=255, blank=True)
    responsible_user_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.phone} ({self.duration} s)"


class Task(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tasks")
    text = models.TextField()
    complete_till = models.BigIntegerField()
    entity_type = models.CharField(max_length=16, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    task_type_id = models.PositiveIntegerField(default=1)
    responsible_user_id = models.BigIntegerField()
    duration = models.PositiveIntegerField(default=0)
    is_completed = models.BooleanField(default=False)
    # «Результат» written when the task is completed (PATCH ``result: {text}``).
    result_text = models.TextField(blank=True)
    created_by = models.BigIntegerField(default=0)
    updated_by = models.BigIntegerField(default=0)
    request_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:50]

    @property
    def changed_at(self) -> datetime:
        return self.updated_at or self.received_at


class Lead(models.Model):
    """A deal; its pipeline and stages are fixed per account (``sandbox.amocrm.pipelines``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="leads")
    name = models.CharField(max_length=255, blank=True)
    price = models.BigIntegerField(default=0)
    pipeline_id = models.BigIntegerField()
    status_id = models.BigIntegerField()
    responsible_user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_by = models.BigIntegerField(default=0)
    updated_by = models.BigIntegerField(default=0)
    contacts = models.ManyToManyField(Contact, blank=True, related_name="leads")
    tags = models.ManyToManyField(Tag, blank=True, related_name="leads")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or f"Сделка #{self.pk}"


class Note(models.Model):
    """A note on a contact or a lead: posted through ``/{entity}/notes``, or the call note a
    ``POST /api/v4/calls`` leaves on the card it attached to."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="notes")
    entity_type = models.CharField(max_length=16)  # contacts | leads
    entity_id = models.BigIntegerField()
    note_type = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    call = models.OneToOneField(
        "Call", null=True, blank=True, on_delete=models.CASCADE, related_name="note"
    )
    responsible_user_id = models.BigIntegerField(default=0)
    created_by = models.BigIntegerField(default=0)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "entity_type", "entity_id"])]

    def __str__(self) -> str:
        return f"{self.note_type} on {self.entity_type} #{self.entity_id}"


class Event(models.Model):
    """A v2 ``phone_call`` notification (the incoming-call pop-up and the bell)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    uid = models.CharField(max_length=64)
    type = models.CharField(max_length=32)
    phone_number = models.CharField(max_length=64)
    users = models.JSONField(default=list)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} {self.phone_number}"


class UnsortedEntry(models.Model):
    """An entry of «Неразобранное»: new until a manager accepts (a lead and contact are made
    from it) or declines it; only new entries are listed by ``GET /api/v4/leads/unsorted``."""

    class Status(models.TextChoices):
        NEW = "new", "новая"
        ACCEPTED = "accepted", "принята"
        DECLINED = "declined", "отклонена"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="unsorted")
    uid = models.CharField(max_length=64, unique=True)
    category = models.CharField(max_length=16, default="sip")
    source_uid = models.CharField(max_length=255)
    source_name = models.CharField(max_length=255)
    pipeline_id = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict)
    embedded = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.BigIntegerField(null=True, blank=True)
    # What accepting made of it.
    lead = models.ForeignKey(
        "Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.uid


class ExtraPipeline(models.Model):
    """A pipeline beyond the main one every account has (``sandbox.amocrm.pipelines``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="extra_pipelines")
    name = models.CharField(max_length=255)
    # The open stages' names, in order (Unsorted, won and lost are added by the emulator).
    stage_names = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class WebhookSubscription(models.Model):
    """``POST /api/v4/webhooks``: amoCRM POSTs entity events to ``destination``."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="webhooks")
    destination = models.URLField(max_length=1000)
    settings = models.JSONField(default=list)
    sort = models.PositiveIntegerField(default=10)
    disabled = models.BooleanField(default=False)
    created_by = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "destination"], name="sb_amo_webhook_destination"
            )
        ]

    def __str__(self) -> str:
        return self.destination


class WebhookDelivery(models.Model):
    """One POST of an entity event to a subscription (shown on the account page)."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    destination = models.URLField(max_length=1000)
    event = models.CharField(max_length=40)  # the setting it was sent for, e.g. delete_contact
    body = models.TextField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event} → {self.status_code or self.error}"


class HookCall(models.Model):
    """What happened when the emulator called us (install webhook, disconnect hook)."""

    class Kind(models.TextChoices):
        INSTALL = "install", "Установка"
        UNINSTALL = "uninstall", "Отключение"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="hook_calls")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=1000)  # without the secret parts (code, signature)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    elapsed_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status_code or self.error}"


class ApiRequest(models.Model):
    """A short log of API requests per account, for the account page."""

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="api_requests"
    )
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
