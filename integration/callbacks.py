"""No missed call left unanswered: call-back detection, the «Перезвонить» task's life in
amoCRM and the call-back SLA (docs/callbacks.md).

Three entry points for the rest of the system:

- ``callback_call_finalized`` — called once for every finished call as it is handed to the
  delivery queue: records a missed inbound call, and marks earlier missed calls of the same
  number as returned when this call returns them;
- ``callback_tasks_prepare`` / ``callback_tasks_attach`` / ``callback_tasks_complete`` — the
  delivery's task step asks what a missed call's task should be (the number's open task,
  updated, or a new one), tells which task it created, and completes the tasks of returned
  calls;
- ``callback_sla_notify`` / ``callbacks_due_dispatch`` — the beat's side: one amoCRM
  notification per missed call not returned within the SLA, only during working hours.

Exactly once: a missed call is one row per PBX call (unique); every decision about a number
is taken under a per-(organization, number) transaction lock; the return is written with a
conditional UPDATE that keeps the earliest returning call, so any order of arrival gives the
same result; task completion and notifications are claimed in the database before amoCRM is
asked, and a completion cut short is checked against amoCRM (by its result text) before it is
sent again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, When
from django.utils import timezone
from django.utils.translation import gettext as _

from core.locks import advisory_xact_lock
from core.models import DEFAULT_TIME_ZONE, AuditEntry, Organization
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from crm.client import AmoClient, PhoneCallEvent, TaskUpdate
from crm.errors import (
    AmoAuthError,
    AmoError,
    AmoPaused,
    AmoPermanentError,
    AmoRateLimited,
    AmoTransientError,
)
from crm.models import AmoUser
from crm.services import amo_client
from integration.models import CallbackSettings, ManagerMapping, MissedCall
from integration.working_time import WorkingHours, WorkingHoursInvalid
from pbx.models import Abonent, PbxCall

logger = logging.getLogger(__name__)

TaskState = MissedCall.TaskState
Outcome = PbxCall.Outcome
# Unanswered outbound outcomes that count as a call-back attempt when the setting says so
# ("failed" never reached the client's phone, so it is no attempt).
ATTEMPT_OUTCOMES = (Outcome.MISSED, Outcome.BUSY)
EVENTS_PER_REQUEST = 50
COMPLETIONS_PER_RUN = 100


# --- settings ----------------------------------------------------------------------------------


def callback_settings_for(*, organization: Organization | int) -> CallbackSettings:
    """The organization's call-back settings (the defaults, unsaved, until first saved), with
    the organization loaded: its time zone is the SLA's."""
    org_id = organization if isinstance(organization, int) else organization.pk
    with organization_scope(org_id):
        found = (
            CallbackSettings.objects.filter(organization_id=org_id)
            .select_related("organization")
            .first()
        )
    if found is not None:
        return found
    if isinstance(organization, int):
        organization = Organization.objects.get(pk=organization)
    return CallbackSettings(organization=organization)


def working_hours_of(settings: CallbackSettings) -> WorkingHours:
    """The schedule to count the SLA in, in the organization's time zone («Организация»). A
    stored schedule or zone that no longer parses (a zone gone from tzdata) falls back to the
    defaults rather than stopping calls."""
    zone = settings.organization.time_zone
    try:
        return WorkingHours.of(time_zone=zone, working_hours=settings.working_hours)
    except WorkingHoursInvalid:
        logger.warning(
            "callback working hours invalid, defaults used",
            extra={"organization_id": settings.organization_id},
        )
        return WorkingHours.of(
            time_zone=DEFAULT_TIME_ZONE, working_hours=CallbackSettings().working_hours
        )


CALLBACK_SETTING_FIELDS = (
    "count_unanswered_attempts",
    "target_minutes",
    "notify_overdue",
    "supervisor_amo_user_id",
    "working_hours",
)


