"""The call simulator: turns a scenario into the BroadWorks XSI events Beeline would POST.

A call is planned as legs (one per target that sees it: each ringing abonent, and the number
itself for subscriptions on a number), each leg as a timeline of events. Every active
subscription of the PBX that covers a leg's target gets that leg's events, wrapped in its own
envelope (eventID, its own sequenceNumber counter, technical userId, externalApplicationId,
subscriptionId, httpContact, targetId), POSTed as ``application/xml; charset=UTF-8``.
Shapes follow docs/beeline-api.md §6 (samples §6.6); like the real capture, CallReleasedEvent has
no remote address (only ``<privacy/>``), so a consumer must take the number from earlier events.

The whole call is placed in the past so that it has just ended when this returns: records are
then "not ready" for SANDBOX_BEELINE_RECORD_DELAY seconds, as on the real PBX.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F

from core.phones import phone_parse
from sandbox.beeline import clock, features, selectors
from sandbox.beeline.errors import PortalError, bad_request, not_found
from sandbox.beeline.models import (
    Abonent,
    DeliveredEvent,
    Number,
    Pbx,
    Record,
    StatisticsRow,
    Subscription,
)

XSI_NS = "http://schema.broadsoft.com/xsi"
XSI_INSTANCE_NS = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "application/xml; charset=UTF-8"
DELIVERY_TIMEOUT_SECONDS = 10

SCENARIOS: dict[str, str] = {
    "inbound_answered": "Входящий, отвечен",
    "inbound_missed": "Входящий, пропущен",
    "inbound_group_answered": "Входящий на многоканальный номер, один ответил",
    "inbound_group_missed": "Входящий на многоканальный номер, никто не ответил",
    "outbound_answered": "Исходящий, отвечен",
    "outbound_busy": "Исходящий, занято",
    "outbound_no_answer": "Исходящий, нет ответа",
    "click_to_call": "Звонок из CRM (click-to-call)",
}
INBOUND = {"inbound_answered", "inbound_missed", "inbound_group_answered", "inbound_group_missed"}
GROUP = {"inbound_group_answered", "inbound_group_missed"}

RING_ANSWERED_MS = 7_300
RING_MISSED_MS = 21_400
RING_NO_ANSWER_MS = 30_000
RING_BUSY_MS = 2_800
CLICK_TO_CALL_PICKUP_MS = 3_100

_call_half = itertools.count(random.randint(8_000_000, 8_900_000))


@dataclass
class Leg:
    target_id: str
    personality: str  # Originator / Terminator / Click-to-Dial
    remote_address: str  # "tel:+7" and 10 digits, as Beeline writes it
    start_ms: int
    release_ms: int
    answer_ms: int | None = None
    releasing_party: str = "remoteRelease"
    release_cause: str = ""
    cdr_cause: str = ""
    redirection_address: str = ""
    hook_events: bool = True
    call_id: str = field(default_factory=lambda: f"callhalf-{next(_call_half)}:0")
    network_call_id: str = field(
        default_factory=lambda: f"BW{random.randint(10**24, 10**25 - 1)}@10.255.95.132"
    )
    # (at_ms, eventData type, call state or hook status)
    timeline: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class Delivery:
    url: str
    subscription_id: str
    event_type: str
    event_id: str
    status_code: int | None
    error: str = ""


@dataclass
class SimulatedCall:
    ext_tracking_id: str
    scenario: str
    direction: str
    # ICR: the extension a rule for the caller sent the call to ("" when no rule applied).
    routed_extension: str = ""
    # The abonents' userIds in the order their phones started ringing.
    ringing_order: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    statistics: list[StatisticsRow] = field(default_factory=list)


# --- XML -------------------------------------------------------------------------------------


def _el(name: str, value: object | None = None, attrs: str = "") -> str:
    if value is None:
        return f"<xsi:{name}{attrs}/>"
    return f"<xsi:{name}{attrs}>{escape(str(value))}</xsi:{name}>"


def _call_xml(*, leg: Leg, ext_tracking_id: str, state: str, at_ms: int) -> str:
    released = state == "Released"
    answered = leg.answer_ms is not None and leg.answer_ms <= at_ms
    parts = [
        _el("callId", leg.call_id),
        _el("extTrackingId", ext_tracking_id),
        _el("networkCallId", leg.network_call_id),
        _el("personality", leg.personality),
        _el("state", state),
    ]
    if released:
        if leg.release_cause:
            parts.append(
                "<xsi:releaseCause>"
                + _el("internalReleaseCause", leg.release_cause)
                + (_el("cdrTerminationCause", leg.cdr_cause) if leg.cdr_cause else "")
                + "</xsi:releaseCause>"
            )
        parts.append(_el("releasingParty", leg.releasing_party))
        # As in the real capture: the released leg hides the remote number.
        parts.append("<xsi:remoteParty><xsi:privacy/><xsi:callType>Network</xsi:callType>")
        parts.append("</xsi:remoteParty>")
    else:
        parts.append(
            "<xsi:remoteParty>"
            + _el("address", leg.remote_address, ' countryCode="7"')
            + _el("callType", "Network")
            + "</xsi:remoteParty>"
        )
    if leg.redirection_address:
        parts.append(
            "<xsi:redirections><xsi:redirection><xsi:party>"
            + _el("address", leg.redirection_address)
            + _el("callType", "Group")
            + "</xsi:party>"
            + _el("reason", "hunt-group")
            + _el("counter", 1)
            + "</xsi:redirection></xsi:redirections>"
        )
    parts.append(
        '<xsi:endpoint xsi1:type="xsi:AccessEndpoint">'
        + _el("addressOfRecord", leg.target_id)
        + "</xsi:endpoint>"
    )
    parts.append(_el("startTime", leg.start_ms))
    if answered:
        parts.append(_el("answerTime", leg.answer_ms))
    if released:
        parts.append(_el("releaseTime", leg.release_ms))
    if answered:
        parts.append(_el("recorded"))
    return "<xsi:call>" + "".join(parts) + "</xsi:call>"


def _event_xml(
    *, subscription: Subscription, event_id: str, sequence: int, target_id: str, data: str
) -> str:
    pbx = subscription.pbx
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<xsi:Event xmlns:xsi="{XSI_NS}" xmlns:xsi1="{XSI_INSTANCE_NS}"'
        ' xsi1:type="xsi:SubscriptionEvent">'
        + _el("eventID", event_id)
        + _el("sequenceNumber", sequence)
        + _el("userId", subscription.subscriber_user_id)
        + _el("externalApplicationId", pbx.external_application_id)
        + _el("subscriptionId", subscription.subscription_id)
        + "<xsi:httpContact>"
        + _el("uri", subscription.url)
        + "</xsi:httpContact>"
        + _el("targetId", target_id)
        + data
        + "</xsi:Event>"
    )


def _event_data(*, event_type: str, body: str = "") -> str:
    attrs = f" xsi1:type={quoteattr('xsi:' + event_type)}"
    if not body:
        return f"<xsi:eventData{attrs}/>"
    return f"<xsi:eventData{attrs}>{body}</xsi:eventData>"


def _leg_event_data(*, leg: Leg, ext_tracking_id: str, at_ms: int, kind: str, value: str) -> str:
    if kind == "HookStatusEvent":
        return _event_data(event_type=kind, body=_el("hookStatus", value))
    call = _call_xml(leg=leg, ext_tracking_id=ext_tracking_id, state=value, at_ms=at_ms)
    return _event_data(event_type=kind, body=call)


# --- Planning --------------------------------------------------------------------------------


@dataclass
class _Plan:
    direction: str
    legs: list[Leg]
    # legs on the number (for NUMBER subscriptions), keyed by the number's id
    number_legs: list[Leg]
    main_abonent: Abonent
    answered_by: Abonent | None
    start_ms: int
    answer_ms: int | None
    release_ms: int
    via: Number | None


def _inbound_leg(
    *, abonent_or_target: str, remote: str, start: int, release: int, via: Number | None
) -> Leg:
    leg = Leg(
        target_id=abonent_or_target,
        personality="Terminator",
        remote_address=remote,
        start_ms=start,
        release_ms=release,
        redirection_address=f"tel:+7{via.phone}" if via else "",
    )
    leg.timeline.append((start, "CallReceivedEvent", "Alerting"))
    return leg


def _answer(leg: Leg, at: int) -> None:
    leg.answer_ms = at
    if leg.hook_events:
        leg.timeline.append((at, "HookStatusEvent", "Off-Hook"))
    leg.timeline.append((at, "CallAnsweredEvent", "Active"))


def _release(leg: Leg, *, party: str = "remoteRelease", cause: str = "", cdr: str = "") -> None:
    leg.releasing_party, leg.release_cause, leg.cdr_cause = party, cause, cdr
    leg.timeline.append((leg.release_ms, "CallReleasedEvent", "Released"))
    if leg.hook_events and leg.answer_ms is not None:
        leg.timeline.append((leg.release_ms, "HookStatusEvent", "On-Hook"))


def _group_members(
    *, pbx: Pbx, via: Number, main: Abonent, group: list[str] | None, main_first: bool
) -> list[Abonent]:
    if group:
        members = []
        for pattern in group:
            abonent = selectors.abonent_find(pbx=pbx, pattern=pattern)
            if abonent is None:
                raise not_found("AbonentNotFound", f"Абонент {pattern} не найден")
            members.append(abonent)
    else:
        members = list(via.members.all()) or list(pbx.abonents.all())
    if main_first and main in members:
        members.remove(main)
    if main not in members:
        members.insert(0, main)
    return members


def _plan(
    *,
    pbx: Pbx,
    scenario: str,
    main: Abonent,
    remote: str,
    via: Number | None,
    group: list[str] | None,
    talk_ms: int,
    end_ms: int,
    routed: bool = False,
) -> _Plan:
    direction = "INBOUND" if scenario in INBOUND else "OUTBOUND"
    answered = scenario in {
        "inbound_answered",
        "inbound_group_answered",
        "outbound_answered",
        "click_to_call",
    }
    ring = {
        "inbound_missed": RING_MISSED_MS,
        "inbound_group_missed": RING_MISSED_MS,
        "outbound_busy": RING_BUSY_MS,
        "outbound_no_answer": RING_NO_ANSWER_MS,
        "click_to_call": CLICK_TO_CALL_PICKUP_MS + RING_ANSWERED_MS,
    }.get(scenario, RING_ANSWERED_MS)
    start = end_ms - ring - (talk_ms if answered else 0)
    answer = start + ring if answered else None
    legs: list[Leg] = []

    if scenario in GROUP:
        if via is None:
            raise bad_request("Для звонка на группу нужен многоканальный номер")
        members = _group_members(pbx=pbx, via=via, main=main, group=group, main_first=routed)
        for offset, member in enumerate(members):
            leg = _inbound_leg(
                abonent_or_target=member.user_id,
                remote=remote,
                start=start + offset * 40,
                release=end_ms,
                via=via,
            )
            if answer is not None and member == main:
                _answer(leg, answer)
                _release(leg)
            elif answer is not None:
                # Another member picked up: this leg stops ringing then.
                leg.release_ms = answer + 120
                _release(leg, party="remoteRelease")
            else:
                _release(leg, party="remoteRelease")  # the caller gave up
            legs.append(leg)
    elif direction == "INBOUND":
        leg = _inbound_leg(
            abonent_or_target=main.user_id, remote=remote, start=start, release=end_ms, via=via
        )
        if answer is not None:
            _answer(leg, answer)
            _release(leg)
        else:
            _release(leg, cause="Temporarily Unavailable", cdr="016")
        legs.append(leg)
    else:
        personality = "Click-to-Dial" if scenario == "click_to_call" else "Originator"
        leg = Leg(
            target_id=main.user_id,
            personality=personality,
            remote_address=remote,
            start_ms=start,
            release_ms=end_ms,
        )
        if scenario == "click_to_call":
            # The abonent's own phone rings first; once picked up, Beeline dials the client.
            leg.timeline.append((start, "CallOriginatedEvent", "Alerting"))
            pickup = start + CLICK_TO_CALL_PICKUP_MS
            leg.timeline.append((pickup, "HookStatusEvent", "Off-Hook"))
            leg.timeline.append((pickup, "CallUpdatedEvent", "Alerting"))
            leg.hook_events = False
            assert answer is not None
            _answer(leg, answer)
            _release(leg, party="localRelease")
            leg.timeline.append((end_ms, "HookStatusEvent", "On-Hook"))
        else:
            leg.timeline.append((start, "HookStatusEvent", "Off-Hook"))
            leg.timeline.append((start, "CallOriginatedEvent", "Alerting"))
            if answer is not None:
                leg.hook_events = False
                _answer(leg, answer)
                _release(leg, party="localRelease")
            elif scenario == "outbound_busy":
                _release(leg, cause="Busy", cdr="017")
            else:
                _release(leg, cause="Request Timeout", cdr="019")
            leg.timeline.append((end_ms, "HookStatusEvent", "On-Hook"))
        legs.append(leg)

    number_legs: list[Leg] = []
    if via is not None and direction == "INBOUND":
        number_leg = _inbound_leg(
            abonent_or_target=via.number_id, remote=remote, start=start, release=end_ms, via=None
        )
        number_leg.hook_events = False
        if answer is not None:
            _answer(number_leg, answer)
        _release(number_leg)
        number_legs.append(number_leg)

    return _Plan(
        direction=direction,
        legs=legs,
        number_legs=number_legs,
        main_abonent=main,
        answered_by=main if answered else None,
        start_ms=start,
        answer_ms=answer,
        release_ms=end_ms,
        via=via,
    )


# --- Delivery --------------------------------------------------------------------------------


def _legs_for(subscription: Subscription, plan: _Plan) -> list[Leg]:
    if subscription.target_type == Subscription.TargetType.GROUP:
        return plan.legs
    if subscription.target_type == Subscription.TargetType.ABONENT:
        return [leg for leg in plan.legs if leg.target_id == subscription.target_id]
    return [leg for leg in plan.number_legs if leg.target_id == subscription.target_id]


def _sequence_take(subscription: Subscription, count: int) -> int:
    """Reserve ``count`` sequence numbers; returns the first (safe under concurrent calls)."""
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(sequence=F("sequence") + count)
        last = Subscription.objects.values_list("sequence", flat=True).get(pk=subscription.pk)
    return last - count + 1


def _post(*, pbx: Pbx, subscription: Subscription, doc: _Document) -> Delivery:
    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        response = requests.post(
            subscription.url,
            data=doc.body.encode("utf-8"),
            headers={"Content-Type": CONTENT_TYPE},
            timeout=DELIVERY_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        status = response.status_code
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    DeliveredEvent.objects.create(
        pbx=pbx,
        subscription=subscription,
        url=subscription.url,
        event_type=doc.event_type,
        event_id=doc.event_id,
        ext_tracking_id=doc.ext_tracking_id,
        target_id=doc.target_id,
        body=doc.body,
        status_code=status,
        error=error,
        sent_at=clock.now(),
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return Delivery(
        url=subscription.url,
        subscription_id=subscription.subscription_id,
        event_type=doc.event_type,
        event_id=doc.event_id,
        status_code=status,
        error=error,
    )


@dataclass
class _Document:
    event_type: str
    event_id: str
    target_id: str
    ext_tracking_id: str
    body: str


def _render(
    *, subscription: Subscription, legs: Iterable[Leg], ext_tracking_id: str
) -> list[_Document]:
    timeline = sorted(
        (
            (at, order, leg, kind, value)
            for order, leg in enumerate(legs)
            for at, kind, value in leg.timeline
        ),
        key=lambda item: (item[0], item[1]),
    )
    if not timeline:
        return []
    first = _sequence_take(subscription, len(timeline))
    documents = []
    for offset, (at, _order, leg, kind, value) in enumerate(timeline):
        event_id = str(uuid.uuid4())
        data = _leg_event_data(
            leg=leg, ext_tracking_id=ext_tracking_id, at_ms=at, kind=kind, value=value
        )
        body = _event_xml(
            subscription=subscription,
            event_id=event_id,
            sequence=first + offset,
            target_id=leg.target_id,
            data=data,
        )
        documents.append(_Document(kind, event_id, leg.target_id, ext_tracking_id, body))
    return documents


def subscriptions_expire_due(*, pbx: Pbx) -> list[Delivery]:
    """Expired subscriptions end with a SubscriptionTerminatedEvent, as BroadWorks does."""
    due = pbx.subscriptions.filter(
        deleted_at__isnull=True, terminated_at__isnull=True, expires_at__lte=clock.now()
    )
    return [d for subscription in due if (d := subscription_terminate(subscription=subscription))]


def subscription_terminate(*, subscription: Subscription) -> Delivery | None:
    """End the subscription and tell its URL (``xsi:SubscriptionTerminatedEvent``).

    Idempotent: a subscription already terminated or deleted is left alone (returns None).
    """
    claimed = Subscription.objects.filter(
        pk=subscription.pk, terminated_at__isnull=True, deleted_at__isnull=True
    ).update(terminated_at=clock.now())
    if not claimed:
        return None
    subscription.refresh_from_db()
    event_id = str(uuid.uuid4())
    body = _event_xml(
        subscription=subscription,
        event_id=event_id,
        sequence=_sequence_take(subscription, 1),
        target_id=subscription.target_id,
        data=_event_data(event_type="SubscriptionTerminatedEvent"),
    )
    doc = _Document("SubscriptionTerminatedEvent", event_id, subscription.target_id, "", body)
    return _post(pbx=subscription.pbx, subscription=subscription, doc=doc)


# --- Entry point -----------------------------------------------------------------------------


def _remote_address(external_phone: str) -> tuple[str, str]:
    phone = phone_parse(external_phone)
    if phone is None or not phone.e164.startswith("+7") or len(phone.national) != 10:
        raise bad_request(f"Некорректный номер телефона: {external_phone}")
    return f"tel:{phone.e164}", phone.national


def call_simulate(
    *,
    pbx: Pbx,
    scenario: str,
    abonent_phone: str,
    external_phone: str,
    via_number: str | None = None,
    group: list[str] | None = None,
    duplicate: bool = False,
    reorder: bool = False,
    drop: bool = False,
    talk_seconds: int = 30,
    ended_at: datetime | None = None,
) -> SimulatedCall:
    """Play one call on the PBX: events to every covering subscription, record, statistics.

    ``abonent_phone`` is the abonent's phone, userId or extension; for group scenarios it is
    the member who answers (or the one the statistics row belongs to when nobody does).
    ``via_number``: the company number dialled (multichannel for group scenarios; defaults to
    the PBX's first multichannel number there). ICR: when that number has ICR on and a rule
    (``/icr/route``) names an extension for the caller, that extension's abonent rings first
    (and is the one who answers or misses) whatever ``abonent_phone`` says; the call's
    ``routed_extension`` tells which. Options: ``duplicate`` POSTs every event
    twice, ``reorder`` delivers each subscription's events in reverse order, ``drop`` delivers
    nothing (the call still lands in records and statistics, for reconciliation).
    ``ended_at``: when the call ended (default: now), to place it earlier in the past.
    Raises PortalError for an unknown scenario, abonent or number, or a malformed phone.
    """
    if scenario not in SCENARIOS:
        raise bad_request(f"Неизвестный сценарий: {scenario}")
    main = selectors.abonent_find(pbx=pbx, pattern=abonent_phone)
    if main is None:
        raise not_found("AbonentNotFound", f"Абонент {abonent_phone} не найден")
    remote, client_national = _remote_address(external_phone)
    via: Number | None = None
    if via_number:
        via = selectors.number_find(pbx=pbx, pattern=via_number)
        if via is None:
            raise not_found("NumberNotFound", f"Номер {via_number} не найден")
    elif scenario in GROUP:
        via = pbx.numbers.filter(multichannel=True).first()
    if scenario not in INBOUND:
        via = None  # outbound calls do not pass through an incoming number

    routed = (
        features.icr_routed_abonent(pbx=pbx, via=via, client_national=client_national)
        if scenario in INBOUND
        else None
    )
    if routed is not None:
        main = routed

    subscriptions_expire_due(pbx=pbx)
    talk_ms = max(1, talk_seconds) * 1000 + 246
    plan = _plan(
        pbx=pbx,
        scenario=scenario,
        main=main,
        remote=remote,
        via=via,
        group=group,
        talk_ms=talk_ms,
        end_ms=clock.epoch_ms(ended_at or clock.now()),
        routed=routed is not None,
    )
    call = SimulatedCall(
        ext_tracking_id=str(uuid.uuid4()),
        scenario=scenario,
        direction=plan.direction,
        routed_extension=routed.extension if routed is not None else "",
        ringing_order=[leg.target_id for leg in sorted(plan.legs, key=lambda g: g.start_ms)],
    )
    _history_write(call=call, pbx=pbx, plan=plan, client_national=client_national)

    for subscription in selectors.subscriptions_active(pbx=pbx).select_related("pbx"):
        documents = _render(
            subscription=subscription,
            legs=_legs_for(subscription, plan),
            ext_tracking_id=call.ext_tracking_id,
        )
        call.documents.extend(doc.body for doc in documents)
        if drop:
            continue
        if reorder:
            documents.reverse()
        for doc in documents:
            for _ in range(2 if duplicate else 1):
                call.deliveries.append(_post(pbx=pbx, subscription=subscription, doc=doc))
    return call


# Call-back stories: several calls of one client, spread over minutes (docs/callbacks.md).
STORIES: dict[str, str] = {
    "missed_then_called_back": "Пропущен, через N минут перезвонили",
    "missed_twice_then_client_calls": "Пропущен дважды, через N минут клиент позвонил сам",
}


def story_simulate(
    *,
    pbx: Pbx,
    story: str,
    abonent_phone: str,
    external_phone: str,
    minutes: int = 12,
    talk_seconds: int = 151,
    duplicate: bool = False,
    reorder: bool = False,
) -> list[SimulatedCall]:
    """Play a client's calls ``minutes`` apart, the last one ending now.

    ``missed_then_called_back``: an inbound call to ``abonent_phone`` is missed; ``minutes``
    later the abonent calls the client back and they talk ``talk_seconds``.
    ``missed_twice_then_client_calls``: two missed inbound calls (the second halfway), then
    the client calls again and the abonent answers. Raises PortalError as ``call_simulate``.
    """
    if story not in STORIES:
        raise bad_request(f"Неизвестный сценарий: {story}")
    if not 0 < minutes <= 7 * 24 * 60:
        raise bad_request("Минуты: от 1 до 10080")
    now = clock.now()
    start = now - timedelta(minutes=minutes)
    if story == "missed_then_called_back":
        plan = [("inbound_missed", start), ("outbound_answered", now)]
    else:
        halfway = start + timedelta(minutes=minutes / 2)
        plan = [("inbound_missed", start), ("inbound_missed", halfway), ("inbound_answered", now)]
    return [
        call_simulate(
            pbx=pbx,
            scenario=scenario,
            abonent_phone=abonent_phone,
            external_phone=external_phone,
            duplicate=duplicate,
            reorder=reorder,
            talk_seconds=talk_seconds,
            ended_at=ended_at,
        )
        for scenario, ended_at in plan
    ]


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _history_write(*, call: SimulatedCall, pbx: Pbx, plan: _Plan, client_national: str) -> None:
    """The call's statistics row and, when answered by an abonent who records, its recording."""
    client = f"+7{client_national}"
    main = plan.main_abonent
    talk_ms = plan.release_ms - plan.answer_ms if plan.answer_ms is not None else 0
    if plan.direction == "INBOUND":
        status = StatisticsRow.Status.RECIEVED if plan.answered_by else StatisticsRow.Status.MISSED
        phone_from = client
        phone_to = f"+7{plan.via.phone}" if plan.via else f"+7{main.phone}"
    else:
        # An outbound call that was not answered is PLACED with duration 0 (docs/beeline-api.md §8).
        status = StatisticsRow.Status.PLACED
        phone_from, phone_to = f"+7{main.phone}", client
    call.statistics.append(
        StatisticsRow.objects.create(
            pbx=pbx,
            abonent=main,
            start=_moment(plan.start_ms),
            direction=plan.direction,
            status=status,
            phone_from=phone_from,
            phone_to=phone_to,
            duration_ms=talk_ms,
            ext_tracking_id=call.ext_tracking_id,
        )
    )
    answered_by = plan.answered_by
    if answered_by is not None and answered_by.recording and plan.answer_ms is not None:
        delay = timedelta(seconds=settings.SANDBOX_BEELINE_RECORD_DELAY)
        call.records.append(
            Record.objects.create(
                pbx=pbx,
                ext_tracking_id=call.ext_tracking_id,
                abonent=answered_by,
                phone=client_national,
                direction=plan.direction,
                date=_moment(plan.answer_ms),
                duration_ms=talk_ms,
                ready_at=_moment(plan.release_ms) + delay,
            )
        )


__all__ = [
    "SCENARIOS",
    "STORIES",
    "Delivery",
    "PortalError",
    "SimulatedCall",
    "call_simulate",
    "story_simulate",
    "subscription_terminate",
    "subscriptions_expire_due",
]
