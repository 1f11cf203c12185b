"""State of the Beeline Cloud PBX emulator (not tenant data: the sandbox plays the vendor).

One ``Pbx`` is one Beeline company account, found by its API token. Field names follow the
portal API (docs/beeline-api.md) where they are exposed; everything else is emulator bookkeeping.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Pbx(models.Model):
    name = models.CharField(_("название"), max_length=200)
    # The portal shows the token in clear too; it is a sandbox value, never a real secret.
    token = models.CharField(_("API-токен"), max_length=64, unique=True)
    # Digits that appear in the envelope ids (userId, externalApplicationId) of every event.
    account_id = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    # Fault knobs (the same set as the amoCRM emulator).
    latency_ms = models.PositiveIntegerField(_("задержка, мс"), default=0)
    fail_next = models.PositiveIntegerField(_("ошибка на следующих N запросах"), default=0)
    fail_status = models.PositiveSmallIntegerField(_("статус ошибки"), default=500)
    error_rate = models.FloatField(_("доля ошибок 5xx (0..1)"), default=0.0)
    timeout = models.BooleanField(_("таймаут"), default=False)
    down = models.BooleanField(_("недоступен (503)"), default=False)

    class Meta:
        verbose_name = _("АТС (песочница)")
        verbose_name_plural = _("АТС (песочница)")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    @property
    def external_application_id(self) -> str:
        return f"{self.account_id}_{self.token.replace('-', '')[:32]}"


class Abonent(models.Model):
    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="abonents")
    user_id = models.CharField("userId", max_length=200)
    phone = models.CharField(_("телефон (10 цифр)"), max_length=10)
    first_name = models.CharField(_("имя"), max_length=100, blank=True)
    last_name = models.CharField(_("фамилия"), max_length=100)
    email = models.CharField(max_length=200, blank=True)
    department = models.CharField(_("отдел"), max_length=200, blank=True)
    extension = models.CharField(_("добавочный"), max_length=10, blank=True)
    recording = models.BooleanField(_("запись разговоров"), default=True)
    # Call forwarding (docs/beeline-api.md §2): unconditional/busy/unavailable/no-answer numbers
    # (``cfb``, keys as the API names them) and the selective rules' on/off switch.
    cfb_enabled = models.BooleanField(_("переадресация"), default=False)
    cfb = models.JSONField(default=dict, blank=True)
    cfs_enabled = models.BooleanField(_("выборочная переадресация"), default=False)

    class Meta:
        ordering = ["phone"]
        constraints = [
            models.UniqueConstraint(fields=["pbx", "user_id"], name="sbx_abonent_user_id"),
            models.UniqueConstraint(fields=["pbx", "phone"], name="sbx_abonent_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.phone})".strip()

    def as_api(self) -> dict[str, str]:
        data = {"userId": self.user_id, "phone": self.phone, "lastName": self.last_name}
        for key, value in (
            ("firstName", self.first_name),
            ("email", self.email),
            ("department", self.department),
            ("extension", self.extension),
        ):
            if value:
                data[key] = value
        return data


class Number(models.Model):
    """An incoming number of the company; multichannel ones ring a group of abonents."""

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="numbers")
    number_id = models.CharField("numberId", max_length=200)
    phone = models.CharField(_("номер (10 цифр)"), max_length=10)
    name = models.CharField(_("название"), max_length=200, blank=True)
    multichannel = models.BooleanField(_("многоканальный"), default=False)
    members = models.ManyToManyField(Abonent, blank=True, related_name="numbers")
    # ICR switched on for this number (PUT/DELETE /icr/numbers): calls to it follow /icr/route.
    icr_enabled = models.BooleanField(_("ICR"), default=False)

    class Meta:
        ordering = ["phone"]
        constraints = [
            models.UniqueConstraint(fields=["pbx", "phone"], name="sbx_number_phone"),
        ]

    def __str__(self) -> str:
        return f"+7{self.phone} {self.name}".strip()


class IcrRoute(models.Model):
    """One ICR rule (``/icr/route``): calls from ``inbound_number`` go to ``extension``.

    The meaning ("personal manager" routing) is a GUESS (docs/beeline-api.md §3); the routing
    feature reads these rules back through the API.
    """

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="icr_routes")
    inbound_number = models.CharField(_("номер клиента"), max_length=40)
    inbound_national = models.CharField(max_length=10)
    extension = models.CharField(_("добавочный"), max_length=10)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pbx", "inbound_national"], name="sbx_icr_route_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.inbound_number} → {self.extension}"


class IcrResult(models.Model):
    """The per-item result of one ICR write (``/icr/route`` or ``/icr/numbers``), as answered:
    ``SUCCESS``, or ``FAULT`` with Beeline's ``{errorCode, description}``. The page shows them."""

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="icr_results")
    action = models.CharField(max_length=20)  # route add/update/delete, numbers enable/disable
    inbound_number = models.CharField(max_length=60, blank=True)
    extension = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=8)
    error_code = models.CharField(max_length=60, blank=True)
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.inbound_number} {self.status}"


