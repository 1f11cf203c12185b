"""Subscription lifecycle against the Beeline emulator: granted expiry, renewal, termination,
Beeline down and back, and the fan-out for many organizations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from core.models import AuditEntry
from core.tenancy import organization_scope
from core.testing import organization_make
from pbx import tasks
from pbx.connection import beeline_token_save
from pbx.models import BeelineCredentials, Subscription
from pbx.selectors import pbx_health
from pbx.subscriptions import subscription_ensure, subscription_renew_due
from pbx.testing import credentials_make
from sandbox.beeline.services import faults_set, subscription_terminate


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)


@pytest.fixture
def connected(org, beeline_pbx, settings):
    settings.PBX_SUBSCRIPTION_SECONDS = 86400
    settings.SANDBOX_BEELINE_MAX_SUBSCRIPTION = 3600  # Beeline grants less than we ask
    beeline_token_save(organization=org, token=beeline_pbx.token)
    return org


def renew_due(**kwargs) -> list[int]:
    """subscription_renew_due with its on-commit fan-out run (tasks are eager in tests)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return subscription_renew_due(**kwargs)


def active(org) -> Subscription:
    with organization_scope(org):
        return Subscription.objects.get(status="active")


def test_the_granted_expiry_is_kept_and_renewal_comes_before_it(connected):
    sub = active(connected)
    assert sub.requested_seconds == 86400 and sub.granted_seconds == 3600
    assert sub.expires_at - sub.created_at == timedelta(seconds=3600)
    assert sub.created_at < sub.renew_at < sub.expires_at
    # Not due yet: nothing queued, the same subscription is kept.
    assert renew_due(now=sub.renew_at - timedelta(seconds=1)) == []
    assert subscription_ensure(organization=connected, now=sub.created_at).pk == sub.pk


def test_due_subscription_is_renewed_and_the_old_one_deleted(connected, beeline_pbx):
    old = active(connected)
    queued = renew_due(now=old.renew_at + timedelta(seconds=1))
    assert queued == [connected.pk]
    new = active(connected)
    assert new.subscription_id != old.subscription_id
    remote_old = beeline_pbx.subscriptions.get(subscription_id=old.subscription_id)
    assert remote_old.deleted_at is not None
    assert beeline_pbx.subscriptions.filter(deleted_at__isnull=True).count() == 1


def test_terminated_event_renews_at_once(
    connected, beeline_pbx, django_capture_on_commit_callbacks
):
    old = active(connected)
    remote = beeline_pbx.subscriptions.get(subscription_id=old.subscription_id)
    with django_capture_on_commit_callbacks(execute=True):
        delivery = subscription_terminate(subscription=remote)
    assert delivery is not None and delivery.status_code == 200
    with organization_scope(connected):
        assert Subscription.objects.get(pk=old.pk).status == "terminated"
        assert AuditEntry.objects.filter(kind="beeline.subscription_terminated").exists()
    new = active(connected)
    assert new.pk != old.pk
    assert beeline_pbx.subscriptions.filter(
        subscription_id=new.subscription_id, deleted_at__isnull=True, terminated_at__isnull=True
    ).exists()


@pytest.fixture
def clock(monkeypatch):
    """Frozen, movable time for everything that asks django.utils.timezone.now()."""

    class Clock:
        now = timezone.now()

        def move_to(self, moment):
            self.now = moment

    frozen = Clock()
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


def test_beeline_down_is_retried_with_backoff_flagged_and_recovers(clock, connected, beeline_pbx):
    old = active(connected)
    due = old.renew_at + timedelta(seconds=1)
    clock.move_to(due)
    faults_set(pbx=beeline_pbx, down=True)
    assert renew_due() == [connected.pk]
    with organization_scope(connected):
        credentials = BeelineCredentials.objects.get()
        errors = AuditEntry.objects.filter(kind="beeline.subscription_failed", level="error")
        assert errors.count() == 1
    assert credentials.status == "failing" and credentials.subscription_failures == 1
    first_retry = credentials.subscription_retry_at
    assert first_retry is not None and first_retry > due
    health = pbx_health(organization=connected)
    assert health.status == "failing" and health.last_error
    # Before the backoff is over nothing is queued; after it, a second attempt fails again
    # with a longer wait, without a second audit entry for the same error.
    clock.move_to(due + timedelta(seconds=1))
    assert renew_due() == []
    clock.move_to(first_retry + timedelta(seconds=1))
    assert renew_due() == [connected.pk]
    with organization_scope(connected):
        credentials = BeelineCredentials.objects.get()
        assert errors.count() == 1
    assert credentials.subscription_failures == 2
    assert credentials.subscription_retry_at - clock.now > first_retry - due
    # The old subscription still runs meanwhile (not yet expired).
    assert active(connected).pk == old.pk
    # Beeline is back: the next attempt renews and the organization is healthy again.
    faults_set(pbx=beeline_pbx)
    clock.move_to(credentials.subscription_retry_at + timedelta(seconds=1))
    assert renew_due() == [connected.pk]
    with organization_scope(connected):
        credentials = BeelineCredentials.objects.get()
        assert AuditEntry.objects.filter(kind="beeline.recovered").exists()
    assert credentials.status == "active" and credentials.subscription_failures == 0
    assert credentials.last_error == ""
    assert active(connected).pk != old.pk
    assert pbx_health(organization=connected).subscription_active


def test_renewal_fans_out_one_task_per_organization_in_spaced_chunks(db, monkeypatch, settings):
    settings.PBX_FANOUT_CHUNK, settings.PBX_FANOUT_SPACING_SECONDS = 2, 10
    orgs = [organization_make(name=f"Org {i}") for i in range(5)]
    for org in orgs:
        credentials_make(org)
    sent: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(
        tasks.subscription_renew_task, "apply_async", lambda args, **kw: sent.append((args, kw))
    )
    now = timezone.now()
    queued = renew_due(now=now)
    assert sorted(queued) == sorted(o.pk for o in orgs)
    assert sorted(args[0] for args, _ in sent) == sorted(o.pk for o in orgs)
    assert [kw["countdown"] for _, kw in sent] == [0, 0, 10, 10, 20]
    # Claimed: an overlapping beat does not queue them again.
    assert renew_due(now=now + timedelta(seconds=30)) == []
    # A claim left unfinished (worker died) is taken again later.
    later = now + timedelta(seconds=settings.PBX_SUBSCRIPTION_CLAIM_SECONDS + 1)
    assert len(renew_due(now=later, limit=3)) == 3
