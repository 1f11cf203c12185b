from __future__ import annotations

from datetime import UTC, datetime

from pbx.assembly import call_assemble
from pbx.testing import A, B, C
from pbx.tests.xsi_fixtures import check_events, fixture_body, fixture_names
from pbx.xsi import xsi_event_parse


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def test_inbound_answered_through_multichannel_number_with_hook_noise():
    check_events(
        fixture_names("inbound_answered"),
        [
            {
                "direction": "in",
                "external_phone": "+79185197091",
                "status": "finished",
                "outcome": "answered",
                "talk_seconds": 25,
                "lines": ["tel:+74951234567"],
                "answered_by": A,
                "responsible": A,
                "legs": 1,
                "started_at": ms(1770879140100),
                "ended_at": ms(1770879178181),
            }
        ],
    )


def test_inbound_missed():
    check_events(
        fixture_names("inbound_missed"),
        [
            {
                "direction": "in",
                "external_phone": "+79997918231",
                "outcome": "missed",
                "talk_seconds": 0,
                "answered_by": "",
                "responsible": B,
            }
        ],
    )


def test_outbound_answered_takes_number_from_originated_event():
    check_events(
        fixture_names("outbound_answered"),
        [
            {
                "direction": "out",
                "external_phone": "+79991234567",
                "outcome": "answered",
                "talk_seconds": 62,
                "answered_by": B,
            }
        ],
    )


def test_outbound_not_answered_outcomes():
    check_events(fixture_names("outbound_busy"), [{"direction": "out", "outcome": "busy"}])
    check_events(fixture_names("outbound_no_answer"), [{"outcome": "missed", "responsible": C}])
    check_events(fixture_names("outbound_failed"), [{"outcome": "failed"}])


def test_group_call_one_of_three_answers():
    check_events(
        fixture_names("group_answered"),
        [
            {
                "direction": "in",
                "external_phone": "+79161112233",
                "outcome": "answered",
                "legs": 3,
                "answered_by": C,
                "responsible": C,
                "talk_seconds": 90,
                "status": "finished",
            }
        ],
    )


def test_group_call_nobody_answers():
    check_events(
        fixture_names("group_missed"),
        [{"outcome": "missed", "legs": 2, "answered_by": "", "responsible": A}],
    )


def test_internal_call_between_abonents_is_ignored():
    check_events(fixture_names("internal"), [])
    events = [xsi_event_parse(fixture_body(n)) for n in fixture_names("internal")]
    call = call_assemble(events)
    assert call is not None and call.internal


def test_several_calls_at_once_are_kept_apart():
    names = fixture_names("inbound_missed") + fixture_names("outbound_answered")
    names += fixture_names("internal") + ["inbound_answered/02_hook_status"]
    check_events(
        names,
        [
            {"ext_tracking_id": "9a0c2f6e-1b7d-4c8e-a1f2-3d4e5f607182", "outcome": "missed"},
            {"ext_tracking_id": "b7fb63e8-33ca-4819-83f7-478b2cc9f327", "outcome": "answered"},
        ],
    )


def test_partial_calls_are_ringing_or_in_progress():
    check_events(["group_answered/01_received_0"], [{"status": "ringing", "outcome": "missed"}])
    check_events(
        ["outbound_answered/01_originated", "outbound_answered/02_answered"],
        [{"status": "in_progress", "outcome": "answered"}],
    )
    # Released arrived but another leg of the group still rings: not finished yet.
    check_events(
        ["group_answered/01_received_0", "group_answered/02_received_1",
         "group_answered/05_released_0"],
        [{"status": "ringing", "legs": 2}],
    )  # fmt: skip


def test_released_alone_without_remote_address_still_makes_a_call():
    check_events(
        ["outbound_answered/03_released"],
        [{"external_phone": None, "outcome": "answered", "status": "finished"}],
    )