class CfsRule(models.Model):
    """A selective forwarding rule of an abonent (``/abonents/{pattern}/cfs``)."""

    class Schedule(models.TextChoices):
        ROUND_THE_CLOCK = "ROUND_THE_CLOCK"
        WORKING_TIME = "WORKING_TIME"
        NON_WORKING_TIME_AND_HOLIDAYS = "NON_WORKING_TIME_AND_HOLIDAYS"

    abonent = models.ForeignKey(Abonent, on_delete=models.CASCADE, related_name="cfs_rules")
    name = models.CharField(max_length=200)
    forward_to_phone = models.CharField(max_length=40)
    schedule = models.CharField(max_length=40, choices=Schedule.choices)
    phone_list = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    # Rule ids are strings of digits in the API, in their own range.
    ID_OFFSET = 7_300_000

    @property
    def api_id(self) -> str:
        return str(self.ID_OFFSET + self.pk)

    @classmethod
    def pk_from_api_id(cls, api_id: str) -> int | None:
        return int(api_id) - cls.ID_OFFSET if api_id.isdigit() else None


class Subscription(models.Model):
    class TargetType(models.TextChoices):
        GROUP = "GROUP"
        ABONENT = "ABONENT"
        NUMBER = "NUMBER"

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="subscriptions")
    subscription_id = models.CharField("subscriptionId", max_length=36, unique=True)
    pattern = models.CharField(max_length=200, blank=True)
    target_type = models.CharField(max_length=10, choices=TargetType.choices)
    target_id = models.CharField("targetId", max_length=200)
    subscription_type = models.CharField("subscriptionType", max_length=20)
    url = models.URLField(max_length=1000)
    expires_requested = models.PositiveIntegerField()
    expires_granted = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    # Last sequenceNumber used: a per-subscription counter, as in the XSI envelope.
    sequence = models.PositiveIntegerField(default=0)
    # BroadWorks' technical subscriber id (envelope ``userId``), one per subscription.
    subscriber_user_id = models.CharField(max_length=200)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.subscription_id


class Record(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "INBOUND"
        OUTBOUND = "OUTBOUND"

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="records")
    ext_tracking_id = models.CharField("externalId", max_length=36, db_index=True)
    abonent = models.ForeignKey(Abonent, on_delete=models.CASCADE, related_name="records")
    phone = models.CharField(_("номер клиента (10 цифр)"), max_length=10)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    date = models.DateTimeField(_("начало разговора"))
    duration_ms = models.PositiveIntegerField()
    ready_at = models.DateTimeField(_("готова с"))

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.ext_tracking_id} / {self.abonent.user_id}"

    # Record ids are strings of digits in the API; ours grow with the primary key so that the
    # ``id`` cursor of GET /records ("after this id") keeps its meaning.
    ID_OFFSET = 431_700_000

    @property
    def api_id(self) -> str:
        return str(self.ID_OFFSET + self.pk)

    @classmethod
    def pk_from_api_id(cls, api_id: str) -> int | None:
        return int(api_id) - cls.ID_OFFSET if api_id.isdigit() else None


class StatisticsRow(models.Model):
    class Status(models.TextChoices):
        PLACED = "PLACED"
        RECIEVED = "RECIEVED"  # sic: Beeline's spelling (docs/beeline-api.md §8)
        MISSED = "MISSED"
        REDIRECTED = "REDIRECTED"

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="statistics")
    abonent = models.ForeignKey(Abonent, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField(db_index=True)
    direction = models.CharField(max_length=8, choices=Record.Direction.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    phone_from = models.CharField(max_length=20)
    phone_to = models.CharField(max_length=20)
    duration_ms = models.PositiveIntegerField()
    # Kept for the sandbox page only: the API does not expose it (not CONFIRMED to exist).
    ext_tracking_id = models.CharField(max_length=36)

    class Meta:
        ordering = ["start", "id"]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} {self.direction} {self.status}"


class ClickToCall(models.Model):
    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="click_to_calls")
    pattern = models.CharField(max_length=200)
    abonent = models.ForeignKey(Abonent, on_delete=models.SET_NULL, null=True, related_name="+")
    phone_number = models.CharField(max_length=40)
    created_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField()
    ext_tracking_id = models.CharField(max_length=36, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.phone_number}"


class DeliveredEvent(models.Model):
    """One POST of one XSI event document to one subscription URL (the page shows the log)."""

    pbx = models.ForeignKey(Pbx, on_delete=models.CASCADE, related_name="delivered_events")
    subscription = models.ForeignKey(
        Subscription, on_delete=models.SET_NULL, null=True, related_name="deliveries"
    )
    url = models.URLField(max_length=1000)
    event_type = models.CharField(max_length=60)
    event_id = models.CharField(max_length=36)
    ext_tracking_id = models.CharField(max_length=36, blank=True, db_index=True)
    target_id = models.CharField(max_length=200)
    body = models.TextField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.status_code or self.error}"
