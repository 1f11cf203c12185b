"""Recorded-style XSI payloads (pbx/tests/fixtures, shapes of docs/beeline-api.md §6.6) and the
``check_events`` helper: feed fixtures to the parser and the state machine, compare calls."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pbx.assembly import AssembledCall, call_assemble
from pbx.xsi import XsiEvent, xsi_event_parse

FIXTURES = Path(__file__).parent / "fixtures"

# Hostile bodies the parser must refuse (and the webhook answer with a 4xx).
XXE = """<?xml version="1.0"?>
<!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Event><eventID>&xxe;</eventID></Event>"""
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Event><eventID>&lol3;</eventID></Event>"""


def fixture_names(scenario: str) -> list[str]:
    return sorted(f"{scenario}/{p.stem}" for p in (FIXTURES / scenario).glob("*.xml"))


def fixture_body(name: str) -> str:
    return (FIXTURES / f"{name}.xml").read_text(encoding="utf-8")


def _summary(call: AssembledCall) -> dict[str, Any]:
    return {
        "ext_tracking_id": call.ext_tracking_id,
        "direction": call.direction,
        "external_phone": call.external_phone.e164 if call.external_phone else None,
        "status": call.status,
        "outcome": call.outcome,
        "talk_seconds": call.talk_seconds,
        "lines": list(call.line_addresses),
        "answered_by": call.answered_target_id,
        "responsible": call.responsible_target_id,
        "legs": len(call.legs),
        "started_at": call.started_at,
        "ended_at": call.ended_at,
    }


def assemble_all(events: list[XsiEvent]) -> list[dict[str, Any]]:
    """Group events by extTrackingId, fold each call; internal calls are left out."""
    groups: dict[str, list[XsiEvent]] = {}
    for event in events:
        if event.is_call_event:
            assert event.call is not None
            groups.setdefault(event.call.ext_tracking_id, []).append(event)
    calls = [call_assemble(group) for group in groups.values()]
    return sorted(
        (_summary(c) for c in calls if c is not None and not c.internal),
        key=lambda c: c["ext_tracking_id"],
    )


def check_events(
    fixtures: list[str], expected_calls: list[dict[str, Any]], *, shuffles: int = 25
) -> None:
    """The fixtures give exactly ``expected_calls`` (only the keys given are compared), in
    their order, in reverse, in ``shuffles`` random orders, and with every event duplicated."""
    events = [xsi_event_parse(fixture_body(name)) for name in fixtures]
    rng = random.Random(4242)
    orders = [events, list(reversed(events)), events + events]
    for _ in range(shuffles):
        shuffled = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(shuffled)
        orders.append(shuffled)
    expected = sorted(expected_calls, key=lambda c: c.get("ext_tracking_id", ""))
    baseline = assemble_all(events)
    for order in orders:
        got = assemble_all(order)
        assert got == baseline, "the result depends on the order or on duplicates"
    assert len(baseline) == len(expected), baseline
    for call, want in zip(baseline, expected, strict=True):
        assert {k: call[k] for k in want} == want