def callback_settings_update(
    *, organization: Organization, values: dict[str, Any]
) -> CallbackSettings:
    """Save «Перезвон пропущенных». Unknown names raise ValueError; so does a schedule that does
    not parse (the form checks it first). New deadlines follow the new settings; missed calls
    already recorded keep theirs."""
    unknown = set(values) - set(CALLBACK_SETTING_FIELDS)
    if unknown:
        raise ValueError(f"unknown call-back settings: {sorted(unknown)}")
    with organization_scope(organization), transaction.atomic():
        settings, _created = CallbackSettings.objects.select_for_update().get_or_create(
            organization=organization
        )
        changed = {
            name: value for name, value in values.items() if getattr(settings, name) != value
        }
        for name, value in changed.items():
            setattr(settings, name, value)
        WorkingHours.of(time_zone=DEFAULT_TIME_ZONE, working_hours=settings.working_hours)
        try:
            settings.full_clean(exclude=["organization"])
        except ValidationError as exc:
            raise ValueError(f"invalid call-back settings: {exc.messages}") from exc
        settings.save()
    if changed:
        audit_record(
            organization=organization,
            kind="callback_settings.changed",
            message=", ".join(sorted(changed)),
            data={name: changed[name] for name in sorted(changed)},
        )
    return settings


# --- detection ---------------------------------------------------------------------------------


def _number_lock(organization_id: int, phone_national: str) -> None:
    """Serialize decisions about one client number until the transaction ends (a missed call
    being recorded and a call-back being finalized at the same moment must see each other)."""
    advisory_xact_lock(f"callback:{organization_id}:{phone_national}")


def _is_miss(call: PbxCall) -> bool:
    return (
        call.direction == PbxCall.Direction.IN
        and call.outcome == Outcome.MISSED
        and call.started_at is not None
    )


def _return_moment(call: PbxCall, settings: CallbackSettings) -> datetime | None:
    """When ``call`` returned the client's earlier missed calls, or None if it does not count."""
    if call.started_at is None:
        return None
    if call.outcome == Outcome.ANSWERED:
        return call.answered_at or call.started_at
    if (
        settings.count_unanswered_attempts
        and call.direction == PbxCall.Direction.OUT
        and call.outcome in ATTEMPT_OUTCOMES
    ):
        return call.started_at
    return None


def _qualifying_calls(settings: CallbackSettings) -> Q:
    counts = Q(outcome=Outcome.ANSWERED)
    if settings.count_unanswered_attempts:
        counts |= Q(direction=PbxCall.Direction.OUT, outcome__in=ATTEMPT_OUTCOMES)
    return counts


def _manager_of(abonent_id: int | None) -> int | None:
    if abonent_id is None:
        return None
    mapping = ManagerMapping.objects.filter(
        abonent_id=abonent_id, enabled=True, amo_user_id__isnull=False
    ).first()
    return mapping.amo_user_id if mapping else None


def callback_call_finalized(*, organization_id: int, call_id: int) -> MissedCall | None:
    """The hook for every finished call handed on by pbx (idempotent; any order of calls).

    A missed inbound call with a known number is recorded (once) with its SLA deadline; if a
    call that returns it is already known, it is marked returned at once. A call that counts
    as a call-back (answered in either direction; an unanswered outbound attempt when the
    setting says so) marks every earlier missed call of its number returned, keeping for each
    the earliest call that returned it. Returns the missed call recorded, if any.
    """
    with organization_scope(organization_id):
        call = PbxCall.objects.filter(pk=call_id, status=PbxCall.Status.FINISHED).first()
        if call is None or not call.external_phone_national:
            return None
        settings = callback_settings_for(organization=organization_id)
        missed: MissedCall | None = None
        with transaction.atomic():
            _number_lock(organization_id, call.external_phone_national)
            if _is_miss(call):
                missed = _missed_record(call, settings)
            if _return_moment(call, settings) is not None:
                _misses_return(call, settings)
    return missed


