"""One bad event must not poison its call, and a failure that is not the event's fault must
be retried: quarantine of malformed events (pbx/calls.py), the checks of pbx/xsi.py, and what
the batch processor and the sweeper do with both (pbx/events.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from pbx import events
from pbx.calls import call_finalize_due, call_rebuild
from pbx.models import PbxCall, PbxEvent
from pbx.selectors import pbx_health
from pbx.tests.xsi_fixtures import fixture_body, fixture_names
from pbx.xsi import XsiParseError, xsi_event_head, xsi_event_parse

POISON = "99999999999999999"  # epoch ms far beyond year 9999: fromtimestamp raises


def poisoned(name: str, *, field: str = "releaseTime", value: str = POISON, event_id: str) -> str:
    """A fixture event sent again under another eventID (overlapping subscriptions repeat
    events, docs/beeline-api.md §9.4) with one field spoiled."""
    body = fixture_body(name)
    parsed = xsi_event_parse(body)
    call = parsed.call
    assert call is not None
    original = {
        "releaseTime": call.release_time,
        "startTime": call.start_time,
        "answerTime": call.answer_time,
        "sequenceNumber": parsed.sequence_number,
    }[field]
    old = f"{field}>{original}</"
    assert old in body
    return body.replace(old, f"{field}>{value}</").replace(parsed.event_id, event_id)


def all_events(org) -> list[PbxEvent]:
    with organization_scope(org):
        return list(PbxEvent.objects.order_by("pk"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("releaseTime", POISON),  # «year … is out of range» on every rebuild, before the fix
        ("releaseTime", "99999999999999999999"),  # not even a 64-bit integer
        ("startTime", "-5"),
        ("answerTime", "soon"),
        ("sequenceNumber", "99999999999999999999"),
    ],
)
def test_a_malformed_event_is_quarantined_and_the_call_built_from_the_others(
    creds, post_event, received, django_capture_on_commit_callbacks, settings, field, value
):
    names = fixture_names("inbound_answered")
    bad = poisoned("inbound_answered/04_released", field=field, value=value, event_id="bad-1")
    with django_capture_on_commit_callbacks(execute=True):
        for name in names:
            assert post_event(creds.webhook_secret, fixture_body(name)).status_code == 200
        # Accepted at the door: the webhook reads only the event's head (kept cheap).
        assert post_event(creds.webhook_secret, bad).status_code == 200
    later = timezone.now() + timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert call_finalize_due(now=later) == 1

    with organization_scope(creds.organization_id):
        call = PbxCall.objects.get()
        quarantined = PbxEvent.objects.get(event_id="bad-1")
        others = list(PbxEvent.objects.exclude(event_id="bad-1"))
    assert call.status == PbxCall.Status.FINISHED and call.outcome == PbxCall.Outcome.ANSWERED
    assert call.talk_seconds == 25  # the good Released event's times, not the spoiled ones
    assert len(received["finished"]) == 1
    assert quarantined.quarantined_at is not None and quarantined.processed_at is not None
    assert field in quarantined.error
    assert all(e.quarantined_at is None and e.error == "" for e in others)
    assert pbx_health(organization=creds.organization).event_errors_24h == 1

    # Rebuilt again (a late event, a re-run): the quarantined event stays out, nothing fails.
    with django_capture_on_commit_callbacks(execute=True):
        call_rebuild(organization_id=creds.organization_id, ext_tracking_id=call.ext_tracking_id)
    assert len(received["finished"]) == 1


def test_a_poisoned_row_stored_by_an_earlier_release_is_quarantined_too(
    creds, post_fixture, django_capture_on_commit_callbacks
):
    """Rows parsed before the parser checked numbers keep the bad value in their columns."""
    with django_capture_on_commit_callbacks(execute=True):
        for name in fixture_names("inbound_missed"):
            post_fixture(creds.webhook_secret, name)
    with organization_scope(creds.organization_id):
        released = PbxEvent.objects.get(event_type="CallReleasedEvent")
        PbxEvent.objects.filter(pk=released.pk).update(release_time=int(POISON), processed_at=None)
        call = PbxCall.objects.get()

    call_rebuild(organization_id=creds.organization_id, ext_tracking_id=call.ext_tracking_id)

    released.refresh_from_db()
    assert released.quarantined_at is not None and "releaseTime" in released.error


def test_quarantined_events_are_not_swept_again_but_transient_failures_are(
    creds, post_fixture, post_event, monkeypatch
):
    queued: list[list[int]] = []
    monkeypatch.setattr(
        events, "task_enqueue", lambda name, pks: queued.append(pks) if "process" in name else None
    )
    monkeypatch.setattr("pbx.events.event_publisher.event_stored", lambda pk: None)
    for name in fixture_names("inbound_missed"):
        post_fixture(creds.webhook_secret, name)
    post_event(creds.webhook_secret, poisoned("inbound_missed/02_released", event_id="bad-2"))
    pks = [e.pk for e in all_events(creds.organization_id)]
    later = timezone.now() + timedelta(minutes=5)

    # A failure that is not the events' fault (the database went away): kept for the sweeper.
    real = events.call_rebuild

    def db_down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(events, "call_rebuild", db_down)
    with pytest.raises(OperationalError):
        events.events_process(event_pks=pks)
    assert all(
        e.processed_at is None and "OperationalError" in e.error
        for e in all_events(creds.organization_id)
    )
    assert events.events_unprocessed_requeue(now=later) == 3
    assert sorted(queued[-1]) == sorted(pks)

    # The database is back: the call is built, the malformed event quarantined for good.
    monkeypatch.setattr(events, "call_rebuild", real)
    assert events.events_process(event_pks=pks) == 1
    rows = {e.event_id: e for e in all_events(creds.organization_id)}
    assert rows["bad-2"].quarantined_at is not None and "releaseTime" in rows["bad-2"].error
    assert all(e.processed_at is not None for e in rows.values())
    assert all(e.error == "" for key, e in rows.items() if key != "bad-2")  # recovered
    with organization_scope(creds.organization_id):
        assert PbxCall.objects.get().status == PbxCall.Status.FINISHED
    queued.clear()
    assert events.events_unprocessed_requeue(now=later) == 0
    assert queued == []


def test_one_calls_failure_does_not_hold_back_the_other_calls_of_a_batch(
    creds, post_fixture, monkeypatch
):
    monkeypatch.setattr("pbx.events.event_publisher.event_stored", lambda pk: None)
    for name in fixture_names("inbound_missed") + fixture_names("outbound_answered"):
        post_fixture(creds.webhook_secret, name)
    rows = all_events(creds.organization_id)
    failing = rows[0].ext_tracking_id
    real = events.call_rebuild

    def flaky(**kwargs):
        if kwargs["ext_tracking_id"] == failing:
            raise OperationalError("deadlock detected")
        return real(**kwargs)

    monkeypatch.setattr(events, "call_rebuild", flaky)
    with pytest.raises(OperationalError):
        events.events_process(event_pks=[e.pk for e in rows])
    with organization_scope(creds.organization_id):
        assert list(PbxCall.objects.values_list("ext_tracking_id", flat=True)) != []
        assert not PbxCall.objects.filter(ext_tracking_id=failing).exists()
    after = all_events(creds.organization_id)
    assert all(e.processed_at is None for e in after if e.ext_tracking_id == failing)
    assert all(e.processed_at is not None for e in after if e.ext_tracking_id != failing)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("releaseTime", POISON, "releaseTime is not a time"),
        ("startTime", "0", "startTime is not a time"),
        ("startTime", "-1770879140100", "startTime is not a time"),
        ("answerTime", "1770879152935.5", "answerTime is not a number"),
        ("answerTime", "1_770_879_152_935", "answerTime is not a number"),
        ("sequenceNumber", "9" * 20, "sequenceNumber is not a number"),
        ("sequenceNumber", "9" * 19, "sequenceNumber is out of range"),
    ],
)
def test_the_parser_refuses_numbers_the_fold_cannot_use(field, value, message):
    body = poisoned("inbound_answered/04_released", field=field, value=value, event_id="x-1")
    with pytest.raises(XsiParseError, match=message):
        xsi_event_parse(body)
    # The webhook's head parse does not read them: the event is stored, then quarantined.
    assert xsi_event_head(body).event_id == "x-1"


def test_the_quarantine_is_per_organization(creds, outsider, post_event):
    from pbx.testing import credentials_make

    theirs = credentials_make(outsider)
    bad = poisoned("inbound_missed/02_released", event_id="bad-3")
    post_event(creds.webhook_secret, fixture_body("inbound_missed/01_received"))
    post_event(creds.webhook_secret, bad)
    post_event(theirs.webhook_secret, fixture_body("inbound_missed/01_received"))
    with scopes_disabled():
        pks = list(PbxEvent.objects.values_list("pk", flat=True))
    events.events_process(event_pks=pks)
    with scopes_disabled():
        assert PbxEvent.objects.filter(quarantined_at__isnull=False).count() == 1
        assert not PbxEvent.objects.filter(
            organization=outsider, quarantined_at__isnull=False
        ).exists()
