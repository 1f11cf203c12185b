"""No call lost or duplicated under real faults, end to end through both emulators:
late events of a call recovered from statistics, the reverse race, concurrent hand-offs of one
call (real PostgreSQL connections), and a poisoned event among good ones."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import TestCase
from django.utils import timezone

from core.tenancy import organization_scope
from core.testing import organization_make
from integration.delivery import queue
from integration.models import CallDelivery, RingNotice
from pbx import reconcile as reconcile_module
from pbx.calls import call_finalize
from pbx.models import PbxCall, PbxEvent
from pbx.reconcile import statistics_reconcile
from pbx.recording_links import recording_token_open
from pbx.selectors import call_recording_url

CLIENT = "+79031112233"


def reconcile(world, *, after: float = 600):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return statistics_reconcile(
            organization=world.organization, now=timezone.now() + timedelta(seconds=after)
        )


def calls_of(world) -> list[PbxCall]:
    with organization_scope(world.organization):
        return list(PbxCall.objects.select_related("delivery", "abonent").order_by("pk"))


# --- A. late events of a recovered call -------------------------------------------------------


@pytest.mark.parametrize("scenario", ["inbound_missed", "inbound_answered", "outbound_answered"])
def test_late_events_join_the_recovered_call_and_are_not_delivered_again(world, scenario):
    sim = world.simulate(scenario=scenario, external_phone=CLIENT, drop=True, stepwise=False)
    [recovered_pk] = reconcile(world)
    tasks = world.account.tasks.count()
    assert world.account.calls.count() == 1

    # The events come after all (a worker's backlog, a redelivered task, Beeline late).
    for body in sim.documents:
        world.post_event(body)
    world.finalize()

    [call] = calls_of(world)
    assert call.pk == recovered_pk and call.recovered
    assert call.events_tracking_id == sim.ext_tracking_id
    assert call.ext_tracking_id.startswith("stat:")  # what amoCRM knows it by (uniq)
    assert call.status == PbxCall.Status.FINISHED
    assert call.delivery.status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1  # one call log …
    assert world.account.tasks.count() == tasks  # … and no second «Перезвонить»
    assert reconcile(world) == []  # and reconciliation still matches it
    with organization_scope(world.organization):
        assert not PbxEvent.objects.filter(processed_at__isnull=True).exists()
        assert not PbxEvent.objects.exclude(error="").exists()


def test_late_events_enrich_the_recovered_call(world):
    """The recording is filed under the real tracking id: the joined call's link uses it."""
    sim = world.simulate(
        scenario="inbound_answered", external_phone=CLIENT, drop=True, stepwise=False
    )
    reconcile(world)
    [before] = calls_of(world)
    assert call_recording_url(call=before) is None  # statistics give no tracking id

    for body in sim.documents:
        world.post_event(body)
    [after] = calls_of(world)
    assert after.recording_user_id and after.abonent.phone == "9161110001"
    url = call_recording_url(call=after)
    assert url is not None
    ref = recording_token_open(token=url.rstrip("/").rsplit("/", 1)[-1])
    assert ref is not None and ref.ext_tracking_id == sim.ext_tracking_id


def test_partial_late_events_leave_the_recovered_call_finished_and_ring_no_one(world):
    sim = world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, drop=True, stepwise=False
    )
    reconcile(world)

    world.post_event(sim.documents[0])  # only the first event (ringing) comes late

    [call] = calls_of(world)
    assert call.status == PbxCall.Status.FINISHED and call.outcome == PbxCall.Outcome.MISSED
    assert call.events_tracking_id == sim.ext_tracking_id
    with organization_scope(world.organization):
        assert not RingNotice.objects.exists()  # no pop-up for a call long over
    assert world.account.calls.count() == 1


def test_a_recovered_call_is_joined_once_and_another_call_of_the_number_stays_apart(world):
    first = world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, drop=True, stepwise=False
    )
    reconcile(world)
    # The same client calls again five minutes later; that call's events arrive normally.
    world.simulate(
        scenario="inbound_missed",
        external_phone=CLIENT,
        ended_at=timezone.now() + timedelta(minutes=5),
    )
    for body in first.documents:
        world.post_event(body)
    world.finalize()

    calls = calls_of(world)
    assert len(calls) == 2
    assert [c.events_tracking_id for c in calls] == [first.ext_tracking_id, ""]
    assert world.account.calls.count() == 2


def test_reconciliation_does_not_recover_a_call_whose_events_arrive_meanwhile(world, monkeypatch):
    """The reverse race: the events are folded between reconciliation's read of our calls and
    its creation of the recovered one."""
    sim = world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, drop=True, stepwise=False
    )
    real_recover = reconcile_module._call_recover

    def events_arrive_first(**kwargs):
        for body in sim.documents:
            world.post_event(body)
        return real_recover(**kwargs)

    monkeypatch.setattr(reconcile_module, "_call_recover", events_arrive_first)
    assert reconcile(world) == []
    world.finalize()

    [call] = calls_of(world)
    assert not call.recovered and call.ext_tracking_id == sim.ext_tracking_id
    assert world.account.calls.count() == 1


# --- B. a call reaches delivery at most once ---------------------------------------------------


def test_the_database_refuses_a_second_delivery_of_a_call(world):
    world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    [call] = calls_of(world)
    with organization_scope(world.organization), pytest.raises(IntegrityError):
        with transaction.atomic():
            CallDelivery.objects.create(organization=world.organization, pbx_call=call)