def _missed_record(call: PbxCall, settings: CallbackSettings) -> MissedCall:
    assert call.started_at is not None
    due = working_hours_of(settings).deadline(call.started_at, settings.target_minutes)
    missed, created = MissedCall.objects.get_or_create(
        pbx_call=call,
        defaults={
            "organization_id": call.organization_id,
            "phone_national": call.external_phone_national,
            "missed_at": call.started_at,
            "due_at": due,
            "abonent_id": call.abonent_id,
            "number_id": call.number_id,
            "manager_amo_user_id": _manager_of(call.abonent_id),
        },
    )
    if created:
        # A call-back finalized before this missed call (events delayed, a recovered call).
        earlier = (
            PbxCall.objects.filter(
                external_phone_national=call.external_phone_national,
                status=PbxCall.Status.FINISHED,
                handed_off_at__isnull=False,
                started_at__gt=call.started_at,
            )
            .filter(_qualifying_calls(settings))
            .annotate(
                moment=Case(
                    When(outcome=Outcome.ANSWERED, then=F("answered_at")),
                    default=F("started_at"),
                )
            )
            .order_by("moment", "id")
            .first()
        )
        if earlier is not None:
            _misses_return(earlier, settings, only=[missed.pk])
            missed.refresh_from_db()
    return missed


def _misses_return(
    call: PbxCall, settings: CallbackSettings, *, only: Sequence[int] | None = None
) -> int:
    """Mark the number's missed calls that started before ``call`` as returned by it, unless
    an earlier call already returned them. Returns how many rows changed."""
    moment = _return_moment(call, settings)
    assert moment is not None and call.started_at is not None
    candidates = (
        MissedCall.objects.filter(
            phone_national=call.external_phone_national, missed_at__lt=call.started_at
        )
        .exclude(pbx_call_id=call.pk)
        .filter(Q(returned_at__isnull=True) | Q(returned_at__gt=moment))
    )
    if only is not None:
        candidates = candidates.filter(pk__in=list(only))
    changed = 0
    for pk, missed_at in candidates.values_list("pk", "missed_at"):
        # Conditional: a concurrent, earlier call-back wins whatever the order of commits.
        changed += (
            MissedCall.objects.filter(pk=pk)
            .filter(Q(returned_at__isnull=True) | Q(returned_at__gt=moment))
            .update(
                returned_at=moment,
                returning_call=call,
                returned_by_id=call.abonent_id,
                returned_by_client=call.direction == PbxCall.Direction.IN,
                returned_answered=call.outcome == Outcome.ANSWERED,
                wait_seconds=max(0, int((moment - missed_at).total_seconds())),
            )
        )
    if changed:
        logger.info(
            "missed calls returned",
            extra={"organization_id": call.organization_id, "call_id": call.pk, "n": changed},
        )
    return changed


# --- texts -------------------------------------------------------------------------------------


def wait_text(seconds: int) -> str:
    """«12 мин», «1 ч 5 мин» (less than a minute counts as one)."""
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return _("%(h)s ч %(m)s мин") % {"h": hours, "m": minutes}
    if hours:
        return _("%(h)s ч") % {"h": hours}
    return _("%(m)s мин") % {"m": minutes}


def talk_text(seconds: int) -> str:
    """«2:31», «1:02:31»."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _person_names(organization_id: int, abonents: Iterable[Abonent | None]) -> dict[int, str]:
    """Abonent id → the name a manager knows: the mapped amoCRM user's, else the abonent's."""
    by_id = {a.pk: a for a in abonents if a is not None}
    users = dict(
        ManagerMapping.objects.filter(
            abonent_id__in=list(by_id), amo_user_id__isnull=False
        ).values_list("abonent_id", "amo_user_id")
    )
    amo_names = dict(
        AmoUser.objects.filter(amo_id__in=list(users.values())).values_list("amo_id", "name")
    )
    return {
        pk: amo_names.get(users.get(pk) or 0, "") or abonent.full_name or abonent.phone
        for pk, abonent in by_id.items()
    }


def result_text(*, who: str, by_client: bool, answered: bool, wait: int, talk: int) -> str:
    """The «Результат» written into the completed task."""
    who = who or _("сотрудник")
    values = {"who": who, "wait": wait_text(wait), "talk": talk_text(talk)}
    if by_client:
        return _("Клиент перезвонил сам: ответил %(who)s через %(wait)s, разговор %(talk)s") % (
            values
        )
    if not answered:
        return _("Перезвонили: %(who)s через %(wait)s, клиент не ответил") % values
    return _("Перезвонили: %(who)s через %(wait)s, разговор %(talk)s") % values


def task_base_text(phone_e164: str) -> str:
    return _("Перезвонить на номер %(phone)s") % {"phone": phone_e164}


def _task_text(phone_e164: str, misses: Sequence[MissedCall], zone: Any) -> str:
    if len(misses) <= 1:
        return task_base_text(phone_e164)
    last = max(m.missed_at for m in misses).astimezone(zone)
    return _("%(base)s (пропущенных звонков: %(n)s, последний в %(time)s)") % {
        "base": task_base_text(phone_e164),
        "n": len(misses),
        "time": last.strftime("%H:%M"),
    }


# --- the task step -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MissTask:
    """What the delivery's task step does for one missed call."""

    call_id: int
    text: str
    complete_till: int  # unix time: the SLA deadline
    task_id: int | None  # the number's open task, already updated: use it, post nothing


