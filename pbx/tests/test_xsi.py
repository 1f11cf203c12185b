from __future__ import annotations

import pytest

from pbx.tests.xsi_fixtures import BILLION_LAUGHS, XXE, fixture_body
from pbx.xsi import XsiParseError, xsi_event_parse


def test_released_event_is_read_field_by_field():
    event = xsi_event_parse(fixture_body("inbound_answered/04_released"))
    assert event.event_type == "CallReleasedEvent"
    assert event.event_id and event.sequence_number and event.subscription_id
    assert event.target_id == "9610387977@ufa.vo.ims.mnc099.mcc250.3gppnetwork.org"
    call = event.call
    assert call is not None
    assert call.ext_tracking_id == "53d41f43-2363-4940-b2ff-b84f6ada2467"
    assert call.personality == "Terminator"
    assert call.state == "Released"
    assert call.remote_address == "tel:+79185197091"
    assert call.remote_call_type == "Network"
    assert call.redirection_addresses == ("tel:+74951234567",)
    assert (call.start_time, call.answer_time, call.release_time) == (
        1770879140100,
        1770879152935,
        1770879178181,
    )


def test_release_cause_and_missing_answer_time():
    call = xsi_event_parse(fixture_body("inbound_missed/02_released")).call
    assert call is not None
    assert call.release_cause == "Temporarily Unavailable"
    assert call.answer_time is None


def test_privacy_only_remote_party_has_no_address():
    call = xsi_event_parse(fixture_body("outbound_answered/03_released")).call
    assert call is not None
    assert call.remote_address == ""
    assert call.remote_call_type == "Network"


def test_namespace_agnostic_unprefixed_shape():
    # The gist rendering: no prefixes, plain "type" attributes, a different default namespace.
    body = """<Event xmlns="urn:other" type="xsi:SubscriptionEvent">
      <eventID>e-1</eventID><sequenceNumber>7</sequenceNumber><targetId>t@x</targetId>
      <eventData type="xsi:CallReceivedEvent"><call>
        <callId>c1</callId><extTrackingId>x1</extTrackingId><personality>Terminator</personality>
        <state>Alerting</state><remoteParty><address>tel:+79161234567</address></remoteParty>
      </call></eventData></Event>"""
    event = xsi_event_parse(body.encode())
    assert event.event_type == "CallReceivedEvent"
    assert event.call is not None and event.call.remote_address == "tel:+79161234567"


def test_subscription_terminated_and_hook_status_parse():
    event = xsi_event_parse(fixture_body("subscription_terminated/01_terminated"))
    assert event.is_subscription_terminated and event.call is None
    hook = xsi_event_parse(fixture_body("inbound_answered/02_hook_status"))
    assert hook.event_type == "HookStatusEvent" and not hook.is_call_event


EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Event SYSTEM "http://evil.example/x.dtd"><Event><eventID>1</eventID></Event>"""


@pytest.mark.parametrize(
    "body",
    [XXE, BILLION_LAUGHS, EXTERNAL_DTD, "not xml at all", '{"eventID": 1}', "<Event>", ""],
)
def test_unsafe_or_malformed_bodies_are_refused(body):
    with pytest.raises(XsiParseError):
        xsi_event_parse(body.encode())


def test_event_without_id_or_with_another_root_is_refused():
    with pytest.raises(XsiParseError, match="eventID"):
        xsi_event_parse(b"<Event><sequenceNumber>1</sequenceNumber></Event>")
    with pytest.raises(XsiParseError, match="root"):
        xsi_event_parse(b"<Other><eventID>1</eventID></Other>")
