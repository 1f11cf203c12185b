"""Beeline data per organization: credentials, abonents, numbers, subscriptions, events, calls."""

# django-stubs cannot build related managers from django-scopes' dynamic ScopedManager class;
# the reverse managers are declared by hand below instead.
# mypy: disable-error-code="django-manager-missing"

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField
from core.models import Organization
from core.tenancy import TenantModel
from pbx.xsi import XsiCall, XsiEvent

if TYPE_CHECKING:
    from django.db.models.fields.related_descriptors import RelatedManager

CallFieldValue = bool | int | str | list[str] | None


class BeelineCredentials(TenantModel):
    """The organization's Beeline API token and the secret of its event webhook URL."""

    objects: ClassVar[models.Manager[BeelineCredentials]]

    class Status(models.TextChoices):
        ACTIVE = "active", _("Работает")
        REJECTED = "rejected", _("Токен отклонён")
        FAILING = "failing", _("Ошибка связи с Beeline")

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="beeline_credentials"
    )
    api_token = EncryptedTextField(_("Beeline API Token"), blank=True, editable=False)
    status = models.CharField(
        _("статус"), max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    verified_at = models.DateTimeField(_("токен проверен"), null=True, blank=True)
    last_error = models.TextField(_("последняя ошибка"), blank=True)
    # The secret in PUBLIC_URL/beeline/events/<secret>: encrypted for building the URL again,
    # hashed (sha256) for the lookup on every incoming event.
    webhook_secret = EncryptedTextField(editable=False)
    webhook_secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    # After a rotation the previous secret keeps working until this deadline (grace period for
    # events in flight and Beeline's retries), then it is forgotten.
    previous_webhook_secret_hash = models.CharField(
        max_length=64, blank=True, default="", db_index=True, editable=False
    )
    previous_webhook_secret_valid_until = models.DateTimeField(null=True, blank=True)
    webhook_secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Subscription renewal after failures: stored, so backoff survives worker restarts.
    subscription_failures = models.PositiveIntegerField(default=0)
    # When a subscription must next be attempted without waiting for the active one's
    # renew_at: from creation (none yet), after a failure (backoff), after a termination.
    # None while an active subscription is in place. Indexed: the beat asks for the due ones.
    subscription_retry_at = models.DateTimeField(
        null=True, blank=True, db_index=True, default=timezone.now
    )
    subscription_renew_queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("подключение Beeline")
        verbose_name_plural = _("подключения Beeline")

    def __str__(self) -> str:
        return f"Beeline<{self.organization_id}>"


class Abonent(TenantModel):
    """An employee in the Beeline PBX (GET /abonents)."""

    objects: ClassVar[models.Manager[Abonent]]

    user_id = models.CharField(_("userId"), max_length=255)
    phone = models.CharField(_("телефон"), max_length=20, blank=True, db_index=True)
    first_name = models.CharField(_("имя"), max_length=255, blank=True)
    last_name = models.CharField(_("фамилия"), max_length=255, blank=True)
    email = models.CharField(_("e-mail"), max_length=255, blank=True)
    department = models.CharField(_("отдел"), max_length=255, blank=True)
    extension = models.CharField(_("добавочный"), max_length=32, blank=True)
    # False once the abonent disappeared from Beeline: kept for call history and so that a
    # returning abonent gets its manager mapping back.
    active = models.BooleanField(_("есть в АТС"), default=True, db_index=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    if TYPE_CHECKING:  # reverse managers (django-stubs cannot infer them with ScopedManager)
        calls: RelatedManager[PbxCall]
        legs: RelatedManager[PbxCallLeg]

    class Meta:
        verbose_name = _("абонент")
        verbose_name_plural = _("абоненты")
        ordering = ["phone", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user_id"], name="pbx_abonent_uniq")
        ]

    def __str__(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return f"{self.phone or self.user_id} {name}".strip()

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class PbxNumber(TenantModel):
    """An incoming (usually multichannel) number of the company (GET /numbers)."""

    objects: ClassVar[models.Manager[PbxNumber]]

    number_id = models.CharField(_("numberId"), max_length=255)
    phone = models.CharField(_("номер"), max_length=20, db_index=True)
    name = models.CharField(_("название"), max_length=255, blank=True)
    # As Beeline says (None: Beeline did not say — the confirmed /numbers payload has no such
    # field; the pipeline then treats the number as possibly multichannel, as before).
    is_multichannel = models.BooleanField(_("многоканальный"), null=True, default=None)
    synced_at = models.DateTimeField(null=True, blank=True)

    if TYPE_CHECKING:
        calls: RelatedManager[PbxCall]

    class Meta:
        verbose_name = _("номер Beeline")
        verbose_name_plural = _("номера Beeline")
        ordering = ["phone"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number_id"], name="pbx_number_uniq")
        ]

    def __str__(self) -> str:
        return self.name or self.phone

    @property
    def display_name(self) -> str:
        return self.name or self.phone


class Subscription(TenantModel):
    """A Beeline event subscription (PUT /subscription). Only one is ``active`` at a time."""

    objects: ClassVar[models.Manager[Subscription]]

    class Status(models.TextChoices):
        ACTIVE = "active", _("активна")
        REPLACED = "replaced", _("заменена")
        TERMINATED = "terminated", _("прекращена Beeline")
        DELETED = "deleted", _("удалена")

    subscription_id = models.CharField(_("subscriptionId"), max_length=128)
    status = models.CharField(
        _("статус"), max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    requested_seconds = models.PositiveIntegerField(_("запрошено, с"))
    granted_seconds = models.PositiveIntegerField(_("выдано, с"))
    expires_at = models.DateTimeField(_("истекает"))
    renew_at = models.DateTimeField(_("продлить после"), db_index=True)
    created_at = models.DateTimeField(_("создана"))
    ended_at = models.DateTimeField(_("завершена"), null=True, blank=True)

    class Meta:
        verbose_name = _("подписка на события")
        verbose_name_plural = _("подписки на события")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The renewal beat's "due" question reads only active rows, not the history.
            models.Index(
                fields=["renew_at"],
                condition=models.Q(status="active"),
                name="pbx_subscription_due_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "subscription_id"], name="pbx_subscription_uniq"
            ),
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(status="active"),
                name="pbx_subscription_one_active",
            ),
        ]

    def __str__(self) -> str:
        return self.subscription_id


class PbxEvent(TenantModel):
    """One raw XSI event as Beeline sent it; stored before any processing.

    Inserted once per webhook request, so each index costs on the hottest path: the
    organization is covered by the composite indexes (all lead with it), and the event type
    is never searched by.
    """

    objects: ClassVar[models.Manager[PbxEvent]]

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    event_id = models.CharField(_("eventID"), max_length=128)
    event_type = models.CharField(_("тип"), max_length=64)
    ext_tracking_id = models.CharField(_("extTrackingId"), max_length=128, blank=True)
    target_id = models.CharField(_("targetId"), max_length=255, blank=True)
    subscription_id = models.CharField(_("subscriptionId"), max_length=128, blank=True)
    body = models.TextField(_("тело"))
    # Indexed with the organization (pbx_event_recent_idx), which is also what pruning uses.
    received_at = models.DateTimeField(_("получено"))
    processed_at = models.DateTimeField(_("обработано"), null=True, blank=True)
    error = models.TextField(_("ошибка"), blank=True)
    # Set aside for good: the event is malformed (an unreadable body, a time or number out of
    # range), so it is left out of its call's fold — the call is built from its other events —
    # and never retried; ``error`` says why (Диагностика, the admin). A failure that is not
    # the event's fault (the database, a worker) only sets ``error`` and is retried.
    quarantined_at = models.DateTimeField(_("отложено как ошибочное"), null=True, blank=True)
    # What the call fold needs from the event: the first rebuild parses the body once and
    # fills these columns (the webhook stores only the event's head; the database defaults
    # also cover a web process still running an earlier release), so later rebuilds read
    # them instead of parsing every earlier event again.
    call_fields_stored = models.BooleanField(default=False, db_default=False)
    sequence_number = models.BigIntegerField(null=True, blank=True)
    call_id = models.CharField(_("callId"), max_length=128, blank=True, db_default="")
    personality = models.CharField(_("personality"), max_length=32, blank=True, db_default="")
    state = models.CharField(_("состояние"), max_length=32, blank=True, db_default="")
    remote_address = models.CharField(max_length=255, blank=True, db_default="")
    remote_call_type = models.CharField(max_length=32, blank=True, db_default="")
    release_cause = models.CharField(
        _("причина завершения"), max_length=64, blank=True, db_default=""
    )
    releasing_party = models.CharField(max_length=32, blank=True, db_default="")
    redirection_addresses = models.JSONField(default=list, blank=True, db_default=[])
    start_time = models.BigIntegerField(null=True, blank=True)  # epoch ms (UTC), as sent
    answer_time = models.BigIntegerField(null=True, blank=True)
    release_time = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("событие Beeline")
        verbose_name_plural = _("события Beeline")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "event_id"], name="pbx_event_uniq")
        ]
        indexes = [
            models.Index(fields=["organization", "ext_tracking_id"], name="pbx_event_call_idx"),
            models.Index(fields=["organization", "-received_at"], name="pbx_event_recent_idx"),
            # The sweeper's "stored but never processed": holds only the few live rows.
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="pbx_event_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"

    @staticmethod
    def call_fields(event: XsiEvent) -> dict[str, CallFieldValue]:
        """The columns above for a parsed event (``call_fields_stored`` included)."""
        call = event.call
        return {
            "call_fields_stored": True,
            "sequence_number": event.sequence_number,
            "call_id": call.call_id[:128] if call else "",
            "personality": call.personality[:32] if call else "",
            "state": call.state[:32] if call else "",
            "remote_address": call.remote_address[:255] if call else "",
            "remote_call_type": call.remote_call_type[:32] if call else "",
            "release_cause": call.release_cause[:64] if call else "",
            "releasing_party": call.releasing_party[:32] if call else "",
            "redirection_addresses": list(call.redirection_addresses) if call else [],
            "start_time": call.start_time if call else None,
            "answer_time": call.answer_time if call else None,
            "release_time": call.release_time if call else None,
        }

    def xsi_event(self) -> XsiEvent:
        """The event as the call fold sees it, rebuilt from the stored columns (no parsing)."""
        call = None
        if self.call_id:
            call = XsiCall(
                call_id=self.call_id,
                ext_tracking_id=self.ext_tracking_id,
                personality=self.personality,
                state=self.state,
                remote_address=self.remote_address,
                remote_call_type=self.remote_call_type,
                release_cause=self.release_cause,
                releasing_party=self.releasing_party,
                redirection_addresses=tuple(self.redirection_addresses),
                start_time=self.start_time,
                answer_time=self.answer_time,
                release_time=self.release_time,
            )
        return XsiEvent(
            event_id=self.event_id,
            event_type=self.event_type,
            sequence_number=self.sequence_number,
            subscription_id=self.subscription_id,
            target_id=self.target_id,
            call=call,
        )


class PbxCall(TenantModel):
    """One call as Beeline reported it: all events sharing an ``extTrackingId``."""

    objects: ClassVar[models.Manager[PbxCall]]

    class Direction(models.TextChoices):
        IN = "in", _("входящий")
        OUT = "out", _("исходящий")

    class Outcome(models.TextChoices):
        ANSWERED = "answered", _("отвечен")
        MISSED = "missed", _("пропущен")
        BUSY = "busy", _("занято")
        FAILED = "failed", _("не удался")

    class Status(models.TextChoices):
        RINGING = "ringing", _("звонит")
        IN_PROGRESS = "in_progress", _("идёт разговор")
        FINISHED = "finished", _("завершён")

    ext_tracking_id = models.CharField(_("extTrackingId"), max_length=128)
    direction = models.CharField(_("направление"), max_length=3, choices=Direction.choices)
    external_phone = models.CharField(_("телефон клиента (E.164)"), max_length=20, blank=True)
    external_phone_national = models.CharField(
        _("телефон клиента"), max_length=20, blank=True, db_index=True
    )
    number = models.ForeignKey(
        PbxNumber,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("многоканальный номер"),
    )
    # Indexed, like the client's number: the journal finds a whole number without a scan.
    line_phone = models.CharField(_("номер линии"), max_length=20, blank=True, db_index=True)
    abonent = models.ForeignKey(
        Abonent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("ответственный абонент"),
    )
    started_at = models.DateTimeField(_("начало"), null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(_("ответ"), null=True, blank=True)
    ended_at = models.DateTimeField(_("конец"), null=True, blank=True)
    talk_seconds = models.PositiveIntegerField(_("разговор, с"), default=0)
    outcome = models.CharField(_("итог"), max_length=10, choices=Outcome.choices, blank=True)
    status = models.CharField(
        _("состояние"), max_length=12, choices=Status.choices, default=Status.RINGING
    )
    finished_at = models.DateTimeField(_("все плечи завершены"), null=True, blank=True)
    handed_off_at = models.DateTimeField(_("передан дальше"), null=True, blank=True)
    recovered = models.BooleanField(_("восстановлен по статистике"), default=False)
    # A recovered call whose events came after all (a worker's backlog, Beeline sending late):
    # their extTrackingId. Those events fold into this call instead of making a second one;
    # ``ext_tracking_id`` keeps the synthetic id the call was handed on (and posted) under.
    events_tracking_id = models.CharField(
        _("extTrackingId событий"), max_length=128, blank=True, default="", db_default=""
    )
    recording_user_id = models.CharField(_("userId записи"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    if TYPE_CHECKING:
        legs: RelatedManager[PbxCallLeg]

    class Meta:
        verbose_name = _("звонок")
        verbose_name_plural = _("звонки")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "ext_tracking_id"], name="pbx_call_uniq"
            ),
            # One call per tracking id of events, joined or not (the fold's lock on the
            # tracking id decides which; this makes a second join impossible).
            models.UniqueConstraint(
                fields=["organization", "events_tracking_id"],
                condition=~models.Q(events_tracking_id=""),
                name="pbx_call_events_tracking_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "finished_at"],
                condition=models.Q(handed_off_at__isnull=True),
                name="pbx_call_to_finalize_idx",
            ),
            # The journal (newest first) and the Dashboard (a date range) of one
            # organization, however long its history.
            models.Index(
                fields=["organization", "-started_at", "-id"],
                condition=models.Q(status="finished"),
                name="pbx_call_journal_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.external_phone or '?'} {self.ext_tracking_id}"

    @property
    def beeline_tracking_id(self) -> str:
        """The call's extTrackingId at Beeline (recordings are filed under it): the events'
        for a recovered call they reached later, else the call's own."""
        return self.events_tracking_id or self.ext_tracking_id


class PbxCallLeg(TenantModel):
    """One abonent's (or number's) side of a call: ``(targetId, callId)``."""

    objects: ClassVar[models.Manager[PbxCallLeg]]

    # Not named "call": "call_id" is the XSI callId of the leg (the brief's interface).
    pbx_call = models.ForeignKey(PbxCall, on_delete=models.CASCADE, related_name="legs")
    target_id = models.CharField(_("targetId"), max_length=255)
    call_id = models.CharField(_("callId"), max_length=128)
    abonent = models.ForeignKey(
        Abonent, on_delete=models.SET_NULL, null=True, blank=True, related_name="legs"
    )
    personality = models.CharField(_("personality"), max_length=32, blank=True)
    state = models.CharField(_("состояние"), max_length=16)
    started_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_cause = models.CharField(_("причина завершения"), max_length=64, blank=True)
    releasing_party = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = _("плечо звонка")
        verbose_name_plural = _("плечи звонка")
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pbx_call", "target_id", "call_id"], name="pbx_leg_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.target_id} {self.call_id} {self.state}"