def callback_tasks_prepare(
    *,
    organization: Organization,
    client: AmoClient,
    calls: Sequence[tuple[int, str]],
    now: datetime | None = None,
) -> dict[int, MissTask]:
    """Decide the «Перезвонить» task of missed calls about to get one (``calls``: pairs of
    PBX call id and the client's E.164 number).

    Per number: while the number has an open task for calls not yet returned (ours, read in
    amoCRM first: a manager may have completed or deleted it), that task is updated — the
    count of missed calls in its text, the due time of the newest — instead of adding one;
    otherwise the text and due time of one new task for all of the number's calls in this
    batch are given. A call returned before its task was made still gets one (completed by
    the drain's last step right after), so amoCRM shows the same history whatever the order
    in which the calls arrived. Raises AmoError from amoCRM (the caller retries).
    """
    now = now or timezone.now()
    settings = callback_settings_for(organization=organization)
    hours = working_hours_of(settings)
    phones = dict(calls)
    with organization_scope(organization):
        rows = {m.pbx_call_id: m for m in MissedCall.objects.filter(pbx_call_id__in=list(phones))}
    plans: dict[int, MissTask] = {}
    by_number: dict[tuple[str, bool], list[MissedCall]] = defaultdict(list)
    for call_id, phone in calls:
        missed = rows.get(call_id)
        if missed is None:  # not recorded (a call handed on before this feature existed)
            due = hours.deadline(now, settings.target_minutes)
            plans[call_id] = MissTask(call_id, task_base_text(phone), _ts(due), None)
        else:
            by_number[(missed.phone_national, missed.returned_at is not None)].append(missed)
    for (national, returned), misses in by_number.items():
        phone = phones[misses[0].pbx_call_id]
        open_task, attached = (
            (None, []) if returned else _open_task(organization, client, national, misses)
        )
        everyone = sorted([*attached, *misses], key=lambda m: m.missed_at)
        text = _task_text(phone, everyone, hours.zone)
        till = _ts(max(m.due_at for m in everyone))
        if open_task is not None:
            client.task_update(open_task, TaskUpdate(text=text, complete_till=till))
        for missed in misses:
            plans[missed.pbx_call_id] = MissTask(missed.pbx_call_id, text, till, open_task)
    return plans


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _open_task(
    organization: Organization, client: AmoClient, national: str, misses: list[MissedCall]
) -> tuple[int | None, list[MissedCall]]:
    """The number's task still open for not-yet-returned missed calls, and those calls.

    Read in amoCRM first: a task a manager completed (or deleted) there is left alone and no
    longer collects missed calls.
    """
    with organization_scope(organization):
        attached = list(
            MissedCall.objects.filter(
                phone_national=national,
                task_state=TaskState.OPEN,
                task_id__isnull=False,
                returned_at__isnull=True,
            )
            .exclude(pk__in=[m.pk for m in misses])
            .order_by("-missed_at")
        )
    if not attached:
        return None, []
    task_id = attached[0].task_id
    assert task_id is not None
    group = [m for m in attached if m.task_id == task_id]
    task = client.task_get(task_id)
    if task is None or task.is_completed:
        with organization_scope(organization):
            MissedCall.objects.filter(task_id=task_id, task_state=TaskState.OPEN).update(
                task_state=TaskState.CLOSED_IN_AMO, task_closed_at=timezone.now()
            )
        return None, []
    return task_id, group


