"""Beeline's events: intake through the webhook (stored once per eventID, answered before any
processing, bad input refused with a 4xx and never a 500), processing failures kept on the event,
and pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from pbx.events import events_prune
from pbx.models import PbxCall, PbxEvent
from pbx.selectors import pbx_health
from pbx.testing import credentials_make
from pbx.tests.xsi_fixtures import BILLION_LAUGHS, FIXTURES, XXE, fixture_body, fixture_names
from pbx.xsi import xsi_event_parse

FIXTURE_SCENARIOS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def stored_count() -> int:
    with scopes_disabled():
        return PbxEvent.objects.count()


def test_event_is_stored_once_and_answered_200(
    creds, post_fixture, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_fixture(creds.webhook_secret, "inbound_missed/01_received")
        again = post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    assert first.status_code == 200 and again.status_code == 200
    assert again.content == b"duplicate"
    with organization_scope(creds.organization_id):
        event = PbxEvent.objects.get()
    assert event.event_type == "CallReceivedEvent"
    assert event.processed_at is not None
    # Stored as sent, except our callback URL (its secret) inside httpContact.
    assert event.body == fixture_body("inbound_missed/01_received").replace(
        "<xsi:uri>https://connector.example.ru/beeline/events/SECRET</xsi:uri>", "[redacted]"
    )


def test_processing_waits_for_commit(creds, post_fixture, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    assert response.status_code == 200
    assert len(callbacks) == 1  # enqueued on commit, not run inside the request
    with organization_scope(creds.organization_id):
        assert PbxEvent.objects.get().processed_at is None


def test_unknown_secret_is_404_and_stores_nothing(creds, post_fixture):
    response = post_fixture("not-" + creds.webhook_secret, "inbound_missed/01_received")
    assert response.status_code == 404
    assert stored_count() == 0


def test_outsider_secret_files_the_event_under_the_outsider_only(
    creds, outsider, post_fixture, django_capture_on_commit_callbacks
):
    theirs = credentials_make(outsider)
    with django_capture_on_commit_callbacks(execute=True):
        post_fixture(theirs.webhook_secret, "inbound_missed/01_received")
    with organization_scope(creds.organization_id):
        assert not PbxEvent.objects.exists()
        assert not PbxCall.objects.exists()
    with organization_scope(outsider):
        assert PbxEvent.objects.count() == 1
        assert PbxCall.objects.count() == 1


def test_trailing_segment_is_tolerated(creds, post_event):
    body = fixture_body("inbound_missed/01_received")
    response = post_event(creds.webhook_secret, body, suffix="/null")
    assert response.status_code == 200
    assert stored_count() == 1


@pytest.mark.parametrize("content_type", ["text/xml", "application/xml", "text/xml; charset=utf-8"])
def test_xml_content_types_are_accepted(creds, post_event, content_type):
    body = fixture_body("inbound_missed/01_received")
    assert post_event(creds.webhook_secret, body, content_type=content_type).status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (XXE, "application/xml", 400),
        (BILLION_LAUGHS, "application/xml", 400),
        ("this is not xml", "application/xml", 400),
        ("<Event><eventID>1</eventID>", "application/xml", 400),
        ('{"eventID": "1"}', "application/json", 415),
        ("a=b", "application/x-www-form-urlencoded", 415),
    ],
)
def test_bad_bodies_are_4xx_and_store_nothing(creds, post_event, body, content_type, status):
    response = post_event(creds.webhook_secret, body, content_type=content_type)
    assert response.status_code == status
    assert response.content  # a short reason
    assert stored_count() == 0


def test_oversized_body_is_413(creds, post_event, settings):
    settings.PBX_WEBHOOK_MAX_BYTES = 4096
    body = fixture_body("inbound_missed/01_received").replace(
        "</xsi:Event>", "<!--" + "x" * 5000 + "--></xsi:Event>"
    )
    assert post_event(creds.webhook_secret, body).status_code == 413
    assert stored_count() == 0


def test_get_is_not_allowed(creds, client):
    assert client.get(f"/beeline/events/{creds.webhook_secret}").status_code == 405


def test_unknown_and_noise_event_types_are_200_and_ignored(creds, post_event):
    hook = fixture_body("inbound_answered/02_hook_status")
    assert post_event(creds.webhook_secret, hook).status_code == 200
    unknown = hook.replace("xsi:HookStatusEvent", "xsi:SomethingNewEvent")
    assert post_event(creds.webhook_secret, unknown).content == b"ignored"
    assert stored_count() == 0


def test_a_storage_failure_is_503_not_500(creds, post_fixture, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("pbx.events.event_store", broken)
    assert post_fixture(creds.webhook_secret, "inbound_missed/01_received").status_code == 503


def test_processing_failure_is_recorded_on_the_event(
    creds, post_fixture, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("pbx.events.call_rebuild", broken)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    with organization_scope(creds.organization_id):
        event = PbxEvent.objects.get()
    assert event.error == "RuntimeError: boom" and event.processed_at is None
    assert pbx_health(organization=creds.organization).event_errors_24h == 1


def test_old_processed_events_are_pruned(creds, post_fixture, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    assert events_prune(older_than=timezone.now() - timedelta(days=1)) == 0
    assert events_prune(older_than=timezone.now() + timedelta(seconds=1)) == 1
    assert stored_count() == 0


@pytest.mark.parametrize("name", [n for s in FIXTURE_SCENARIOS for n in fixture_names(s)])
def test_the_stored_call_fields_give_back_the_parsed_event(
    creds, post_fixture, name, django_capture_on_commit_callbacks
):
    # The webhook stores the event's head; its first processing parses the body once and
    # stores the call fields, which give back exactly the parsed event.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_fixture(creds.webhook_secret, name).status_code == 200
    parsed = xsi_event_parse(fixture_body(name))
    with organization_scope(creds.organization_id):
        stored = PbxEvent.objects.filter(event_id=parsed.event_id).first()
    if not (parsed.is_call_event or parsed.is_subscription_terminated):
        assert stored is None  # noise is not stored
        return
    assert stored.processed_at is not None
    assert (stored.event_type, stored.subscription_id, stored.target_id) == (
        parsed.event_type,
        parsed.subscription_id,
        parsed.target_id,
    )
    if parsed.is_call_event:
        assert stored.call_fields_stored
        assert stored.xsi_event() == parsed


def test_the_webhook_insert_leaves_only_defaulted_columns_out():
    """The webhook names few columns; every other column must fill itself (a new non-null
    column without a database default would make every event fail to store)."""
    from pbx.events import _event_columns_defaulted

    assert _event_columns_defaulted() == []
