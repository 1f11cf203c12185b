"""Calls from their events: rebuilt from the stored events of one extTrackingId (ringing legs
announced, duplicates and reordering harmless, internal calls dropped), each event parsed once,
and finished calls handed on exactly once — from recorded fixtures and from the Beeline emulator's
simulator through our webhook."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from pbx import signals, xsi
from pbx.calls import call_finalize_due, call_rebuild
from pbx.models import PbxCall, PbxCallLeg, PbxEvent
from pbx.selectors import call_recording_url
from pbx.testing import A, C, call_get, call_play
from pbx.tests.xsi_fixtures import fixture_body, fixture_names
from pbx.xsi import XsiEvent


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


@pytest.mark.parametrize(
    ("scenario", "direction", "outcome", "talk"),
    [
        ("inbound_answered", "in", "answered", 30),
        ("inbound_missed", "in", "missed", 0),
        ("outbound_answered", "out", "answered", 30),
        ("outbound_busy", "out", "busy", 0),
        ("outbound_no_answer", "out", "missed", 0),
    ],
)
def test_each_scenario_gives_the_expected_call(
    connected, beeline_pbx, scenario, direction, outcome, talk
):
    sim = call_play(
        beeline_pbx, scenario=scenario, abonent_phone="9161110002", external_phone="89161234567"
    )
    assert sim.deliveries and all(d.status_code == 200 for d in sim.deliveries)
    call = call_get(connected, sim.ext_tracking_id)
    assert (call.direction, call.outcome, call.talk_seconds) == (direction, outcome, talk)
    assert call.status == "finished"
    assert call.external_phone == "+79161234567"
    assert call.abonent is not None and call.abonent.phone == "9161110002"


@pytest.mark.parametrize("options", [{}, {"duplicate": True}, {"reorder": True},
                                     {"duplicate": True, "reorder": True}])  # fmt: skip
def test_group_call_through_the_multichannel_number(connected, beeline_pbx, options):
    sim = call_play(
        beeline_pbx,
        scenario="inbound_group_answered",
        abonent_phone="9161110003",
        external_phone="+79031112233",
        **options,
    )
    call = call_get(connected, sim.ext_tracking_id)
    assert call.outcome == "answered" and call.direction == "in"
    assert call.number is not None and call.number.phone == "4950000001"
    assert call.abonent is not None and call.abonent.phone == "9161110003"
    with organization_scope(connected):
        assert call.legs.count() == 3
        assert PbxEvent.objects.filter(ext_tracking_id=sim.ext_tracking_id).count() == len(
            sim.documents
        ) - sum("HookStatusEvent" in d for d in sim.documents)


def test_group_call_nobody_answers_is_missed(connected, beeline_pbx):
    sim = call_play(
        beeline_pbx,
        scenario="inbound_group_missed",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    call = call_get(connected, sim.ext_tracking_id)
    assert call.outcome == "missed" and call.recording_user_id == ""
    assert call_recording_url(call=call) is None


def test_finished_call_is_handed_off_once_after_settling(connected, beeline_pbx, settings):
    sim = call_play(
        beeline_pbx,
        scenario="inbound_missed",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    later = timezone.now() + timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS + 1)
    assert call_finalize_due(now=later) == 1
    assert call_finalize_due(now=later) == 0
    assert call_get(connected, sim.ext_tracking_id).handed_off_at is not None


@pytest.fixture
def parses(monkeypatch) -> list[int]:
    """Counts XSI documents parsed (every parse goes through the parser's ``fromstring``)."""
    count = [0]
    real = xsi.fromstring

    def counting(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(xsi, "fromstring", counting)
    return count


def events_of_one_call(count: int) -> list[str]:
    """``count`` distinct events of one call (the same leg reported again under new eventIDs)."""
    body = fixture_body("inbound_missed/01_received")
    event_id = re.search(r"<xsi:eventID>(.+?)</xsi:eventID>", body).group(1)
    return [body.replace(event_id, f"{event_id}-{i}") for i in range(count)]


@pytest.mark.parametrize("count", [6, 12])
def test_a_call_costs_one_parse_per_event(
    creds, post_event, parses, count, django_capture_on_commit_callbacks
):
    for body in events_of_one_call(count):
        # Processed one at a time as they arrive, each rebuilding the call from all before it.
        with django_capture_on_commit_callbacks(execute=True):
            assert post_event(creds.webhook_secret, body).content == b"ok"
    # The webhook's own parse, nothing more: rebuilds fold the stored call fields (re-parsing
    # every stored body made it count * (count + 1) / 2, i.e. 78 parses for 12 events).
    assert parses[0] == count
    with organization_scope(creds.organization_id):
        assert not PbxEvent.objects.filter(processed_at__isnull=True).exists()
        call = PbxCall.objects.get()
    assert call.status == "ringing" and call.external_phone == "+79997918231"


def test_events_stored_without_call_fields_are_parsed_once_by_the_next_rebuild(
    creds, post_fixture, parses, django_capture_on_commit_callbacks
):
    names = fixture_names("group_answered")
    with django_capture_on_commit_callbacks(execute=True):
        post_all(post_fixture, creds.webhook_secret, names)
    fields = (
        "direction",
        "external_phone",
        "number_id",
        "abonent_id",
        "status",
        "outcome",
        "started_at",
        "answered_at",
        "ended_at",
        "talk_seconds",
        "recording_user_id",
    )
    with organization_scope(creds.organization_id):
        before = PbxCall.objects.values(*fields).get()
        legs_before = list(PbxCallLeg.objects.order_by("target_id").values())
        # Rows as they were stored before the call columns existed.
        blank = PbxEvent.call_fields(XsiEvent(event_id="", event_type=""))
        PbxEvent.objects.update(**{**blank, "call_fields_stored": False})
    with scopes_disabled():
        ext_tracking_id = PbxCall.objects.values_list("ext_tracking_id", flat=True).get()
    parses[0] = 0
    with django_capture_on_commit_callbacks(execute=True):
        call_rebuild(organization_id=creds.organization_id, ext_tracking_id=ext_tracking_id)
        assert parses[0] == len(names)
        call_rebuild(organization_id=creds.organization_id, ext_tracking_id=ext_tracking_id)
        assert parses[0] == len(names)  # filled in: never parsed again
    with organization_scope(creds.organization_id):
        assert PbxCall.objects.values(*fields).get() == before
        assert list(PbxCallLeg.objects.order_by("target_id").values()) == legs_before
        assert not PbxEvent.objects.filter(call_fields_stored=False).exists()


def test_an_event_inserted_by_the_previous_release_is_folded(
    creds, parses, django_capture_on_commit_callbacks
):
    """During a deploy, web processes of the previous release insert events without the call
    columns: the database defaults take them, and the rebuild parses the body once."""
    body = fixture_body("inbound_missed/01_received")
    event = xsi.xsi_event_parse(body)
    assert event.call is not None
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {PbxEvent._meta.db_table} (organization_id, event_id, event_type,
                ext_tracking_id, target_id, subscription_id, body, received_at, error)
                VALUES (%s, %s, %s, %s, %s, %s, %s, now(), '')""",
            [creds.organization_id, event.event_id, event.event_type,
             event.call.ext_tracking_id, event.target_id, event.subscription_id, body],
        )  # fmt: skip
    parses[0] = 0
    call = call_rebuild(
        organization_id=creds.organization_id, ext_tracking_id=event.call.ext_tracking_id
    )
    assert parses[0] == 1
    assert call is not None and call.external_phone == "+79997918231"
    with organization_scope(creds.organization_id):
        assert PbxEvent.objects.get().xsi_event() == event
