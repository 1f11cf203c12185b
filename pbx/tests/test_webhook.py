from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from pbx import signals
from pbx.models import PbxCall, PbxEvent
from pbx.services import call_finalize_due
from pbx.testing import A, C, credentials_make
from pbx.tests.xsi_fixtures import BILLION_LAUGHS, XXE, fixture_body, fixture_names


def stored_count() -> int:
    with scopes_disabled():
        return PbxEvent.objects.count()


@pytest.fixture
def received(db):
    """Collects what pbx tells the pipeline."""
    got: dict[str, list[dict]] = {"ringing": [], "finished": []}

    def on_ringing(sender, **kwargs):
        got["ringing"].append(kwargs)

    def on_finished(sender, **kwargs):
        got["finished"].append(kwargs)

    signals.call_ringing.connect(on_ringing, weak=False)
    signals.call_finished.connect(on_finished, weak=False)
    yield got
    signals.call_ringing.disconnect(on_ringing)
    signals.call_finished.disconnect(on_finished)


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
    assert event.body == fixture_body("inbound_missed/01_received")


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

    monkeypatch.setattr("pbx.services.event_store", broken)
    assert post_fixture(creds.webhook_secret, "inbound_missed/01_received").status_code == 503


def post_all(post_fixture, secret, names):
    for name in names:
        assert post_fixture(secret, name).status_code == 200


def test_group_call_end_to_end_rings_then_hands_off_once(
    creds, post_fixture, received, django_capture_on_commit_callbacks, settings
):
    secret = creds.webhook_secret
    names = fixture_names("group_answered")
    for name in names[:3]:  # three abonents start ringing, one event (and commit) at a time
        with django_capture_on_commit_callbacks(execute=True):
            post_all(post_fixture, secret, [name])
    assert [len(r["leg_ids"]) for r in received["ringing"]] == [1, 1, 1]
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, secret, names[3:])
    assert len(received["ringing"]) == 3  # answering and releasing ring nothing new
    with organization_scope(creds.organization_id):
        call = PbxCall.objects.get()
        legs = list(call.legs.order_by("target_id"))
    assert call.status == "finished" and call.outcome == "answered"
    assert call.direction == "in" and call.external_phone == "+79161112233"
    assert call.external_phone_national == "9161112233"
    assert call.number is not None and call.number.name == "Продажи"
    assert call.abonent is not None and call.abonent.user_id == C
    assert call.recording_user_id == C
    assert len(legs) == 3 and all(leg.abonent_id for leg in legs)
    # The settle delay has not passed: the eager countdown task did not hand it off.
    assert received["finished"] == []
    later = timezone.now() + timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert call_finalize_due(now=later) == 1
        assert call_finalize_due(now=later) == 0
    assert received["finished"] == [{"signal": signals.call_finished,
                                     "organization_id": creds.organization_id,
                                     "call_id": call.pk}]  # fmt: skip
    # A late duplicate of an event after hand-off changes nothing downstream.
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, secret, [names[-1]])
        assert call_finalize_due(now=later + timedelta(minutes=5)) == 0
    assert len(received["finished"]) == 1


def test_reordered_and_duplicated_delivery_gives_the_same_call(
    creds, post_fixture, django_capture_on_commit_callbacks
):
    names = fixture_names("outbound_answered")
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, creds.webhook_secret, list(reversed(names)) + names)
    with organization_scope(creds.organization_id):
        call = PbxCall.objects.get()
        assert PbxEvent.objects.count() == 3
    assert call.direction == "out" and call.outcome == "answered"
    assert call.external_phone == "+79991234567" and call.talk_seconds == 62


def test_internal_calls_are_not_kept(
    creds, post_fixture, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, creds.webhook_secret, fixture_names("internal"))
    with organization_scope(creds.organization_id):
        assert not PbxCall.objects.exists()
    assert received["ringing"] == []


def test_ringing_is_not_signalled_for_a_leg_already_answered(
    creds, post_fixture, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, creds.webhook_secret, ["inbound_answered/04_released"])
    assert received["ringing"] == []
    with organization_scope(creds.organization_id):
        call = PbxCall.objects.get()
    assert call.abonent is not None and call.abonent.user_id == A


def test_processing_failure_is_recorded_on_the_event(
    creds, post_fixture, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("pbx.services.call_rebuild", broken)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    with organization_scope(creds.organization_id):
        event = PbxEvent.objects.get()
    assert event.error == "RuntimeError: boom" and event.processed_at is None
    from pbx.selectors import pbx_health

    assert pbx_health(organization=creds.organization).event_errors_24h == 1


def test_old_processed_events_are_pruned(creds, post_fixture, django_capture_on_commit_callbacks):
    from pbx.services import events_prune

    with django_capture_on_commit_callbacks(execute=True):
        post_fixture(creds.webhook_secret, "inbound_missed/01_received")
    assert events_prune(older_than=timezone.now() - timedelta(days=1)) == 0
    assert events_prune(older_than=timezone.now() + timedelta(seconds=1)) == 1
    assert stored_count() == 0
