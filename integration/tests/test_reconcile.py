"""Reconciliation: a call whose events were all lost is recovered from Beeline's statistics
and delivered like any other (pbx/reconcile.py + the pipeline)."""

from __future__ import annotations

from datetime import timedelta

from django.test import TestCase
from django.utils import timezone

from core.tenancy import organization_scope
from integration.models import CallDelivery
from pbx.models import PbxCall
from pbx.reconcile import statistics_reconcile

CLIENT = "+79031112233"


def reconcile(world, *, after: float = 600):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return statistics_reconcile(
            organization=world.organization, now=timezone.now() + timedelta(seconds=after)
        )


def test_a_call_whose_events_were_all_dropped_is_recovered_and_delivered(world):
    world.simulate(scenario="inbound_missed", external_phone=CLIENT, drop=True, stepwise=False)
    with organization_scope(world.organization):
        assert not PbxCall.objects.exists()

    assert reconcile(world, after=5) == []  # too fresh: its events may still be coming
    created = reconcile(world)

    assert len(created) == 1
    with organization_scope(world.organization):
        call = PbxCall.objects.select_related("delivery").get()
    assert call.recovered and call.direction == "in" and call.outcome == "missed"
    assert call.external_phone == CLIENT and call.abonent.phone == "9161110001"
    assert call.delivery.status == CallDelivery.Status.DONE
    assert "recovered" in call.delivery.flags
    amo_call = world.account.calls.get()
    assert (amo_call.phone, amo_call.call_status, amo_call.uniq) == (
        CLIENT,
        6,
        call.ext_tracking_id,
    )
    assert amo_call.responsible_user_id == world.anna.pk
    assert world.account.tasks.count() == 1

    assert reconcile(world) == []  # idempotent
    assert world.account.calls.count() == 1


def test_calls_we_have_are_not_recovered_twice(world):
    world.simulate(scenario="outbound_answered", external_phone=CLIENT)
    world.simulate(scenario="inbound_answered", abonent_phone="9161110002", external_phone=CLIENT)

    assert reconcile(world) == []
    assert world.account.calls.count() == 2


def test_answered_outbound_dropped_call_is_recovered_as_answered(world):
    world.simulate(scenario="outbound_answered", external_phone=CLIENT, drop=True, stepwise=False)

    [call_id] = reconcile(world)

    with organization_scope(world.organization):
        call = PbxCall.objects.get(pk=call_id)
    assert (call.direction, call.outcome, call.talk_seconds) == ("out", "answered", 30)
    assert world.account.calls.get().call_status == 4


def test_the_beat_task_recovers_dropped_calls(world, monkeypatch):
    """The scheduled entry (pbx.tasks.statistics_reconcile_all) runs end to end."""
    from types import SimpleNamespace

    from pbx import reconcile, tasks

    world.simulate(scenario="inbound_missed", external_phone=CLIENT, drop=True, stepwise=False)
    later = timezone.now() + timedelta(seconds=600)
    monkeypatch.setattr(reconcile, "timezone", SimpleNamespace(now=lambda: later))

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.statistics_reconcile_all() >= 1

    with organization_scope(world.organization):
        call = PbxCall.objects.select_related("delivery").get()
    assert call.recovered and call.delivery.status == CallDelivery.Status.DONE
    assert world.account.calls.count() == 1
