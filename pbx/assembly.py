"""Fold the XSI events of one call (one ``extTrackingId``) into legs and a call.

The fold is a pure function of the *set* of events: duplicates are dropped by ``eventID`` and
every choice is either order-free (min/max of times, highest state reached) or made in one
total order of events (phase of the event type, then sequence number, then eventID). So events
arriving twice or out of order always give the same call (docs/beeline-api.md §9.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from core.phones import Phone, phone_parse
from pbx.xsi import XsiEvent

# Where in a call's life an event type sits: the tie-break before sequence numbers, which
# restart with every subscription.
_PHASE = {
    "CallOriginatingEvent": 0,
    "CallOriginatedEvent": 0,
    "CallReceivedEvent": 0,
    "CallAnsweredEvent": 1,
    "CallReleasingEvent": 3,
    "CallReleasedEvent": 4,
}
_STATE_RANK = {"Alerting": 1, "Active": 2, "Held": 2, "Remote Held": 2, "Released": 3}
_OUTBOUND_PERSONALITIES = frozenset({"Originator", "Click-to-Dial"})
_INTERNAL_CALL_TYPES = frozenset({"Group", "Enterprise"})
# Outbound release causes that mean the call never could be placed (§6.4 BroadWorks enum).
_FAILURE_CAUSES = frozenset(
    {
        "Forbidden",
        "Routing Failure",
        "Global Failure",
        "Request Failure",
        "Server Failure",
        "Translation Failure",
        "User Not Found",
        "Insufficient Credits",
    }
)

IN, OUT = "in", "out"
ANSWERED, MISSED, BUSY, FAILED = "answered", "missed", "busy", "failed"
RINGING, IN_PROGRESS, FINISHED = "ringing", "in_progress", "finished"


def ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms is not None else None


@dataclass(frozen=True, slots=True)
class AssembledLeg:
    target_id: str
    call_id: str
    personality: str
    state: str  # Alerting / Active / Released (the furthest state any event showed)
    answered: bool
    external: bool  # the remote party is outside the PBX
    start_time: int | None
    answer_time: int | None
    release_time: int | None
    release_cause: str
    releasing_party: str

    @property
    def released(self) -> bool:
        return self.state == "Released"

    @property
    def ringing(self) -> bool:
        return not self.released and not self.answered


@dataclass(frozen=True, slots=True)
class AssembledCall:
    ext_tracking_id: str
    internal: bool  # abonent ↔ abonent only: not a customer call, ignored downstream
    direction: str
    external_phone: Phone | None
    line_addresses: tuple[str, ...]  # redirection parties, earliest first (§3 approach 2)
    legs: tuple[AssembledLeg, ...]
    status: str
    outcome: str  # final once status == finished
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    talk_seconds: int
    answered_target_id: str  # the abonent who talked (the recording's userId)
    responsible_target_id: str  # who answered, placed, or (missed) was rung first


def _order_key(event: XsiEvent) -> tuple[int, int, str]:
    return (_PHASE.get(event.event_type, 2), event.sequence_number or 0, event.event_id)


def _is_full_number(address: str) -> bool:
    phone = phone_parse(address)
    return phone is not None and len(phone.national) >= 10


def _leg(target_id: str, call_id: str, events: list[XsiEvent]) -> AssembledLeg:
    calls = [e.call for e in events if e.call is not None]
    rank = max(_STATE_RANK.get(c.state, 0) for c in calls)
    types = {e.event_type for e in events}
    if "CallReleasedEvent" in types:
        rank = 3
    answer_times = [c.answer_time for c in calls if c.answer_time is not None]
    answered = bool(answer_times) or "CallAnsweredEvent" in types
    if answered:
        rank = max(rank, 2)
    state = {0: "Alerting", 1: "Alerting", 2: "Active", 3: "Released"}[rank]
    starts = [c.start_time for c in calls if c.start_time is not None]
    releases = [c.release_time for c in calls if c.release_time is not None]
    call_types = [c.remote_call_type for c in calls if c.remote_call_type]
    addresses = [c.remote_address for c in calls if c.remote_address]
    # Without a callType, only a full phone number (not an extension) marks an outside party.
    external = (
        any(t not in _INTERNAL_CALL_TYPES for t in call_types)
        if call_types
        else any(_is_full_number(a) for a in addresses)
    )
    return AssembledLeg(
        target_id=target_id,
        call_id=call_id,
        personality=next((c.personality for c in calls if c.personality), ""),
        state=state,
        answered=answered,
        external=external,
        start_time=min(starts) if starts else None,
        answer_time=min(answer_times) if answer_times else None,
        release_time=max(releases) if releases else None,
        release_cause=next((c.release_cause for c in calls if c.release_cause), ""),
        releasing_party=next((c.releasing_party for c in calls if c.releasing_party), ""),
    )


def call_assemble(events: Iterable[XsiEvent]) -> AssembledCall | None:
    """The call that the given events of one ``extTrackingId`` describe (None if no call data)."""
    unique = {e.event_id: e for e in events if e.call is not None}
    ordered = sorted(unique.values(), key=_order_key)
    if not ordered:
        return None
    by_leg: dict[tuple[str, str], list[XsiEvent]] = {}
    for event in ordered:
        assert event.call is not None
        by_leg.setdefault((event.target_id, event.call.call_id), []).append(event)
    legs = tuple(
        sorted(
            (_leg(target, call_id, evs) for (target, call_id), evs in by_leg.items()),
            key=lambda leg: (leg.start_time or 0, leg.target_id, leg.call_id),
        )
    )
    external_legs = [leg for leg in legs if leg.external]
    internal = not external_legs
    direction = (
        OUT if any(leg.personality in _OUTBOUND_PERSONALITIES for leg in external_legs) else IN
    )

    # The client's number: the earliest event that shows an external address (Released events
    # often carry only <privacy/>, §9.5).
    external_phone = None
    for event in ordered:
        assert event.call is not None
        if event.call.remote_call_type in _INTERNAL_CALL_TYPES:
            continue
        external_phone = phone_parse(event.call.remote_address)
        if external_phone is not None:
            break

    lines: list[str] = []
    for event in ordered:
        assert event.call is not None
        lines.extend(a for a in event.call.redirection_addresses if a not in lines)

    answered_legs = sorted(
        (leg for leg in legs if leg.answered),
        key=lambda leg: (leg.answer_time or 0, leg.target_id, leg.call_id),
    )
    answered_leg = answered_legs[0] if answered_legs else None
    all_released = all(leg.released for leg in legs)
    if all_released:
        status = FINISHED
    elif answered_leg is not None:
        status = IN_PROGRESS
    else:
        status = RINGING

    if answered_leg is not None:
        outcome = ANSWERED
    elif direction == OUT:
        causes = {leg.release_cause for leg in legs if leg.personality in _OUTBOUND_PERSONALITIES}
        outcome = BUSY if "Busy" in causes else FAILED if causes & _FAILURE_CAUSES else MISSED
    else:
        # For an inbound call every unanswered outcome (busy abonents included) is a missed
        # client: the pipeline's "call back" task depends on it.
        outcome = MISSED

    talk_seconds = 0
    if answered_leg and answered_leg.answer_time and answered_leg.release_time:
        talk_seconds = max(0, round((answered_leg.release_time - answered_leg.answer_time) / 1000))
    starts = [leg.start_time for leg in legs if leg.start_time is not None]
    releases = [leg.release_time for leg in legs if leg.release_time is not None]
    if answered_leg is not None:
        responsible = answered_leg.target_id
    elif direction == OUT:
        responsible = next(
            (leg.target_id for leg in legs if leg.personality in _OUTBOUND_PERSONALITIES), ""
        )
    else:
        responsible = legs[0].target_id
    return AssembledCall(
        ext_tracking_id=ordered[0].call.ext_tracking_id,  # type: ignore[union-attr]
        internal=internal,
        direction=direction,
        external_phone=external_phone,
        line_addresses=tuple(lines),
        legs=legs,
        status=status,
        outcome=outcome,
        started_at=ms_to_datetime(min(starts) if starts else None),
        answered_at=ms_to_datetime(answered_leg.answer_time if answered_leg else None),
        ended_at=ms_to_datetime(max(releases) if releases and all_released else None),
        talk_seconds=talk_seconds,
        answered_target_id=answered_leg.target_id if answered_leg else "",
        responsible_target_id=responsible,
    )