def callback_tasks_attach(
    *,
    organization: Organization,
    call_ids: Sequence[int],
    task_id: int,
    responsible_user_id: int | None,
) -> None:
    """The «Перезвонить» task ``task_id`` now stands for these missed calls (stored as soon as
    amoCRM returned the id, before anything else is asked of it)."""
    values: dict[str, Any] = {"task_id": task_id, "task_state": TaskState.OPEN}
    if responsible_user_id:
        values["manager_amo_user_id"] = responsible_user_id
    with organization_scope(organization):
        MissedCall.objects.filter(
            pbx_call_id__in=list(call_ids), task_state__in=[TaskState.NONE, TaskState.OPEN]
        ).update(**values)


# --- completing the tasks of returned calls ----------------------------------------------------


def callback_completions_pending(*, organization: Organization | int) -> bool:
    with organization_scope(organization):
        return _pending_completion().exists()


def _pending_completion() -> QuerySet[MissedCall]:
    return MissedCall.objects.filter(
        returned_at__isnull=False,
        task_id__isnull=False,
        task_state__in=[TaskState.OPEN, TaskState.COMPLETING],
    )


def callback_tasks_complete(
    *, organization: Organization, client: AmoClient, now: datetime | None = None
) -> int:
    """Complete the «Перезвонить» task of every returned missed call, once, with the result
    («Перезвонили: Иван Петров через 12 мин, разговор 2:31»). Returns how many tasks were
    completed by this call.

    A task shared by several missed calls of a number is completed when all of them are
    returned. Each task is read first: one a manager completed (or deleted) in amoCRM is left
    alone. The state goes to ``completing`` with the result text (committed) before the PATCH;
    met again, the task is read and, completed with that very text, taken as done by us.
    Raises AmoError (transient or paused: the rows stay pending for the next run).
    """
    now = now or timezone.now()
    with organization_scope(organization):
        pending = set(
            _pending_completion().values_list("task_id", flat=True).distinct()[:COMPLETIONS_PER_RUN]
        )
        waiting = set(
            MissedCall.objects.filter(
                task_id__in=pending, returned_at__isnull=True, task_state=TaskState.OPEN
            ).values_list("task_id", flat=True)
        )
        rows = list(
            MissedCall.objects.filter(
                task_id__in=pending - waiting,
                task_state__in=[TaskState.OPEN, TaskState.COMPLETING],
            )
            .select_related("returning_call", "returned_by")
            .order_by("missed_at", "id")
        )
        names = _person_names(organization.pk, (m.returned_by for m in rows))
    groups: dict[int, list[MissedCall]] = defaultdict(list)
    for row in rows:
        assert row.task_id is not None
        groups[row.task_id].append(row)
    completed = 0
    for task_id, group in groups.items():
        try:
            completed += _task_complete(organization, client, task_id, group, names, now)
        except AmoPermanentError as exc:
            _task_mark(organization, group, TaskState.CLOSED_IN_AMO, now)
            audit_record(
                organization=organization,
                kind="callbacks.task_not_completed",
                level=AuditEntry.Level.WARNING,
                message=_("amoCRM не дал закрыть задачу «Перезвонить» %(id)s: %(e)s")
                % {"id": task_id, "e": exc.message},
                data={"task_id": task_id},
            )
    return completed


def _group_result(group: list[MissedCall], names: dict[int, str]) -> str:
    stored = next((m.task_result_text for m in group if m.task_result_text), "")
    if stored:
        return stored
    last = max(group, key=lambda m: (m.returned_at, m.pk))
    first_missed = min(m.missed_at for m in group)
    assert last.returned_at is not None
    returning = last.returning_call
    return result_text(
        who=names.get(last.returned_by_id or 0, ""),
        by_client=last.returned_by_client,
        answered=last.returned_answered,
        wait=int((last.returned_at - first_missed).total_seconds()),
        talk=returning.talk_seconds if returning is not None else 0,
    )


