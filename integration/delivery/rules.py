"""What amoCRM should get for a finished call: pure rules, no database, no HTTP.

Given the call (``FinishedCall``, a plain value), the seven switches of «Настройки звонков»
(``CallSettings``, only read) and the «Менеджеры» table (``Manager`` per abonent), ``plan``
decides whether the call needs a contact (and may create one), a call log entry and a missed-call
task, who is responsible, which tags a new contact gets, and why a call is skipped; and, for the
options beyond the manual, whether an unknown inbound caller goes to «Неразобранное» and whether
a new client gets a lead (docs/architecture.md «Options beyond the manual»). The steps
(``integration.delivery.steps``) carry the plan out; docs/architecture.md flow 4 tells the story.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from core.phones import Phone
from crm.client import SOURCE_NAME, CallDraft, LeadDraft, TaskDraft
from integration.models import CallDelivery, CallSettings
from pbx.models import PbxCall

TAG = "BeelineConnector"  # on every contact we create

Outcome = PbxCall.Outcome
# amoCRM call_status (docs/amocrm-api.md §5, CONFIRMED enum; mapping as iqtek-ng, CONFIRMED-3P).
CALL_STATUS: dict[str, int] = {
    Outcome.ANSWERED.value: 4,
    Outcome.MISSED.value: 6,
    Outcome.BUSY.value: 7,
    Outcome.FAILED.value: 5,
}
CALL_RESULT: dict[str, str] = {
    Outcome.ANSWERED.value: "Разговор состоялся",
    Outcome.MISSED.value: "Пропущенный звонок",
    Outcome.BUSY.value: "Номер занят",
    Outcome.FAILED.value: "Звонок не удался",
}
OUTBOUND_NO_ANSWER = "Не дозвонился"

# Flags stored on a delivery for Диагностика (the call is still logged, without responsible).
FLAG_NO_ABONENT = "no_abonent"
FLAG_UNMAPPED = "unmapped_abonent"
FLAG_DISABLED = "abonent_disabled"
FLAG_RECOVERED = "recovered"
FLAG_UNSORTED_OFF = "unsorted_off"  # «Неразобранное» chosen, the account has it off: a contact
FLAG_LEAD_REFUSED = "lead_refused"  # the lead option is on, amoCRM refused the lead
# Audit kinds Диагностика reads for the options.
AUDIT_UNSORTED_OFF = "pipeline.unsorted_off"
AUDIT_LEAD_REFUSED = "pipeline.lead_refused"
# SIP Unsorted metadata.service_code: who reports the call (our widget's code).
UNSORTED_SERVICE_CODE = "beetel"


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """What the rules need to know about a finished PBX call."""

    ext_tracking_id: str
    inbound: bool
    outcome: str  # a PbxCall.Outcome value; empty when it never connected (logged as missed)
    phone: Phone | None  # the client's number; None when hidden or not a number
    abonent_id: int | None = None  # the responsible abonent (who answered, or was rung)
    leg_abonent_ids: tuple[int, ...] = ()  # every abonent the call rang, in order
    # Set when it came through a multichannel number: the name the admin typed for it on
    # «Организация» ("" while unnamed; Beeline's API has no names).
    multichannel_name: str | None = None
    recovered: bool = False  # rebuilt from Beeline's statistics
    talk_seconds: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None  # Beeline's release time of the call
    recording_url: str | None = None
    # The number that was called: the multichannel line, else the abonent's own number.
    called_phone: Phone | None = None

    @property
    def answered(self) -> bool:
        return self.outcome == Outcome.ANSWERED

    @property
    def missed(self) -> bool:
        return self.outcome == Outcome.MISSED


@dataclass(frozen=True, slots=True)
class Manager:
    """One line of «Менеджеры»: the abonent's amoCRM user (None is «Нет») and «Вкл.»."""

    amo_user_id: int | None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    """What one call should give amoCRM."""

    phone: Phone | None
    inbound: bool
    create_contact: bool  # the number may get a new contact (settings 2/5)
    log_call: bool  # settings 3/6
    create_task: bool  # inbound, missed and setting 7
    responsible: int | None  # the mapped manager of the responsible abonent
    task_user: int | None  # who gets the missed-call task (see ``task_user_for``)
    group: bool  # rang several abonents, or came through a multichannel number
    tags: tuple[str, ...]  # of a new contact
    flags: tuple[str, ...]  # for Диагностика
    task_owner_candidates: frozenset[int] = frozenset()  # every mapped, enabled manager
    skip_reason: str = ""  # non-empty: nothing goes to amoCRM, and this is why
    # Options: an unknown inbound caller to «Неразобранное» (in this pipeline, None = the main
    # one); a lead (in this pipeline and stage) for a client whose contact we create.
    unsorted: bool = False
    unsorted_pipeline_id: int | None = None
    lead: bool = False
    lead_pipeline_id: int | None = None
    lead_status_id: int | None = None

    @property
    def wants_contact_owner(self) -> bool:
        """A group call's task may go to the contact's responsible user: ask amoCRM who it is."""
        return self.group and self.create_task


