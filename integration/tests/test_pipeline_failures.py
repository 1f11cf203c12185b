"""Exactly once under trouble: duplicates, reordering, crashes at each step, lost answers,
amoCRM down, 429 storms, unpaid / revoked accounts, refused calls; and the retry paths."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from core.models import AuditEntry, Organization
from core.tenancy import organization_scope
from core.testing import in_parallel
from crm.client import AmoClient
from crm.errors import AmoTransientError
from crm.services import amo_resume
from crm.testing import install
from integration.delivery.drain import deliveries_drain
from integration.delivery.operations import delivery_retry
from integration.delivery.queue import (
    deliveries_due_dispatch,
    deliveries_resume_healthy,
    delivery_enqueue,
)
from integration.models import CallDelivery, ManagerMapping
from pbx.models import PbxCall, PbxNumber
from sandbox.amocrm.services import faults_set, tokens_revoke

CLIENT = "+79031112233"


def later(**delta):
    return timezone.now() + timedelta(hours=1, **delta)


def drain(world, **delta):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return deliveries_drain(organization_id=world.organization.pk, now=later(**delta))


def exactly_one_of_each(world, sim, *, task=True):
    assert world.account.contacts.count() == 1
    call = world.account.calls.get()
    assert call.uniq == sim.ext_tracking_id
    assert world.account.tasks.count() == (1 if task else 0)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.DONE, delivery.last_error
    assert delivery.amo_call_id == call.pk
    return delivery


@pytest.mark.parametrize(
    "options",
    [{"duplicate": True}, {"reorder": True}, {"duplicate": True, "reorder": True}],
    ids=["duplicated", "reordered", "both"],
)
@pytest.mark.parametrize("stepwise", [True, False], ids=["as-they-come", "all-at-once"])
def test_duplicated_and_reordered_events_give_one_contact_call_task(world, options, stepwise):
    sim = world.simulate(
        scenario="inbound_missed", external_phone=CLIENT, stepwise=stepwise, **options
    )
    world.finalize()  # a second hand-off attempt changes nothing
    delivery_enqueue(
        organization_id=world.organization.pk, call_id=world.call(sim.ext_tracking_id).pk
    )  # nor does a duplicated hand-off
    drain(world)

    exactly_one_of_each(world, sim)
    assert world.account.events.count() <= 1


def test_group_call_through_multichannel_number_is_tagged(world):
    # The emulated /numbers carries no names (as far as known, neither does Beeline's): support
    # types the multichannel number's name in admin, and the sync keeps it.
    with organization_scope(world.organization):
        PbxNumber.objects.filter(phone="4950000001").update(name="Отдел продаж")
    sim = world.simulate(
        scenario="inbound_group_answered", abonent_phone="9161110002", external_phone=CLIENT
    )

    contact = world.account.contacts.get()
    assert {t.name for t in contact.tags.all()} == {"BeelineConnector", "Отдел продаж"}
    call = world.account.calls.get()
    assert call.responsible_user_id == world.boris.pk  # who answered
    assert contact.responsible_user_id == world.boris.pk
    # Each mapped member got the pop-up once, when their phone started ringing (Олег: unmapped).
    notified = [user for event in world.account.events.all() for user in event.users]
    assert sorted(notified) == sorted([world.anna.pk, world.boris.pk])
    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.DONE


def test_group_missed_call_task_goes_to_contacts_responsible_when_mapped(world):
    from sandbox.amocrm.services import contact_create

    contact_create(
        account=world.account, name="Клиент", responsible=world.boris, phones=[(CLIENT, "WORK")]
    )
    world.simulate(scenario="inbound_group_missed", external_phone=CLIENT)

    assert world.account.tasks.get().responsible_user_id == world.boris.pk


def test_group_missed_call_task_goes_to_first_mapped_manager_otherwise(world):
    world.simulate(scenario="inbound_group_missed", external_phone=CLIENT)

    # The new contact's responsible is nobody's choice (the call was missed by all): the task
    # goes to the first mapped manager the call rang for.
    assert world.account.tasks.get().responsible_user_id == world.anna.pk


def test_recording_link_of_the_logged_call_plays(world, client, monkeypatch, settings):
    from sandbox.beeline import clock as beeline_clock

    world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    link = world.account.calls.get().link
    ready = timezone.now() + timedelta(seconds=settings.SANDBOX_BEELINE_RECORD_DELAY + 5)
    monkeypatch.setattr(beeline_clock, "now", lambda: ready)

    response = client.get(link.removeprefix(settings.PUBLIC_URL), HTTP_RANGE="bytes=0-99")

    assert response.status_code == 206
    assert response["Content-Type"] == "audio/mpeg"
    assert len(b"".join(response.streaming_content)) == 100


def test_unmapped_abonent_call_is_logged_without_responsible_and_flagged(world):
    sim = world.simulate(
        scenario="inbound_answered", abonent_phone="9161110003", external_phone=CLIENT
    )

    call = world.account.calls.get()
    assert call.responsible_user_id is None and call.created_by is None
    assert not world.account.events.exists()  # nobody to notify
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.DONE
    assert delivery.flags == ["unmapped_abonent"]


def test_switched_off_abonent_call_is_logged_without_responsible_and_flagged(world):
    with organization_scope(world.organization):
        ManagerMapping.objects.filter(amo_user_id=world.anna.pk).update(enabled=False)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)

    assert world.account.calls.get().responsible_user_id is None
    assert world.delivery(sim.ext_tracking_id).flags == ["abonent_disabled"]


# --- crashes and lost answers ---------------------------------------------------------------


class Killed(Exception):
    """The worker died right after amoCRM did the work (before we stored its answer)."""


@pytest.mark.parametrize("method", ["contacts_create", "calls_add", "tasks_add"])
def test_crash_after_each_remote_write_then_rerun_gives_exactly_one(world, monkeypatch, method):
    original = getattr(AmoClient, method)

    def dies_after(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Killed(method)

    monkeypatch.setattr(AmoClient, method, dies_after)
    with pytest.raises(Killed):
        world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    monkeypatch.setattr(AmoClient, method, original)

    # The claim's lease runs out, the beat's sweep drains again.
    drain(world, minutes=10)

    with organization_scope(world.organization):
        sim = PbxCall.objects.get()  # simulate() died before returning its result
    delivery = exactly_one_of_each(world, sim)
    assert delivery.attempts == 2


@pytest.mark.parametrize("method", ["calls_add", "tasks_add"])
def test_lost_answer_is_checked_before_posting_again(world, monkeypatch, method):
    original = getattr(AmoClient, method)
    calls = []

    def times_out_after(self, *args, **kwargs):
        calls.append(1)
        original(self, *args, **kwargs)
        if len(calls) == 1:
            raise AmoTransientError("amoCRM не ответил вовремя.")
        raise AssertionError("posted twice")

    monkeypatch.setattr(AmoClient, method, times_out_after)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.PENDING
    assert "posting" in (delivery.call_state, delivery.task_state)

    drain(world)

    exactly_one_of_each(world, sim)
    assert len(calls) == 1


def test_amocrm_answering_500_for_ten_minutes_loses_nothing(world):
    faults_set(account=world.account, error_rate=1.0, fail_status=500)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    for minute in range(1, 11):
        drain(world, minutes=minute - 60)
        delivery = world.delivery(sim.ext_tracking_id)
        assert delivery.status == CallDelivery.Status.PENDING, delivery.last_error
    assert delivery.attempts >= 2 and "500" in delivery.last_error
    assert not world.account.calls.exists()

    faults_set(account=world.account)
    drain(world)

    exactly_one_of_each(world, sim)


def test_transient_failures_give_up_after_24_hours_then_retry_delivers(world):
    faults_set(account=world.account, error_rate=1.0, fail_status=500)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.PENDING
    with organization_scope(world.organization):  # the first attempt was a day ago
        CallDelivery.objects.filter(pk=delivery.pk).update(
            first_attempt_at=timezone.now() - timedelta(hours=24, minutes=1)
        )
    drain(world)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.FAILED and "500" in delivery.last_error

    faults_set(account=world.account)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert delivery_retry(organization=world.organization, call_id=delivery.pbx_call_id)
    exactly_one_of_each(world, sim)


def test_a_429_storm_ends_with_exactly_one(world):
    faults_set(account=world.account, fail_next=12, fail_status=429)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    for minute in range(1, 6):
        drain(world, minutes=minute)

    exactly_one_of_each(world, sim)
    with organization_scope(world.organization):
        assert AuditEntry.objects.filter(kind="amo.rate_limited").exists()


def test_unpaid_account_pauses_deliveries_and_resumes_when_fixed(world):
    faults_set(account=world.account, unpaid=True)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.PAUSED
    assert delivery.attempts == 0  # no retry burnt
    drain(world)  # paused deliveries are not retried
    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.PAUSED
    assert deliveries_resume_healthy() == []  # crm still holds the account paused

    faults_set(account=world.account)
    amo_resume(organization=world.organization)  # support: «возобновить»
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert deliveries_resume_healthy() == [world.organization.pk]

    exactly_one_of_each(world, sim)


def test_revoked_tokens_pause_until_reauthorized(world):
    tokens_revoke(account=world.account)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.PAUSED
    world.organization.refresh_from_db()
    assert world.organization.status == Organization.Status.NEEDS_REAUTH

    install(world.account)  # the admin authorizes the widget again

    exactly_one_of_each(world, sim)


GHOST = 999_999_999  # an amoCRM user id the account does not have: amoCRM refuses the call


def remap_anna(world, *, to: int, old: int | None = None) -> None:
    with organization_scope(world.organization):
        ManagerMapping.objects.filter(amo_user_id=old or world.anna.pk).update(amo_user_id=to)


def refused_call(world):
    remap_anna(world, to=GHOST)
    sim = world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.FAILED
    assert "amoCRM" in delivery.last_error
    assert not world.account.calls.exists()
    remap_anna(world, to=world.anna.pk, old=GHOST)
    return sim, delivery


def test_refused_call_fails_with_reason_and_retry_delivers_it(world, outsider):
    sim, delivery = refused_call(world)
    assert delivery_retry(organization=outsider, call_id=delivery.pbx_call_id) is False
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert delivery_retry(organization=world.organization, call_id=delivery.pbx_call_id)

    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1


def test_repeat_caller_costs_no_search(world):
    world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    searches = world.account.api_requests.filter(
        path__startswith="/sandbox/amocrm/api/v4/contacts?"
    )
    before = searches.count()

    world.simulate(scenario="inbound_answered", external_phone=CLIENT)

    assert searches.count() == before
    assert world.account.calls.count() == 2 and world.account.contacts.count() == 1


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_calls_from_one_new_number_make_one_contact(world, settings):
    settings.PIPELINE_CLAIM_SIZE = 1  # each drain round takes one call: they really race
    first = world.simulate(scenario="inbound_answered", external_phone=CLIENT, finalize=False)
    second = world.simulate(
        scenario="inbound_missed", abonent_phone="9161110002", external_phone=CLIENT,
        finalize=False,
    )  # fmt: skip
    calls = [world.call(first.ext_tracking_id), world.call(second.ext_tracking_id)]
    for call in calls:
        with organization_scope(world.organization):
            CallDelivery.objects.create(
                organization=world.organization, pbx_call=call, next_attempt_at=timezone.now()
            )
    in_parallel(lambda: deliveries_drain(organization_id=world.organization.pk), threads=2)

    assert world.account.contacts.count() == 1
    assert world.account.calls.count() == 2
    assert world.account.tasks.count() == 1


# --- the beat's safety nets, admin, routing -------------------------------------------------


def test_a_handed_off_call_without_delivery_is_adopted_by_the_sweep(world):
    sim = world.simulate(scenario="inbound_answered", external_phone=CLIENT, finalize=False)
    with organization_scope(world.organization):  # pbx handed it off, our receiver never ran
        PbxCall.objects.filter(ext_tracking_id=sim.ext_tracking_id).update(
            status="finished", handed_off_at=timezone.now() - timedelta(minutes=5)
        )

    with TestCase.captureOnCommitCallbacks(execute=True):
        deliveries_due_dispatch()

    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1


def test_admin_retries_failed_deliveries(world, admin_client):
    sim, delivery = refused_call(world)

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = admin_client.post(
            "/admin/integration/calldelivery/",
            {"action": "retry_deliveries", "_selected_action": [delivery.pk]},
        )

    assert response.status_code == 302
    assert world.delivery(sim.ext_tracking_id).status == CallDelivery.Status.DONE
    page = admin_client.get(f"/admin/integration/calldelivery/{delivery.pk}/change/")
    assert page.status_code == 200


def test_a_lost_answer_to_one_batch_keeps_the_ids_of_the_other_batches(world, monkeypatch):
    """The call logs of a round go out in batches together; when one batch's answer is lost,
    the calls of the batches amoCRM answered are recorded at once (not looked up again)."""
    monkeypatch.setattr("integration.delivery.posting.BATCH_SIZE", 2)  # 3 calls → 2 batches
    original = AmoClient.calls_add
    batches: list[int] = []

    def second_batch_times_out(self, drafts):
        batches.append(len(drafts))
        results = original(self, drafts)
        if len(batches) == 2:
            raise AmoTransientError("amoCRM не ответил вовремя.")
        return results

    looked_up: list[int] = []
    original_notes = AmoClient.contact_call_notes

    def notes(self, contact_id):
        looked_up.append(contact_id)
        return original_notes(self, contact_id)

    monkeypatch.setattr(AmoClient, "calls_add", second_batch_times_out)
    monkeypatch.setattr(AmoClient, "contact_call_notes", notes)
    sims = [
        world.simulate(scenario="inbound_missed", external_phone=f"+7903111220{n}", finalize=False)
        for n in range(3)
    ]
    world.finalize()  # the three handed off together: one round
    states = {
        sim.ext_tracking_id: (d.call_state, d.amo_call_id)
        for sim in sims
        for d in [world.delivery(sim.ext_tracking_id)]
    }
    assert batches == [2, 1]
    assert sorted(state for state, _ in states.values()) == ["done", "done", "posting"]
    assert all(call_id for state, call_id in states.values() if state == "done")

    drain(world)

    assert looked_up and len(set(looked_up)) == 1  # only the unanswered batch's call
    assert batches == [2, 1]  # nothing posted again: the lost one was found in amoCRM
    assert world.account.calls.count() == 3
    for sim in sims:
        delivery = world.delivery(sim.ext_tracking_id)
        assert delivery.status == CallDelivery.Status.DONE, delivery.last_error