def _run_at_once(count: int, work) -> list[object]:
    """Run ``work`` in ``count`` threads (each on its own database connection) released
    together; returns their results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work()
        except Exception as exc:  # reported to the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.fixture
def finished_call(transactional_db, monkeypatch):
    """A finished, settled call not handed off yet, committed (other connections see it);
    drains are not queued (this is about the hand-off alone)."""
    monkeypatch.setattr(queue, "drain_after_commit", lambda organization_id: None)
    organization_make(name="Outsider Ltd")
    org = organization_make(name="Acme")
    now = timezone.now()
    with organization_scope(org):
        call = PbxCall.objects.create(
            organization=org,
            ext_tracking_id="race-1",
            direction=PbxCall.Direction.IN,
            external_phone=CLIENT,
            external_phone_national=CLIENT[2:],
            started_at=now - timedelta(minutes=2),
            ended_at=now - timedelta(minutes=1),
            outcome=PbxCall.Outcome.MISSED,
            status=PbxCall.Status.FINISHED,
            finished_at=now - timedelta(minutes=1),
        )
    return org, call


@pytest.mark.django_db(transaction=True)
def test_concurrent_finalizations_of_one_call_make_one_delivery(finished_call):
    org, call = finished_call
    results = _run_at_once(4, lambda: call_finalize(call_pk=call.pk))

    assert sorted(results, key=str) == [False, False, False, True]
    with organization_scope(org):
        assert CallDelivery.objects.filter(pbx_call=call).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_hand_offs_of_one_call_make_one_delivery(finished_call):
    """Even when the claim is bypassed (a redelivered signal, the orphan sweep racing the
    receiver), the unique row per call decides."""
    org, call = finished_call
    results = _run_at_once(
        4, lambda: queue.delivery_enqueue(organization_id=org.pk, call_id=call.pk).pk
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    with organization_scope(org):
        [delivery] = CallDelivery.objects.filter(pbx_call=call)
    assert set(results) == {delivery.pk}


# --- C. a poisoned event among good ones --------------------------------------------------------


def test_a_poisoned_released_event_does_not_stop_the_call_from_being_delivered_once(world):
    sim = world.simulate(scenario="inbound_answered", external_phone=CLIENT, finalize=False)
    released = next(d for d in sim.documents if "CallReleasedEvent" in d)
    release_time = released.split("releaseTime>")[1].split("<")[0]
    event_id = released.split("eventID>")[1].split("<")[0]
    # Sent again under another eventID (overlapping subscriptions, §9.4), its time spoiled.
    world.post_event(
        released.replace(f"releaseTime>{release_time}<", "releaseTime>99999999999999999<").replace(
            event_id, event_id + "-again"
        )
    )
    world.finalize()

    [call] = calls_of(world)
    assert call.status == PbxCall.Status.FINISHED and call.talk_seconds == 30
    assert call.delivery.status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1
    with organization_scope(world.organization):
        bad = PbxEvent.objects.get(event_id=event_id + "-again")
    assert bad.quarantined_at is not None and "releaseTime" in bad.error


@pytest.mark.parametrize("release", ["lost", "poisoned"])
def test_a_call_whose_release_never_folds_is_finished_from_statistics(world, release):
    """The call's only Released event is lost, or quarantined as malformed: the call is built
    but never finishes from its events. Statistics finish it (once), instead of leaving it
    «ringing» for ever — matched as a twin, it used to be neither finished nor recovered."""
    sim = world.simulate(
        scenario="inbound_answered", external_phone=CLIENT, drop=True, stepwise=False
    )
    for body in sim.documents:
        if "CallReleasedEvent" not in body:
            world.post_event(body)
        elif release == "poisoned":
            time = body.split("releaseTime>")[1].split("<")[0]
            world.post_event(body.replace(f"releaseTime>{time}<", "releaseTime>-1<"))
    world.finalize()
    [call] = calls_of(world)
    assert call.status == PbxCall.Status.IN_PROGRESS
    assert world.account.calls.count() == 0

    assert reconcile(world) == []  # not a new call: the one we have, finished
    [call] = calls_of(world)
    assert call.status == PbxCall.Status.FINISHED and call.recovered
    assert call.outcome == PbxCall.Outcome.ANSWERED and call.talk_seconds == 30
    assert call.ext_tracking_id == sim.ext_tracking_id
    assert call.delivery.status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1

    reconcile(world)
    for body in sim.documents:  # the events, all of them, once more (late, redelivered)
        world.post_event(body)
    world.finalize()
    [call] = calls_of(world)
    assert call.status == PbxCall.Status.FINISHED
    assert world.account.calls.count() == 1


def test_a_row_without_talk_time_does_not_finish_a_conversation_our_events_saw(world):
    sim = world.simulate(
        scenario="inbound_answered", external_phone=CLIENT, drop=True, stepwise=False
    )
    for body in sim.documents:
        if "CallReleasedEvent" not in body:
            world.post_event(body)
    [row] = sim.statistics
    row.duration_ms = 0  # not this conversation's end
    row.save(update_fields=["duration_ms"])

    assert reconcile(world) == []
    [call] = calls_of(world)
    assert call.status == PbxCall.Status.IN_PROGRESS and not call.recovered