def plan(call: FinishedCall, settings: CallSettings, managers: Mapping[int, Manager]) -> Plan:
    """Decide what ``call`` needs, given the switches and the abonents' managers."""
    flags: list[str] = [FLAG_RECOVERED] if call.recovered else []
    manager = managers.get(call.abonent_id) if call.abonent_id is not None else None
    responsible = None
    if call.abonent_id is None:
        flags.append(FLAG_NO_ABONENT)
    elif manager is None or manager.amo_user_id is None:
        flags.append(FLAG_UNMAPPED)
    elif not manager.enabled:
        flags.append(FLAG_DISABLED)
    else:
        responsible = manager.amo_user_id
    enabled = {abonent: m for abonent, m in managers.items() if m.enabled and m.amo_user_id}
    group = len(call.leg_abonent_ids) > 1 or call.multichannel_name is not None
    create_task = call.inbound and call.missed and settings.create_task_missed
    task_user = responsible
    if group and create_task:
        # Missed by all: the responsible manager, else the first mapped manager it rang.
        rung = [enabled[a].amo_user_id for a in call.leg_abonent_ids if a in enabled]
        task_user = responsible or (rung[0] if rung else None)
    elif group:
        task_user = None
    tags = [TAG]
    # An unnamed number adds no tag: a tag of bare digits would stay on the contact for good.
    if call.inbound and call.multichannel_name:
        tags.append(call.multichannel_name)
    create_contact = (
        settings.create_contact_incoming if call.inbound else settings.create_contact_outgoing
    )
    log_call = settings.log_call_incoming if call.inbound else settings.log_call_outgoing
    unsorted = call.inbound and settings.unsorted_enabled
    lead = bool(settings.lead_enabled and settings.lead_pipeline_id and settings.lead_status_id)
    skip_reason = ""
    if call.phone is None:
        skip_reason = _("Номер клиента скрыт или не распознан.")
    elif not (create_contact or log_call or create_task or unsorted):
        skip_reason = _("Добавление звонка и создание задач выключены в «Настройки звонков».")
    return Plan(
        phone=call.phone,
        inbound=call.inbound,
        create_contact=create_contact,
        log_call=log_call,
        create_task=create_task,
        responsible=responsible,
        task_user=task_user,
        group=group,
        tags=tuple(tags),
        flags=tuple(flags),
        task_owner_candidates=frozenset(
            m.amo_user_id for m in enabled.values() if m.amo_user_id is not None
        ),
        skip_reason=skip_reason,
        unsorted=unsorted,
        unsorted_pipeline_id=settings.unsorted_pipeline_id,
        lead=lead,
        lead_pipeline_id=settings.lead_pipeline_id,
        lead_status_id=settings.lead_status_id,
    )


def pop_up_wanted(settings: CallSettings, *, inbound: bool) -> bool:
    """Settings 1/4: the pop-up for the managers while the phone rings."""
    return settings.notify_incoming if inbound else settings.notify_outgoing


def task_user_for(plan: Plan, *, contact_owner: int | None) -> int | None:
    """A group missed call's task goes to the contact's responsible user when that user is a
    mapped manager; otherwise to the plan's choice."""
    if plan.wants_contact_owner and contact_owner in plan.task_owner_candidates:
        return contact_owner
    return plan.task_user


def no_contact_reason(plan: Plan) -> str:
    """Why a call of a number amoCRM does not know is skipped (amoCRM refuses a call without a
    contact, docs/amocrm-api.md §5)."""
    setting = (
        _("«Создание контакта при входящих звонках»")
        if plan.inbound
        else _("«Создание контакта при исходящих звонках»")
    )
    return _("Номера нет в amoCRM, а настройка %(setting)s выключена: звонок не записан.") % {
        "setting": setting
    }