def _task_mark(
    organization: Organization, group: list[MissedCall], state: str, now: datetime, **extra: Any
) -> None:
    with organization_scope(organization):
        MissedCall.objects.filter(
            pk__in=[m.pk for m in group],
            task_state__in=[TaskState.OPEN, TaskState.COMPLETING],
        ).update(task_state=state, task_closed_at=now, **extra)


def _task_complete(
    organization: Organization,
    client: AmoClient,
    task_id: int,
    group: list[MissedCall],
    names: dict[int, str],
    now: datetime,
) -> int:
    text = _group_result(group, names)
    task = client.task_get(task_id)
    if task is None or task.is_completed:
        ours = (
            task is not None
            and any(m.task_state == TaskState.COMPLETING for m in group)
            and task.result_text == text
        )
        _task_mark(
            organization, group, TaskState.COMPLETED if ours else TaskState.CLOSED_IN_AMO, now
        )
        return 0
    with organization_scope(organization):
        MissedCall.objects.filter(pk__in=[m.pk for m in group]).update(
            task_state=TaskState.COMPLETING, task_result_text=text
        )
    client.task_update(task_id, TaskUpdate(is_completed=True, result_text=text))
    _task_mark(organization, group, TaskState.COMPLETED, now)
    logger.info(
        "callback task completed",
        extra={"organization_id": organization.pk, "task_id": task_id, "n": len(group)},
    )
    return 1


# --- the SLA -----------------------------------------------------------------------------------


# A call with the client still going on postpones the notification, for this long at most (a
# call whose last events were lost stays open until reconciliation; it must not block forever).
TALKING_AT_MOST = timedelta(hours=2)


def _overdue(now: datetime) -> QuerySet[MissedCall]:
    """Missed calls past their deadline, not returned, not yet notified — and no call with the
    client going on right now (a call-back in progress is counted once it is over)."""
    talking = PbxCall.objects.filter(
        organization_id=OuterRef("organization_id"),
        external_phone_national=OuterRef("phone_national"),
        started_at__gt=OuterRef("missed_at"),
        started_at__gte=now - TALKING_AT_MOST,
        handed_off_at__isnull=True,
    )
    return (
        MissedCall.objects.filter(
            returned_at__isnull=True, sla_notified_at__isnull=True, due_at__lte=now
        )
        .exclude(task_state=TaskState.CLOSED_IN_AMO)
        .exclude(Exists(talking))
    )


def callback_sla_notify(*, organization_id: int, now: datetime | None = None) -> int:
    """Send the amoCRM notification for every missed call of the organization that is past its
    SLA deadline and not returned: once per missed call, to its responsible manager and the
    supervisor, and only while the team is at work. Returns how many missed calls were
    notified.

    amoCRM's server-side notification is the ``phone_call`` event (``POST /api/v2/events``):
    it lands in the bell of the given users with the client's card (amocrm-api.md §7.1). The
    claim is committed before the request; a request refused outright (429, paused, revoked,
    rejected) gives the claim back for the next run, one with an unknown outcome (timeout,
    5xx, a killed worker) does not: a notification is never sent twice.
    """
    now = now or timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    settings = callback_settings_for(organization=organization)
    if not settings.notify_overdue or not working_hours_of(settings).contains(now):
        return 0
    with organization_scope(organization), transaction.atomic():
        claimed = list(
            _overdue(now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:500]
        )
        MissedCall.objects.filter(pk__in=claimed, sla_notified_at__isnull=True).update(
            sla_notified_at=now
        )
        rows = list(
            MissedCall.objects.filter(pk__in=claimed)
            .select_related("pbx_call")
            .order_by("missed_at", "id")
        )
    if not rows:
        return 0
    try:
        client = amo_client(organization=organization)
        rows = _tasks_still_open(organization, client, rows, now)
    except AmoError as exc:
        _claims_release(organization, [row.pk for row in rows])
        logger.info(
            "callback notifications not sent",
            extra={"organization_id": organization_id, "error": exc.message},
        )
        return 0
    supervisor = settings.supervisor_amo_user_id
    events: dict[tuple[str, tuple[int, ...]], list[int]] = defaultdict(list)
    nobody: list[int] = []
    for row in rows:
        users = tuple(sorted({u for u in (row.manager_amo_user_id, supervisor) if u}))
        if users:
            events[(row.pbx_call.external_phone, users)].append(row.pk)
        else:
            nobody.append(row.pk)
    with organization_scope(organization):
        MissedCall.objects.filter(pk__in=nobody).update(sla_notified_users=[])
    sent = 0
    items = list(events.items())
    for start in range(0, len(items), EVENTS_PER_REQUEST):
        chunk = items[start : start + EVENTS_PER_REQUEST]
        error: AmoError | None = None
        try:
            client.events_phone_call(
                [PhoneCallEvent(phone_number=phone, users=users) for (phone, users), _pks in chunk]
            )
        except AmoError as exc:
            error = exc
        # Refused outright (429, paused, revoked, rejected): the chunk is given back. Unknown
        # outcome (timeout, 5xx): amoCRM may have shown it, so it stays sent.
        unknown = isinstance(error, AmoTransientError) and not isinstance(error, AmoRateLimited)
        if error is None or unknown:
            with organization_scope(organization):
                for (_phone, users), pks in chunk:
                    MissedCall.objects.filter(pk__in=pks).update(sla_notified_users=list(users))
                    sent += len(pks)
        if error is not None:
            rest = items[start + len(chunk) :] if unknown else items[start:]
            _claims_release(organization, [pk for _key, pks in rest for pk in pks])
            logger.info(
                "callback notifications not sent",
                extra={"organization_id": organization_id, "error": error.message},
            )
            break
    return sent + len(nobody)


