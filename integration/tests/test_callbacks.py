"""Call-back tracking end to end: the Beeline simulator plays the client's calls through our
webhook, the pipeline delivers them to the amoCRM emulator; assertions are on what amoCRM
holds (the «Перезвонить» task, its result, the notifications) and on the stored missed calls
(docs/callbacks.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.utils import timezone

from core.services import organization_time_zone_set
from core.tenancy import organization_scope
from integration.callbacks import (
    callback_call_finalized,
    callback_settings_update,
    callback_sla_notify,
    callbacks_due_dispatch,
)
from integration.models import MissedCall
from integration.working_time import WorkingHours
from pbx.calls import call_finalize
from pbx.models import PbxCall
from sandbox.amocrm.services import task_update
from sandbox.beeline.services import story_simulate

CLIENT = "+79031112233"
MSK = ZoneInfo("Europe/Moscow")


def misses(world) -> list[MissedCall]:
    with organization_scope(world.organization):
        return list(
            MissedCall.objects.select_related("returning_call", "returned_by").order_by("missed_at")
        )


def minutes_between(later: datetime, earlier: datetime) -> int:
    return max(1, round((later - earlier).total_seconds() / 60))


def always_open(world) -> None:
    """Working hours around the clock, so deadlines do not depend on when the suite runs."""
    callback_settings_update(organization=world.organization, values={"working_hours": [None] * 7})


def test_missed_then_called_back_completes_the_task_with_the_result(world):
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=12)
    )
    task = world.account.tasks.get()
    assert task.text == f"Перезвонить на номер {CLIENT}" and not task.is_completed
    assert task.responsible_user_id == world.anna.pk
    [missed] = misses(world)
    assert missed.task_id == task.pk and missed.task_state == "open"
    assert task.complete_till == int(missed.due_at.timestamp())  # the due time is the SLA's

    back = world.simulate(scenario="outbound_answered", external_phone=CLIENT, talk_seconds=151)

    task.refresh_from_db()
    [missed] = misses(world)
    returning = world.call(back.ext_tracking_id)
    assert missed.returning_call == returning
    assert missed.returned_at == returning.answered_at
    assert missed.returned_by.phone == "9161110001" and not missed.returned_by_client
    assert missed.wait_seconds == int((returning.answered_at - missed.missed_at).total_seconds())
    wait = minutes_between(returning.answered_at, missed.missed_at)
    assert task.is_completed
    assert task.result_text == f"Перезвонили: Анна Петрова через {wait} мин, разговор 2:31"
    assert missed.task_state == "completed"
    assert world.account.tasks.count() == 1  # the call back needs no task of its own


def test_missed_twice_then_one_call_back_one_task_completed(world):
    always_open(world)
    with TestCase.captureOnCommitCallbacks(execute=True):
        calls = story_simulate(
            pbx=world.pbx,
            story="missed_twice_then_client_calls",
            abonent_phone="9161110001",
            external_phone=CLIENT,
            minutes=20,
        )
    world.finalize()
    first, second = misses(world)
    returning = world.call(calls[-1].ext_tracking_id)
    assert first.returning_call == second.returning_call == returning
    assert first.returned_by_client and second.returned_by_client
    task = world.account.tasks.get()  # one task for both missed calls
    assert task.is_completed
    wait = minutes_between(returning.answered_at, first.missed_at)
    assert task.result_text == (
        f"Клиент перезвонил сам: ответил Анна Петрова через {wait} мин, разговор 2:31"
    )


def test_further_misses_update_the_open_task_instead_of_adding_one(world):
    always_open(world)
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=9)
    )
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=now - timedelta(minutes=3),
        abonent_phone="9161110002",
    )
    task = world.account.tasks.get()
    first, second = misses(world)
    last = second.missed_at.astimezone(MSK).strftime("%H:%M")
    assert task.text == (
        f"Перезвонить на номер {CLIENT} (пропущенных звонков: 2, последний в {last})"
    )
    assert task.complete_till == int(second.due_at.timestamp())
    assert task.responsible_user_id == world.anna.pk  # the task stays with its manager
    assert first.task_id == second.task_id == task.pk
    assert not task.is_completed

    world.simulate(scenario="outbound_answered", external_phone=CLIENT, abonent_phone="9161110002")
    task.refresh_from_db()
    assert task.is_completed and task.result_text.startswith("Перезвонили: Борис Сидоров через")
    assert world.account.tasks.count() == 1


def test_the_client_calls_again_and_is_answered(world):
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=40)
    )
    world.simulate(
        scenario="inbound_answered",
        external_phone=CLIENT,
        talk_seconds=65,
        abonent_phone="9161110002",
    )
    task = world.account.tasks.get()
    assert task.is_completed
    assert task.result_text.startswith("Клиент перезвонил сам: ответил Борис Сидоров через")
    assert task.result_text.endswith("разговор 1:05")


def test_a_task_the_manager_completed_in_amocrm_is_left_alone(world):
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=timezone.now() - timedelta(minutes=5),
    )
    task = world.account.tasks.get()
    task_update(
        task=task,
        changes={"is_completed": True, "result_text": "Дозвонилась с мобильного"},
        updated_by=world.anna.pk,
    )
    task.refresh_from_db()
    touched_at = task.updated_at

    world.simulate(scenario="outbound_answered", external_phone=CLIENT)

    task.refresh_from_db()
    assert task.result_text == "Дозвонилась с мобильного"
    assert task.updated_at == touched_at and task.updated_by == world.anna.pk
    [missed] = misses(world)
    assert missed.returned_at is not None  # still counted as returned in the report
    assert missed.task_state == "closed_in_amo"
    patches = world.account.api_requests.filter(method="PATCH", path__contains="/tasks")
    assert not patches.exists()


def test_a_miss_after_the_manager_closed_the_task_gets_a_new_task(world):
    always_open(world)
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=8)
    )
    old = world.account.tasks.get()
    task_update(
        task=old, changes={"is_completed": True, "result_text": "Не наш клиент"}, updated_by=0
    )
    world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    new = world.account.tasks.exclude(pk=old.pk).get()
    assert new.text == f"Перезвонить на номер {CLIENT}" and not new.is_completed
    old.refresh_from_db()
    assert old.result_text == "Не наш клиент"


@pytest.mark.parametrize("counts", [False, True], ids=["answered-only", "attempts-count"])
def test_an_unanswered_call_back_counts_only_with_the_setting(world, counts):
    callback_settings_update(
        organization=world.organization, values={"count_unanswered_attempts": counts}
    )
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=timezone.now() - timedelta(minutes=3),
    )
    world.simulate(scenario="outbound_no_answer", external_phone=CLIENT)
    task = world.account.tasks.get()
    [missed] = misses(world)
    assert (missed.returned_at is not None) is counts
    assert task.is_completed is counts
    if counts:
        assert not missed.returned_answered
        assert task.result_text.endswith(", клиент не ответил")


def test_a_call_before_the_miss_or_another_number_returns_nothing(world):
    now = timezone.now()
    world.simulate(
        scenario="outbound_answered", external_phone=CLIENT, ended_at=now - timedelta(minutes=30)
    )
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=10)
    )
    world.simulate(scenario="outbound_answered", external_phone="+79037778899")
    [missed] = misses(world)
    assert missed.returned_at is None
    assert not world.account.tasks.get().is_completed


# --- order, duplicates, replays --------------------------------------------------------------


@pytest.mark.parametrize(
    "delivery",
    ["in_order", "duplicated", "reordered", "call_back_first", "lagging_worker"],
)
def test_the_outcome_does_not_depend_on_how_the_events_arrive(world, delivery):
    """Each call's events twice or reversed; the call-back finalized before the missed call;
    a worker catching up with everything at once — always one task, completed, with the same
    return recorded."""
    now = timezone.now()
    options = {
        "duplicated": {"duplicate": True},
        "reordered": {"reorder": True},
        "lagging_worker": {"stepwise": False},
    }.get(delivery, {})
    miss = {"scenario": "inbound_missed", "ended_at": now - timedelta(minutes=12)}
    back = {"scenario": "outbound_answered", "talk_seconds": 151}
    plays = [back, miss] if delivery == "call_back_first" else [miss, back]
    sims = [world.simulate(external_phone=CLIENT, **play, **options) for play in plays]
    returning = world.call(sims[0 if delivery == "call_back_first" else 1].ext_tracking_id)

    [missed] = misses(world)
    assert missed.returning_call == returning
    wait = minutes_between(returning.answered_at, missed.missed_at)
    task = world.account.tasks.get()
    assert task.is_completed
    assert task.result_text == f"Перезвонили: Анна Петрова через {wait} мин, разговор 2:31"
    assert missed.task_state == "completed"


def test_replaying_the_hook_and_an_earlier_call_back_arriving_late(world):
    """The hook is idempotent; a call-back that happened earlier but is finalized later takes
    over as the one that returned the call (the earliest wins, in any order)."""
    now = timezone.now()
    miss = world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(minutes=30)
    )
    early = world.simulate(
        scenario="outbound_answered",
        external_phone=CLIENT,
        ended_at=now - timedelta(minutes=20),
        finalize=False,
    )
    late = world.simulate(scenario="outbound_answered", external_phone=CLIENT, finalize=False)
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_finalize(
            call_pk=world.call(late.ext_tracking_id).pk,
            now=timezone.now() + timedelta(minutes=1),
        )
    late_returned = misses(world)[0].returning_call
    assert late_returned == world.call(late.ext_tracking_id)
    assert world.account.tasks.get().is_completed
    world.finalize()  # now the early call
    for call in (miss, early):
        callback_call_finalized(
            organization_id=world.organization.pk, call_id=world.call(call.ext_tracking_id).pk
        )
    [missed] = misses(world)
    assert late_returned != missed.returning_call == world.call(early.ext_tracking_id)
    assert world.account.tasks.count() == 1


# --- the SLA ---------------------------------------------------------------------------------

# Friday 2026-03-06 17:50 Moscow: 10 working minutes left that day, the deadline falls on
# Monday 2026-03-09 at 09:05 (default schedule: weekdays 09:00–18:00, 15 minutes).
FRIDAY_EVENING = datetime(2026, 3, 6, 17, 50, tzinfo=MSK)


def notify(world, at: datetime) -> int:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return callback_sla_notify(organization_id=world.organization.pk, now=at)


def test_not_returned_in_time_one_notification_never_outside_working_hours(world):
    callback_settings_update(
        organization=world.organization, values={"supervisor_amo_user_id": world.boris.pk}
    )
    world.simulate(scenario="inbound_missed", external_phone=CLIENT, ended_at=FRIDAY_EVENING)
    [missed] = misses(world)
    expected_due = WorkingHours.of(
        time_zone="Europe/Moscow", working_hours=[["09:00", "18:00"]] * 5 + [None, None]
    ).deadline(missed.missed_at, 15)
    assert missed.due_at == expected_due and expected_due.astimezone(MSK).weekday() == 0
    assert world.account.tasks.get().complete_till == int(expected_due.timestamp())
    rings = world.account.events.count()  # the incoming-call pop-up

    for at in (
        datetime(2026, 3, 6, 18, 30, tzinfo=MSK),  # Friday evening: not due yet
        datetime(2026, 3, 7, 12, 0, tzinfo=MSK),  # Saturday
        expected_due - timedelta(seconds=1),  # Monday, a second early
    ):
        assert notify(world, at) == 0
    assert world.account.events.count() == rings

    assert notify(world, expected_due + timedelta(seconds=30)) == 1
    assert notify(world, expected_due + timedelta(minutes=1)) == 0
    assert notify(world, expected_due + timedelta(hours=3)) == 0
    event = world.account.events.order_by("-id").first()
    assert world.account.events.count() == rings + 1
    assert event.type == "phone_call" and event.phone_number == CLIENT
    assert sorted(event.users) == sorted([world.anna.pk, world.boris.pk])
    [missed] = misses(world)
    assert missed.sla_notified_at == expected_due + timedelta(seconds=30)


def test_overdue_call_in_the_night_is_notified_at_the_next_opening(world):
    world.simulate(scenario="inbound_missed", external_phone=CLIENT, ended_at=FRIDAY_EVENING)
    [missed] = misses(world)
    # Nobody ran the check during Monday: at 23:00 it is overdue, but the office is closed.
    assert notify(world, datetime(2026, 3, 9, 23, 0, tzinfo=MSK)) == 0
    assert notify(world, datetime(2026, 3, 10, 9, 0, tzinfo=MSK)) == 1


def test_no_notification_when_returned_or_the_manager_closed_the_task_or_it_is_off(world):
    always_open(world)
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(hours=2)
    )
    world.simulate(scenario="outbound_answered", external_phone=CLIENT)
    other = "+79035556677"
    world.simulate(
        scenario="inbound_missed", external_phone=other, ended_at=now - timedelta(hours=2)
    )
    closed = world.account.tasks.get(text__contains=other)
    task_update(task=closed, changes={"is_completed": True, "result_text": "ok"}, updated_by=0)
    third = "+79034445566"
    world.simulate(
        scenario="inbound_missed", external_phone=third, ended_at=now - timedelta(hours=2)
    )
    callback_settings_update(organization=world.organization, values={"notify_overdue": False})
    assert notify(world, now) == 0
    callback_settings_update(organization=world.organization, values={"notify_overdue": True})
    before = world.account.events.count()
    assert notify(world, now + timedelta(minutes=1)) == 1  # the third number only
    assert world.account.events.count() == before + 1
    assert world.account.events.order_by("-id").first().phone_number == third
    closed_miss = next(m for m in misses(world) if m.task_id == closed.pk)
    assert closed_miss.task_state == "closed_in_amo" and closed_miss.sla_notified_at is None


def test_the_beat_sends_overdue_checks_and_completions(world, monkeypatch):
    always_open(world)
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=timezone.now() - timedelta(hours=1),
    )
    before = world.account.events.count()
    overdue, completing = callbacks_due_dispatch()
    assert overdue == [world.organization.pk] and completing == []
    assert world.account.events.count() == before + 1  # eager Celery ran the check
    assert callbacks_due_dispatch() == ([], [])


def test_a_refused_notification_is_tried_again_an_unanswered_one_is_not(world):
    from sandbox.amocrm.services import faults_set

    always_open(world)
    world.settings_set(create_task_missed=False)  # no task to read: the faults hit the POST
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=timezone.now() - timedelta(hours=1),
    )
    before = world.account.events.count()
    faults_set(account=world.account, fail_next=1, fail_status=400)
    assert notify(world, timezone.now()) == 0
    [missed] = misses(world)
    assert missed.sla_notified_at is None  # refused before any work: tried again
    faults_set(account=world.account, fail_next=1, fail_status=504)
    assert notify(world, timezone.now()) == 1
    assert notify(world, timezone.now()) == 0  # unknown outcome: never sent twice
    [missed] = misses(world)
    assert missed.sla_notified_at is not None
    assert world.account.events.count() == before  # the emulator refused both


def test_a_call_with_the_client_going_on_postpones_the_notice(world, outsider):
    always_open(world)
    now = timezone.now()
    world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, ended_at=now - timedelta(hours=1)
    )

    def talking(organization, name: str, started: datetime) -> PbxCall:
        with organization_scope(organization):
            return PbxCall.objects.create(
                organization=organization,
                ext_tracking_id=name,
                direction="out",
                external_phone=CLIENT,
                external_phone_national="9031112233",
                started_at=started,
                answered_at=started,
                status="in_progress",
            )

    talking(outsider, "theirs", now - timedelta(minutes=1))  # another tenant's: irrelevant
    ours = talking(world.organization, "ours", now - timedelta(minutes=1))
    assert notify(world, now) == 0  # Анна is on the phone with the client right now
    with organization_scope(world.organization):
        PbxCall.objects.filter(pk=ours.pk).update(started_at=now - timedelta(hours=3))
    assert notify(world, now) == 1  # a call "going on" for hours lost its last events


def test_the_deadline_and_the_notice_follow_the_organizations_time_zone(world):
    """The SLA counts in the organization's time zone («Организация»): Friday 17:50 in Moscow is
    already Saturday night in Vladivostok, so the clock starts there on Monday morning."""
    organization_time_zone_set(organization=world.organization, time_zone="Asia/Vladivostok")
    world.simulate(scenario="inbound_missed", external_phone=CLIENT, ended_at=FRIDAY_EVENING)
    [missed] = misses(world)
    vladivostok = ZoneInfo("Asia/Vladivostok")
    assert missed.due_at == datetime(2026, 3, 9, 9, 15, tzinfo=vladivostok)
    assert notify(world, datetime(2026, 3, 9, 9, 14, tzinfo=vladivostok)) == 0
    assert notify(world, datetime(2026, 3, 9, 9, 16, tzinfo=vladivostok)) == 1