def outcome(
    plan: Plan,
    *,
    contact_created: bool,
    call_state: str,
    task_state: str,
    unsorted_done: bool = False,
) -> tuple[str, str]:
    """The final status of a delivery whose steps all ran, and its skip reason: written
    nothing at all (no new contact, no call, no task, no Unsorted entry) is *skipped by
    setting*."""
    not_needed = CallDelivery.Step.NOT_NEEDED
    nothing_written = not (contact_created or unsorted_done)
    if call_state == not_needed and task_state == not_needed and nothing_written:
        setting = (
            _("«Добавление звонка при входящих звонках»")
            if plan.inbound
            else _("«Добавление звонка при исходящих звонках»")
        )
        reason = _("Настройка %(setting)s выключена: звонок не записан.") % {"setting": setting}
        return CallDelivery.Status.SKIPPED_BY_SETTING, reason
    return CallDelivery.Status.DONE, ""


def call_draft(call: FinishedCall, plan: Plan) -> CallDraft:
    """The call log entry (docs/amocrm-api.md §5); the recording link for answered calls only."""
    status = call.outcome or Outcome.MISSED.value  # a call that never connected counts as missed
    result = CALL_RESULT.get(status)
    if not plan.inbound and status == Outcome.MISSED:
        result = OUTBOUND_NO_ANSWER
    return CallDraft(
        direction="inbound" if plan.inbound else "outbound",
        duration=call.talk_seconds,
        phone=plan.phone.e164 if plan.phone else "",
        uniq=call.ext_tracking_id,
        link=call.recording_url if call.answered else None,
        call_status=CALL_STATUS.get(status),
        call_result=result or None,
        call_responsible=plan.responsible,
        responsible_user_id=plan.responsible,
        created_by=plan.responsible,
        created_at=int(call.started_at.timestamp()) if call.started_at else None,
    )


def missed_task_text(phone_e164: str) -> str:
    """The missed-call task's text, «Перезвонить на номер +7…» (call-back tracking adds how many
    calls were missed when there were several, docs/callbacks.md)."""
    return _("Перезвонить на номер %(phone)s") % {"phone": phone_e164}


def task_text(plan: Plan) -> str:
    return missed_task_text(plan.phone.e164 if plan.phone else "")


def task_draft(
    plan: Plan, *, contact_id: int | None, due: int, user: int | None, text: str | None = None
) -> TaskDraft:
    """The missed-call task «Перезвонить на номер +7…» on the contact (type 1, a call), due at
    ``due`` (Unix time: the call-back SLA's deadline)."""
    return TaskDraft(
        text=text or task_text(plan),
        complete_till=due,
        entity_id=contact_id,
        entity_type="contacts",
        task_type_id=1,
        responsible_user_id=user,
    )


def lead_name(plan: Plan) -> str:
    return _("Звонок с %(phone)s") % {"phone": plan.phone.e164 if plan.phone else ""}


def lead_draft(plan: Plan, *, contact_id: int) -> LeadDraft:
    """The lead for a new client (docs/amocrm-api.md §6b): the chosen pipeline and stage, the
    contact, the contact's tags, the manager as responsible (amoCRM's default when unmapped)."""
    return LeadDraft(
        name=lead_name(plan),
        pipeline_id=plan.lead_pipeline_id,
        status_id=plan.lead_status_id,
        responsible_user_id=plan.responsible,
        contact_ids=(contact_id,),
        tags=plan.tags,
    )


def unsorted_entry(call: FinishedCall, plan: Plan) -> dict[str, Any]:
    """One SIP «Неразобранное» entry (docs/amocrm-api.md §7.3): the caller, the number called,
    duration and recording link; ``source_uid`` and ``uniq`` are the call's ``extTrackingId``.
    Accepting it in amoCRM makes the contact and the lead, with the call on them
    (``is_call_event_needed``)."""
    caller = plan.phone.e164 if plan.phone else ""
    started = int(call.started_at.timestamp()) if call.started_at else None
    metadata: dict[str, Any] = {
        "uniq": call.ext_tracking_id,
        "duration": call.talk_seconds,
        "service_code": UNSORTED_SERVICE_CODE,
        "phone": call.called_phone.e164 if call.called_phone else caller,
        "from": caller,
        "called_at": started,
        "is_call_event_needed": True,
    }
    if call.answered and call.recording_url:
        metadata["link"] = call.recording_url
    if plan.responsible:
        metadata["call_responsible"] = plan.responsible
    entry: dict[str, Any] = {
        "source_uid": call.ext_tracking_id,
        "source_name": SOURCE_NAME,
        "metadata": metadata,
        "_embedded": {
            "leads": [{"name": lead_name(plan)}],
            "contacts": [
                {
                    "name": caller,
                    "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": caller, "enum_code": "WORK"}]}
                    ],
                }
            ],
        },
    }
    if started is not None:
        entry["created_at"] = started
    if plan.unsorted_pipeline_id:
        entry["pipeline_id"] = plan.unsorted_pipeline_id
    return entry