def _tasks_still_open(
    organization: Organization, client: AmoClient, rows: list[MissedCall], now: datetime
) -> list[MissedCall]:
    """Drop the claimed missed calls whose task a manager completed or deleted in amoCRM: they
    dealt with it there, a reminder would be noise (the claim is given back, the row marked)."""
    closed: list[int] = []
    for task_id in sorted({r.task_id for r in rows if r.task_id and r.task_state == "open"}):
        task = client.task_get(task_id)
        if task is None or task.is_completed:
            closed.append(task_id)
    if not closed:
        return rows
    with organization_scope(organization):
        MissedCall.objects.filter(task_id__in=closed, task_state=TaskState.OPEN).update(
            task_state=TaskState.CLOSED_IN_AMO, task_closed_at=now
        )
    _claims_release(organization, [r.pk for r in rows if r.task_id in closed])
    return [r for r in rows if r.task_id not in closed]


def _claims_release(organization: Organization, pks: list[int]) -> None:
    if not pks:
        return
    with organization_scope(organization):
        MissedCall.objects.filter(pk__in=pks).update(sla_notified_at=None)


def callbacks_due_dispatch(*, now: datetime | None = None) -> tuple[list[int], list[int]]:
    """The beat's sweep: an SLA check for every organization with overdue missed calls, and a
    delivery drain (which completes tasks) for every organization with returned calls whose
    task is still open. Returns both lists of organization ids."""
    now = now or timezone.now()
    with scopes_disabled():
        overdue = sorted(set(_overdue(now).values_list("organization_id", flat=True).distinct()))
        completing = sorted(
            set(_pending_completion().values_list("organization_id", flat=True).distinct())
        )
    for org_id in overdue:
        task_enqueue("integration.tasks.callback_sla_notify", org_id)
    for org_id in completing:
        task_enqueue("integration.tasks.pipeline_drain", org_id)
    return overdue, completing


def callback_completions_run(*, organization_id: int) -> timedelta | None:
    """The drain's last step: complete the tasks of returned calls. Never raises for amoCRM
    trouble; returns when to try again if it has to."""
    organization = Organization.objects.get(pk=organization_id)
    if not callback_completions_pending(organization=organization):
        return None
    try:
        callback_tasks_complete(
            organization=organization, client=amo_client(organization=organization)
        )
    except AmoError as exc:
        logger.info(
            "callback tasks not completed yet",
            extra={"organization_id": organization_id, "error": exc.message},
        )
        return None if isinstance(exc, AmoPaused | AmoAuthError) else timedelta(seconds=60)
    return None
