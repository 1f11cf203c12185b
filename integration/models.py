"""The join's state: call settings, manager mapping, and what became of each call in amoCRM."""

from __future__ import annotations

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import Organization
from core.tenancy import TenantModel


class CallSettings(TenantModel):
    """The seven switches of «Настройки звонков», all on by default.

    See docs/architecture.md «The seven call settings».
    """

    objects: ClassVar[models.Manager[CallSettings]]

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="call_settings"
    )
    notify_incoming = models.BooleanField(_("Уведомления при входящих звонках"), default=True)
    create_contact_incoming = models.BooleanField(
        _("Создание контакта при входящих звонках"), default=True
    )
    log_call_incoming = models.BooleanField(
        _("Добавление звонка при входящих звонках"), default=True
    )
    notify_outgoing = models.BooleanField(_("Уведомления при исходящих звонках"), default=True)
    create_contact_outgoing = models.BooleanField(
        _("Создание контакта при исходящих звонках"), default=True
    )
    log_call_outgoing = models.BooleanField(
        _("Добавление звонка при исходящих звонках"), default=True
    )
    create_task_missed = models.BooleanField(
        _("Создание задач (перезвонить) при пропущенных звонках"), default=True
    )
    # The seven switches in the manual's order (docs/architecture.md «The seven call settings»).
    SWITCHES = (
        "notify_incoming",
        "create_contact_incoming",
        "log_call_incoming",
        "notify_outgoing",
        "create_contact_outgoing",
        "log_call_outgoing",
        "create_task_missed",
    )
    # Beyond the manual (docs/architecture.md «Options beyond the manual»): off by default.
    routing_enabled = models.BooleanField(_("Звонок ответственному"), default=False)
    routing_numbers = models.ManyToManyField(
        "pbx.PbxNumber", blank=True, related_name="+", verbose_name=_("номера для маршрутизации")
    )
    unsorted_enabled = models.BooleanField(
        _("Звонки с неизвестных номеров — в «Неразобранное»"), default=False
    )
    unsorted_pipeline_id = models.BigIntegerField(
        _("воронка для «Неразобранного»"), null=True, blank=True
    )
    lead_enabled = models.BooleanField(_("Сделка для нового клиента"), default=False)
    lead_pipeline_id = models.BigIntegerField(_("воронка сделки"), null=True, blank=True)
    lead_status_id = models.BigIntegerField(_("этап сделки"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("настройки звонков")
        verbose_name_plural = _("настройки звонков")

    def __str__(self) -> str:
        return f"CallSettings<{self.organization_id}>"


class ManagerMapping(TenantModel):
    """«Менеджеры»: which amoCRM user answers for a Beeline abonent, and whether it takes part.

    One row per abonent; an amoCRM user is mapped to at most one abonent (click-to-call must know
    which number rings). ``amo_user_id`` NULL is «Нет»: the number's calls have no manager.
    """

    objects: ClassVar[models.Manager[ManagerMapping]]

    abonent = models.ForeignKey(
        "pbx.Abonent", on_delete=models.CASCADE, related_name="manager_mappings"
    )
    amo_user_id = models.BigIntegerField(_("менеджер amoCRM (ID)"), null=True, blank=True)
    enabled = models.BooleanField(_("Вкл."), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("сопоставление менеджера")
        verbose_name_plural = _("сопоставления менеджеров")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "abonent"], name="integration_mapping_abonent_uniq"
            ),
            models.UniqueConstraint(
                fields=["organization", "amo_user_id"],
                condition=models.Q(amo_user_id__isnull=False),
                name="integration_mapping_amo_user_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"ManagerMapping<{self.abonent_id}→{self.amo_user_id or '—'}>"

    def clean(self) -> None:
        # Admin edits rows unscoped: never let a mapping point at another tenant's abonent.
        if self.abonent_id and self.organization_id:
            if self.abonent.organization_id != self.organization_id:
                raise ValidationError({"abonent": _("Абонент другой организации.")})


class CallDelivery(TenantModel):
    """What became of one finished PBX call in amoCRM (the pipeline's state, one per call).

    Remote ids are stored as soon as amoCRM returns them, before the next step runs. Because
    ``POST /api/v4/calls`` and ``/tasks`` are not idempotent, ``call_state``/``task_state`` go
    to ``posting`` (committed) before the request; a delivery found in ``posting`` later had an
    ambiguous outcome and is checked against amoCRM before anything is posted again.
    """

    objects: ClassVar[models.Manager[CallDelivery]]

    class Status(models.TextChoices):
        PENDING = "pending", _("в очереди")
        IN_PROGRESS = "in_progress", _("передаётся")
        DONE = "done", _("в amoCRM")
        SKIPPED_BY_SETTING = "skipped_by_setting", _("пропущен по настройке")
        FAILED = "failed", _("ошибка")
        PAUSED = "paused", _("приостановлен")

    class Step(models.TextChoices):
        NONE = "", _("не начат")
        POSTING = "posting", _("отправляется")
        DONE = "done", _("выполнен")
        NOT_NEEDED = "not_needed", _("не нужен")

    pbx_call = models.OneToOneField(
        "pbx.PbxCall", on_delete=models.CASCADE, related_name="delivery"
    )
    status = models.CharField(
        _("статус"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    contact_id = models.BigIntegerField(_("контакт amoCRM"), null=True, blank=True)
    contact_created = models.BooleanField(_("контакт создан нами"), default=False)
    # «Неразобранное» instead of a contact (unknown inbound caller, option on).
    unsorted_state = models.CharField(
        _("неразобранное"), max_length=12, choices=Step.choices, blank=True, default=""
    )
    unsorted_uid = models.CharField(_("заявка в неразобранном"), max_length=64, blank=True)
    # A lead for a new client (option on).
    lead_state = models.CharField(
        _("сделка"), max_length=12, choices=Step.choices, blank=True, default=""
    )
    lead_id = models.BigIntegerField(_("сделка amoCRM"), null=True, blank=True)
    # Where amoCRM put the logged call: the contact, or its only open lead.
    call_entity_type = models.CharField(_("звонок записан в"), max_length=12, blank=True)
    call_entity_id = models.BigIntegerField(null=True, blank=True)
    call_state = models.CharField(
        _("звонок"), max_length=12, choices=Step.choices, blank=True, default=""
    )
    amo_call_id = models.BigIntegerField(_("звонок amoCRM"), null=True, blank=True)
    task_state = models.CharField(
        _("задача"), max_length=12, choices=Step.choices, blank=True, default=""
    )
    task_id = models.BigIntegerField(_("задача amoCRM"), null=True, blank=True)
    task_complete_till = models.BigIntegerField(null=True, blank=True)
    notification_sent_at = models.DateTimeField(_("уведомление"), null=True, blank=True)
    responsible_user_id = models.BigIntegerField(_("ответственный amoCRM"), null=True, blank=True)
    flags = models.JSONField(_("пометки"), default=list, blank=True)
    skip_reason = models.TextField(_("причина пропуска"), blank=True)
    attempts = models.PositiveIntegerField(_("попыток"), default=0)
    last_error = models.TextField(_("последняя ошибка"), blank=True)
    next_attempt_at = models.DateTimeField(_("следующая попытка"), null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(_("передан"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("передача звонка в amoCRM")
        verbose_name_plural = _("передача звонков в amoCRM")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["organization", "status", "next_attempt_at"], name="integ_delivery_due_idx"
            ),
            # The Dashboard's counters by the day a call reached delivery.
            models.Index(fields=["organization", "created_at"], name="integ_delivery_day_idx"),
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=models.Q(status__in=["pending", "in_progress"]),
                name="integ_delivery_open_idx",
            ),
            # The operators' gauges (/metrics): deliveries needing attention, counted without
            # reading the whole history of done ones.
            models.Index(
                fields=["status"],
                condition=models.Q(status__in=["failed", "paused"]),
                name="integ_delivery_trouble_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"CallDelivery<{self.pbx_call_id}:{self.status}>"


class RingNotice(TenantModel):
    """One ``phone_call`` pop-up sent for (call, amoCRM user): the row is the dedupe key."""

    objects: ClassVar[models.Manager[RingNotice]]

    pbx_call = models.ForeignKey("pbx.PbxCall", on_delete=models.CASCADE, related_name="+")
    amo_user_id = models.BigIntegerField()
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("уведомление о звонке")
        verbose_name_plural = _("уведомления о звонках")
        constraints = [
            models.UniqueConstraint(fields=["pbx_call", "amo_user_id"], name="integ_ring_uniq")
        ]

    def __str__(self) -> str:
        return f"RingNotice<{self.pbx_call_id}→{self.amo_user_id}>"


def working_hours_default() -> list[list[str] | None]:
    """Monday to Friday 09:00–18:00; Saturday and Sunday off (index 0 is Monday)."""
    return [["09:00", "18:00"]] * 5 + [None, None]


class CallbackSettings(TenantModel):
    """«Перезвон пропущенных» on «Настройки звонков»: what counts as a call-back, the target
    time to call back (the SLA) and when the team works, in the organization's time zone
    (docs/callbacks.md)."""

    objects: ClassVar[models.Manager[CallbackSettings]]

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="callback_settings"
    )
    count_unanswered_attempts = models.BooleanField(
        _("Считать перезвоном и неотвеченный исходящий"), default=False
    )
    target_minutes = models.PositiveIntegerField(
        _("Срок перезвона, рабочих минут"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
    )
    notify_overdue = models.BooleanField(_("Уведомлять о просроченном перезвоне"), default=True)
    supervisor_amo_user_id = models.BigIntegerField(
        _("Руководитель (amoCRM ID)"), null=True, blank=True
    )
    # Seven entries, Monday first: ["HH:MM", "HH:MM"] or null for a day off.
    working_hours = models.JSONField(_("Рабочие часы"), default=working_hours_default)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("настройки перезвона")
        verbose_name_plural = _("настройки перезвона")

    def __str__(self) -> str:
        return f"CallbackSettings<{self.organization_id}>"


class MissedCall(TenantModel):
    """One missed inbound call and what became of it: returned (when, by whom, by which call,
    after how long), its «Перезвонить» task in amoCRM, and the SLA notification.

    One row per PBX call (the unique ``pbx_call`` makes recording it idempotent); the return is
    written with conditional UPDATEs, so duplicates and reordering cannot change the outcome
    (integration/callbacks.py).
    """

    class TaskState(models.TextChoices):
        NONE = "", _("нет задачи")
        OPEN = "open", _("открыта")
        COMPLETING = "completing", _("закрывается")
        COMPLETED = "completed", _("закрыта: перезвонили")
        CLOSED_IN_AMO = "closed_in_amo", _("закрыта в amoCRM")

    objects: ClassVar[models.Manager[MissedCall]]

    pbx_call = models.OneToOneField(
        "pbx.PbxCall", on_delete=models.CASCADE, related_name="missed_call"
    )
    phone_national = models.CharField(_("телефон клиента"), max_length=20)
    missed_at = models.DateTimeField(_("пропущен"))
    due_at = models.DateTimeField(_("перезвонить до"))
    abonent = models.ForeignKey(
        "pbx.Abonent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("кому звонили"),
    )
    number = models.ForeignKey(
        "pbx.PbxNumber",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("многоканальный номер"),
    )
    manager_amo_user_id = models.BigIntegerField(_("ответственный amoCRM"), null=True, blank=True)
    returned_at = models.DateTimeField(_("перезвонили"), null=True, blank=True)
    returning_call = models.ForeignKey(
        "pbx.PbxCall",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("звонок-перезвон"),
    )
    returned_by = models.ForeignKey(
        "pbx.Abonent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("кто перезвонил"),
    )
    returned_by_client = models.BooleanField(_("клиент позвонил сам"), default=False)
    returned_answered = models.BooleanField(_("разговор состоялся"), default=False)
    wait_seconds = models.PositiveIntegerField(_("ожидание, с"), null=True, blank=True)
    task_id = models.BigIntegerField(_("задача amoCRM"), null=True, blank=True)
    task_state = models.CharField(
        _("задача"), max_length=16, choices=TaskState.choices, blank=True, default=""
    )
    task_result_text = models.TextField(_("результат задачи"), blank=True)
    task_closed_at = models.DateTimeField(null=True, blank=True)
    sla_notified_at = models.DateTimeField(_("уведомление о просрочке"), null=True, blank=True)
    sla_notified_users = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("пропущенный звонок")
        verbose_name_plural = _("пропущенные звонки")
        ordering = ["-missed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(returned_at__isnull=True) | models.Q(wait_seconds__isnull=False),
                name="integ_missed_returned_has_wait",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "phone_national", "missed_at"],
                name="integ_missed_phone_idx",
            ),
            models.Index(fields=["organization", "missed_at"], name="integ_missed_recent_idx"),
            models.Index(
                fields=["due_at"],
                condition=models.Q(returned_at__isnull=True, sla_notified_at__isnull=True),
                name="integ_missed_sla_due_idx",
            ),
            models.Index(
                fields=["organization"],
                condition=models.Q(
                    returned_at__isnull=False, task_state__in=["open", "completing"]
                ),
                name="integ_missed_to_complete_idx",
            ),
        ]

    def __str__(self) -> str:
        state = "returned" if self.returned_at else "waiting"
        return f"MissedCall<{self.pbx_call_id}:{self.phone_national}:{state}>"


class RoutingRule(TenantModel):
    """One Beeline ICR rule Beetel keeps (``/icr/route``): calls from ``phone_national`` ring
    ``extension`` first, the extension of the abonent mapped to the responsible user of the
    contact ``contact_id``. A row exists only for rules that are Beetel's: other rules in the
    PBX are never touched.

    ``pending``: to be written to Beeline (or written without a clear answer yet);
    ``synced``: Beeline holds it; ``refused``: Beeline said FAULT (``last_error`` has its
    reason) or we cannot make it (no extension); ``removing``: to be deleted from Beeline.
    """

    objects: ClassVar[models.Manager[RoutingRule]]

    class State(models.TextChoices):
        PENDING = "pending", _("ожидает")
        SYNCED = "synced", _("в Билайн")
        REFUSED = "refused", _("отклонено")
        REMOVING = "removing", _("удаляется")

    phone_national = models.CharField(_("номер клиента"), max_length=15)
    phone_e164 = models.CharField(_("номер клиента (E.164)"), max_length=20)
    contact_id = models.BigIntegerField(_("контакт amoCRM"), null=True, blank=True)
    amo_user_id = models.BigIntegerField(_("ответственный amoCRM"), null=True, blank=True)
    abonent = models.ForeignKey(
        "pbx.Abonent", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    extension = models.CharField(_("добавочный"), max_length=32, blank=True)
    # The extension Beeline holds for this number because we wrote it ("" = none of ours).
    remote_extension = models.CharField(max_length=32, blank=True)
    state = models.CharField(
        _("состояние"), max_length=10, choices=State.choices, default=State.PENDING
    )
    last_error = models.TextField(_("причина"), blank=True)
    synced_at = models.DateTimeField(_("в Билайн с"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("правило маршрутизации")
        verbose_name_plural = _("правила маршрутизации")
        ordering = ["phone_national"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_national"], name="integ_routing_rule_phone"
            )
        ]
        indexes = [models.Index(fields=["organization", "contact_id"])]

    def __str__(self) -> str:
        return f"{self.phone_national} → {self.extension or '—'} ({self.state})"


class RoutingNumber(TenantModel):
    """An incoming number on which Beetel wants ICR on (``/icr/numbers``). ``enabled_by_us``:
    ICR was off and we switched it on, so switching routing off switches it off again; a number
    that already had ICR on is left as it was."""

    objects: ClassVar[models.Manager[RoutingNumber]]

    phone_national = models.CharField(_("номер"), max_length=15)
    enabled_by_us = models.BooleanField(default=False)
    state = models.CharField(
        _("состояние"),
        max_length=10,
        choices=RoutingRule.State.choices,
        default=RoutingRule.State.PENDING,
    )
    last_error = models.TextField(_("причина"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("номер с маршрутизацией")
        verbose_name_plural = _("номера с маршрутизацией")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_national"], name="integ_routing_number_phone"
            )
        ]

    def __str__(self) -> str:
        return f"ICR {self.phone_national} ({self.state})"


class RoutingStatus(TenantModel):
    """When the routing rules were last brought in step with amoCRM, and how it went."""

    objects: ClassVar[models.Manager[RoutingStatus]]

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="routing_status"
    )
    full_sync_at = models.DateTimeField(_("полная сверка"), null=True, blank=True)
    last_sync_at = models.DateTimeField(_("последняя синхронизация"), null=True, blank=True)
    last_error = models.TextField(_("ошибка синхронизации"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("состояние маршрутизации")
        verbose_name_plural = _("состояния маршрутизации")

    def __str__(self) -> str:
        return f"RoutingStatus<{self.organization_id}>"
