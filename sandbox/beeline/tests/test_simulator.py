"""Every document the simulator emits parses strictly, in the shapes of docs/beeline-api.md §6."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree as SafeET

from sandbox.beeline import clock
from sandbox.beeline.errors import PortalError
from sandbox.beeline.models import DeliveredEvent, Record, StatisticsRow
from sandbox.beeline.services import (
    SCENARIOS,
    call_simulate,
    subscription_create,
    subscription_delete,
    subscription_terminate,
)

XSI = "{http://schema.broadsoft.com/xsi}"
TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
ENVELOPE = [
    "eventID",
    "sequenceNumber",
    "userId",
    "externalApplicationId",
    "subscriptionId",
    "httpContact",
    "targetId",
    "eventData",
]
CALL_EVENTS = {
    "CallReceivedEvent",
    "CallOriginatedEvent",
    "CallAnsweredEvent",
    "CallUpdatedEvent",
    "CallReleasedEvent",
}
CLIENT = "+79031234567"


def parse(body: bytes | str) -> Element:
    """Strict: no DTD, no entities (what our webhook must do with untrusted XML)."""
    raw = body.encode() if isinstance(body, str) else body
    return SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def text(parent: Element, path: str) -> str | None:
    node = parent.find("/".join(XSI + part for part in path.split("/")))
    return None if node is None else (node.text or "")


def event_type(root: Element) -> str:
    data = root.find(XSI + "eventData")
    assert data is not None
    return data.get(TYPE, "").removeprefix("xsi:")


def check_event(root: Element, *, url: str) -> None:
    """Envelope and per-type shape of one XSI event (§6.2–6.4)."""
    assert root.tag == XSI + "Event"
    assert root.get(TYPE) == "xsi:SubscriptionEvent"
    assert [child.tag.removeprefix(XSI) for child in root] == ENVELOPE
    uuid.UUID(text(root, "eventID"))
    assert text(root, "sequenceNumber").isdigit()
    assert re.fullmatch(r"MPBX_E_\d+_\d+_EventSubscription@ip\.beeline\.ru", text(root, "userId"))
    assert re.fullmatch(r"\d+_[0-9a-f]{32}", text(root, "externalApplicationId"))
    uuid.UUID(text(root, "subscriptionId"))
    assert text(root, "httpContact/uri") == url
    kind = event_type(root)
    data = root.find(XSI + "eventData")
    if kind == "HookStatusEvent":
        assert text(data, "hookStatus") in {"Off-Hook", "On-Hook"}
        return
    if kind == "SubscriptionTerminatedEvent":
        assert len(data) == 0
        return
    assert kind in CALL_EVENTS
    call = data.find(XSI + "call")
    assert call is not None
    assert re.fullmatch(r"callhalf-\d+:0", text(call, "callId"))
    uuid.UUID(text(call, "extTrackingId"))
    assert text(call, "personality") in {"Originator", "Terminator", "Click-to-Dial"}
    state = text(call, "state")
    assert state in {"Alerting", "Active", "Released"}
    assert text(call, "remoteParty/callType") == "Network"
    assert text(call, "endpoint/addressOfRecord") == text(root, "targetId")
    assert call.find(XSI + "endpoint").get(TYPE) == "xsi:AccessEndpoint"
    start = int(text(call, "startTime"))
    assert 10**12 < start < 10**13  # epoch milliseconds
    if kind == "CallReleasedEvent":
        assert state == "Released"
        assert int(text(call, "releaseTime")) >= start
        assert text(call, "releasingParty") in {"localRelease", "remoteRelease"}
        # As in the real capture: no remote address on release, only privacy.
        assert text(call, "remoteParty/address") is None
        assert call.find(f"{XSI}remoteParty/{XSI}privacy") is not None
    else:
        assert text(call, "releaseTime") is None
        assert re.fullmatch(r"tel:\+7\d{10}", text(call, "remoteParty/address"))
    if kind == "CallAnsweredEvent":
        assert state == "Active"
        assert int(text(call, "answerTime")) >= start
    if kind in {"CallReceivedEvent", "CallOriginatedEvent"}:
        assert state == "Alerting"
        assert text(call, "answerTime") is None


@pytest.fixture
def group_subscription(beeline_pbx, event_sink):
    return subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )


def _legs(call) -> dict[str, list[Element]]:
    """Documents of one call grouped by leg (targetId, callId), in the order they were made."""
    legs: dict[str, list[Element]] = {}
    for body in call.documents:
        root = parse(body)
        call_el = root.find(f"{XSI}eventData/{XSI}call")
        if call_el is None:
            continue
        legs.setdefault(f"{text(root, 'targetId')}|{text(call_el, 'callId')}", []).append(root)
    return legs


def _kinds(call) -> list[str]:
    return [event_type(parse(body)) for body in call.documents]


EXPECTED_KINDS = {
    "inbound_answered": [
        "CallReceivedEvent",
        "HookStatusEvent",
        "CallAnsweredEvent",
        "CallReleasedEvent",
        "HookStatusEvent",
    ],
    "inbound_missed": ["CallReceivedEvent", "CallReleasedEvent"],
    "outbound_answered": [
        "HookStatusEvent",
        "CallOriginatedEvent",
        "CallAnsweredEvent",
        "CallReleasedEvent",
        "HookStatusEvent",
    ],
    "outbound_busy": [
        "HookStatusEvent",
        "CallOriginatedEvent",
        "CallReleasedEvent",
        "HookStatusEvent",
    ],
    "outbound_no_answer": [
        "HookStatusEvent",
        "CallOriginatedEvent",
        "CallReleasedEvent",
        "HookStatusEvent",
    ],
    "click_to_call": [
        "CallOriginatedEvent",
        "HookStatusEvent",
        "CallUpdatedEvent",
        "CallAnsweredEvent",
        "CallReleasedEvent",
        "HookStatusEvent",
    ],
}
OPTIONS = [
    {},
    {"duplicate": True},
    {"reorder": True},
    {"drop": True},
    {"duplicate": True, "reorder": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o) or "plain")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_document_is_strict_xml_with_the_documented_shape(
    beeline_pbx, event_sink, group_subscription, scenario, options
):
    call = call_simulate(
        pbx=beeline_pbx,
        scenario=scenario,
        abonent_phone="9161110002",
        external_phone=CLIENT,
        **options,
    )

    assert call.documents
    for body in call.documents:
        root = parse(body)
        check_event(root, url=event_sink.url)
        call_el = root.find(f"{XSI}eventData/{XSI}call")
        if call_el is not None:
            assert text(call_el, "extTrackingId") == call.ext_tracking_id
    delivered = event_sink.bodies
    if options.get("drop"):
        assert delivered == []
        assert call.deliveries == []
    else:
        copies = 2 if options.get("duplicate") else 1
        assert len(delivered) == len(call.documents) * copies
        for body in delivered:
            check_event(parse(body), url=event_sink.url)
        ids = [text(parse(body), "eventID") for body in delivered]
        assert sorted(set(ids)) == sorted(text(parse(b), "eventID") for b in call.documents)
    assert all(
        h["Content-Type"] == "application/xml; charset=UTF-8" for h, _ in event_sink.received
    )


@pytest.mark.parametrize("scenario", list(EXPECTED_KINDS))
def test_single_leg_scenarios_emit_the_expected_event_sequence(
    beeline_pbx, group_subscription, scenario
):
    call = call_simulate(
        pbx=beeline_pbx, scenario=scenario, abonent_phone="9161110001", external_phone=CLIENT
    )

    assert _kinds(call) == EXPECTED_KINDS[scenario]
    (leg,) = _legs(call).values()
    assert {text(root, "targetId") for root in leg} == {"9161110001@ip.beeline.ru"}
    first = leg[0].find(f"{XSI}eventData/{XSI}call")
    assert text(first, "remoteParty/address") == f"tel:{CLIENT}"
    personality = {
        "inbound_answered": "Terminator",
        "inbound_missed": "Terminator",
        "click_to_call": "Click-to-Dial",
    }.get(scenario, "Originator")
    assert {text(r.find(f"{XSI}eventData/{XSI}call"), "personality") for r in leg} == {personality}
    released = leg[-1].find(f"{XSI}eventData/{XSI}call")
    answered = scenario in {"inbound_answered", "outbound_answered", "click_to_call"}
    assert (text(released, "answerTime") is not None) is answered
    cause = text(released, "releaseCause/internalReleaseCause")
    assert cause == {
        "inbound_missed": "Temporarily Unavailable",
        "outbound_busy": "Busy",
        "outbound_no_answer": "Request Timeout",
    }.get(scenario)


def test_sequence_numbers_count_up_per_subscription(beeline_pbx, group_subscription):
    first = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    second = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="202", external_phone=CLIENT
    )
    numbers = [int(text(parse(b), "sequenceNumber")) for b in first.documents + second.documents]
    assert numbers == [1, 2, 3, 4]


@pytest.mark.parametrize("answered", [True, False])
def test_group_call_via_multichannel_number_has_one_leg_per_member(
    beeline_pbx, group_subscription, answered
):
    scenario = "inbound_group_answered" if answered else "inbound_group_missed"
    call = call_simulate(
        pbx=beeline_pbx,
        scenario=scenario,
        abonent_phone="9161110002",
        external_phone="8 (903) 123-45-67",
        via_number="+74950000001",
    )

    legs = _legs(call)
    assert sorted(key.split("|")[0] for key in legs) == [
        "9161110001@ip.beeline.ru",
        "9161110002@ip.beeline.ru",
        "9161110003@ip.beeline.ru",
    ]
    answered_targets = []
    for roots in legs.values():
        assert event_type(roots[0]) == "CallReceivedEvent"
        assert event_type([r for r in roots if event_type(r) != "HookStatusEvent"][-1]) == (
            "CallReleasedEvent"
        )
        for root in roots:
            call_el = root.find(f"{XSI}eventData/{XSI}call")
            assert text(call_el, "redirections/redirection/party/address") == "tel:+74950000001"
            assert text(call_el, "personality") == "Terminator"
        released = roots[-1].find(f"{XSI}eventData/{XSI}call")
        if text(released, "answerTime"):
            answered_targets.append(text(roots[-1], "targetId"))
    assert answered_targets == (["9161110002@ip.beeline.ru"] if answered else [])
    row = StatisticsRow.objects.get(ext_tracking_id=call.ext_tracking_id)
    assert row.phone_to == "+74950000001"
    assert row.status == ("RECIEVED" if answered else "MISSED")


def test_group_can_be_given_explicitly(beeline_pbx, group_subscription):
    call = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_group_missed",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        group=["9161110001", "203"],
    )
    assert sorted(k.split("|")[0] for k in _legs(call)) == [
        "9161110001@ip.beeline.ru",
        "9161110003@ip.beeline.ru",
    ]


def test_reorder_delivers_each_subscription_in_reverse(beeline_pbx, event_sink, group_subscription):
    call = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        reorder=True,
    )
    delivered = [event_type(parse(body)) for body in event_sink.bodies]
    assert delivered == list(reversed(_kinds(call)))
    assert delivered[1] == "CallReleasedEvent"  # the release arrives before the ringing


def test_duplicate_delivers_every_event_twice_with_the_same_id(
    beeline_pbx, event_sink, group_subscription
):
    call_simulate(
        pbx=beeline_pbx,
        scenario="outbound_busy",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        duplicate=True,
    )
    ids = [text(parse(body), "eventID") for body in event_sink.bodies]
    assert len(ids) == 8
    assert all(ids.count(event_id) == 2 for event_id in ids)


def test_dropped_call_still_appears_in_statistics_and_records(
    beeline_pbx, event_sink, group_subscription
):
    call = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110003",
        external_phone=CLIENT,
        drop=True,
    )
    assert event_sink.received == []
    assert not DeliveredEvent.objects.filter(ext_tracking_id=call.ext_tracking_id).exists()
    row = StatisticsRow.objects.get(ext_tracking_id=call.ext_tracking_id)
    assert (row.direction, row.status, row.phone_from) == ("INBOUND", "RECIEVED", CLIENT)
    assert Record.objects.filter(ext_tracking_id=call.ext_tracking_id).count() == 1


def test_only_answered_calls_get_records(beeline_pbx, group_subscription):
    for scenario in SCENARIOS:
        call = call_simulate(
            pbx=beeline_pbx, scenario=scenario, abonent_phone="9161110001", external_phone=CLIENT
        )
        answered = scenario in {
            "inbound_answered",
            "inbound_group_answered",
            "outbound_answered",
            "click_to_call",
        }
        assert len(call.records) == (1 if answered else 0), scenario
        assert len(call.statistics) == 1


def test_abonent_subscription_gets_only_that_abonents_leg(beeline_pbx, event_sink):
    subscription_create(
        pbx=beeline_pbx,
        pattern="9161110003",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_group_missed",
        abonent_phone="9161110001",
        external_phone=CLIENT,
    )
    assert {text(parse(b), "targetId") for b in event_sink.bodies} == {"9161110003@ip.beeline.ru"}


def test_number_subscription_gets_the_number_leg(beeline_pbx, event_sink):
    number = beeline_pbx.numbers.get(phone="4950000001")
    subscription_create(
        pbx=beeline_pbx,
        pattern="4950000001",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_group_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
    )
    roots = [parse(b) for b in event_sink.bodies]
    assert {text(r, "targetId") for r in roots} == {number.number_id}
    assert [event_type(r) for r in roots] == [
        "CallReceivedEvent",
        "CallAnsweredEvent",
        "CallReleasedEvent",
    ]
    # A direct call to an abonent does not involve the number.
    event_sink.received.clear()
    call_simulate(
        pbx=beeline_pbx, scenario="inbound_answered", abonent_phone="201", external_phone=CLIENT
    )
    assert event_sink.received == []


def test_deleted_subscription_gets_nothing(beeline_pbx, event_sink, group_subscription):
    subscription_delete(pbx=beeline_pbx, subscription_id=group_subscription.subscription_id)
    call = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    assert event_sink.received == [] and call.documents == []


def test_terminate_sends_subscription_terminated_event_once(
    beeline_pbx, event_sink, group_subscription
):
    delivery = subscription_terminate(subscription=group_subscription)

    assert delivery is not None and delivery.status_code == 200
    (body,) = event_sink.bodies
    root = parse(body)
    check_event(root, url=event_sink.url)
    assert event_type(root) == "SubscriptionTerminatedEvent"
    assert text(root, "subscriptionId") == group_subscription.subscription_id
    assert subscription_terminate(subscription=group_subscription) is None
    call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    assert len(event_sink.received) == 1


def test_expired_subscription_is_terminated_at_the_next_call(
    beeline_pbx, event_sink, group_subscription, monkeypatch
):
    later = clock.now() + timedelta(seconds=3601)
    monkeypatch.setattr(clock, "now", lambda: later)

    call = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )

    assert call.documents == []
    assert [event_type(parse(b)) for b in event_sink.bodies] == ["SubscriptionTerminatedEvent"]


def test_delivery_failures_are_logged_with_their_status(
    beeline_pbx, event_sink, group_subscription
):
    event_sink.status = 503
    call = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    assert [d.status_code for d in call.deliveries] == [503, 503]
    logged = DeliveredEvent.objects.filter(ext_tracking_id=call.ext_tracking_id)
    assert sorted(logged.values_list("event_type", "status_code")) == [
        ("CallReceivedEvent", 503),
        ("CallReleasedEvent", 503),
    ]


def test_unreachable_subscription_url_is_logged_not_raised(beeline_pbx, sandbox_http):
    subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=60,
        subscription_type="BASIC_CALL",
        url="https://nowhere.invalid/hook",
    )
    call = call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    assert [d.status_code for d in call.deliveries] == [None, None]
    assert all("ConnectionError" in d.error for d in call.deliveries)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"scenario": "conference"}, 400),
        ({"abonent_phone": "9990000000"}, 404),
        ({"external_phone": "12"}, 400),
        ({"via_number": "+74959999999"}, 404),
    ],
)
def test_bad_input_raises_portal_error(beeline_pbx, kwargs, status):
    arguments = {
        "pbx": beeline_pbx,
        "scenario": "inbound_answered",
        "abonent_phone": "201",
        "external_phone": CLIENT,
    } | kwargs
    with pytest.raises(PortalError) as error:
        call_simulate(**arguments)
    assert error.value.status == status
