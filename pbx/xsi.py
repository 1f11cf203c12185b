"""Parse BroadWorks XSI-Events pushed by Beeline (docs/beeline-api.md §6) into typed objects.

Untrusted input: parsed with defusedxml, which refuses DTDs, entity declarations and external
references (XXE, billion laughs). Elements are matched on local names only, and the event type
is read from a ``type`` attribute in any namespace, because integrators see both ``xsi1:type``
and unprefixed shapes (§6.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.etree.ElementTree import fromstring as _c_fromstring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

# Event types we fold into calls (§6.3); the held/transfer family only comes with ADVANCED_CALL.
CALL_EVENT_TYPES = frozenset(
    {
        "CallOriginatingEvent",
        "CallOriginatedEvent",
        "CallReceivedEvent",
        "CallAnsweredEvent",
        "CallUpdatedEvent",
        "CallReleasingEvent",
        "CallReleasedEvent",
        "CallHeldEvent",
        "CallRetrievedEvent",
        "CallTransferredEvent",
        "CallForwardedEvent",
        "CallRedirectedEvent",
    }
)
SUBSCRIPTION_TERMINATED = "SubscriptionTerminatedEvent"
# Known, and deliberately dropped at the door (§9.13 HookStatus noise).
IGNORED_EVENT_TYPES = frozenset({"HookStatusEvent", "CallSubscriptionEvent"})

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class XsiParseError(ValueError):
    """The body is not an XSI event we can read; the message is short and safe to return."""


@dataclass(frozen=True, slots=True)
class XsiCall:
    call_id: str
    ext_tracking_id: str
    personality: str = ""
    state: str = ""
    remote_address: str = ""
    remote_call_type: str = ""
    release_cause: str = ""
    releasing_party: str = ""
    redirection_addresses: tuple[str, ...] = ()
    start_time: int | None = None  # epoch ms (UTC)
    answer_time: int | None = None
    release_time: int | None = None


@dataclass(frozen=True, slots=True)
class XsiEventHead:
    """What the webhook stores an event by (``xsi_event_head``)."""

    event_id: str
    event_type: str
    subscription_id: str
    target_id: str
    ext_tracking_id: str  # "" when the event carries no call with ids


@dataclass(frozen=True, slots=True)
class XsiEvent:
    event_id: str
    event_type: str  # local name without prefix, e.g. "CallReleasedEvent"
    sequence_number: int | None = None
    subscription_id: str = ""
    target_id: str = ""
    call: XsiCall | None = field(default=None)

    @property
    def is_call_event(self) -> bool:
        return self.event_type in CALL_EVENT_TYPES and self.call is not None

    @property
    def is_subscription_terminated(self) -> bool:
        return self.event_type == SUBSCRIPTION_TERMINATED


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(parent: Element | None, name: str) -> Element | None:
    if parent is None:
        return None
    for child in parent:
        tag = child.tag
        if isinstance(tag, str) and (tag == name or tag.endswith("}" + name)):
            return child
    return None


def _text(parent: Element | None, name: str) -> str:
    node = _child(parent, name)
    return (node.text or "").strip() if node is not None else ""


def _type_attr(node: Element | None) -> str:
    """``xsi1:type="xsi:CallReleasedEvent"`` → ``CallReleasedEvent`` (any namespace/prefix)."""
    if node is None:
        return ""
    for key, value in node.attrib.items():
        if _local(key) == "type":
            return value.rsplit(":", 1)[-1].strip()
    return ""


def _by_name(parent: Element | None) -> dict[str, Element]:
    """The children of ``parent`` by local name (the first of each), in one pass."""
    found: dict[str, Element] = {}
    for child in parent if parent is not None else ():
        if isinstance(child.tag, str):
            found.setdefault(_local(child.tag), child)
    return found


def _value(children: dict[str, Element], name: str) -> str:
    node = children.get(name)
    return (node.text or "").strip() if node is not None else ""


# The numbers an event carries, as the fold and the database can take them. Times are epoch
# milliseconds (§9.7) between 2000-01-01 and 2100-01-01 UTC: a value outside (negative, a few
# digits too many, 99999999999999999) is no time at all, and would make every rebuild of the
# call fail (datetime ends at year 9999; the columns are 64-bit). Such an event is malformed.
EPOCH_MS_MIN = 946_684_800_000
EPOCH_MS_MAX = 4_102_444_800_000
_BIGINT_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def xsi_number_problem(name: str, value: int | None, *, time: bool = True) -> str:
    """Why a number read from an event cannot be used ("" when it can): a time outside the
    plausible epoch-millisecond range, any number outside a 64-bit column."""
    if value is None:
        return ""
    if time and not EPOCH_MS_MIN <= value < EPOCH_MS_MAX:
        return f"{name} is not a time in epoch milliseconds: {value}"
    if not -_BIGINT_MAX <= value <= _BIGINT_MAX:
        return f"{name} is out of range: {value}"
    return ""


def _number(children: dict[str, Element], name: str, *, time: bool = True) -> int | None:
    """An integer field; absent or empty is None. Present but not a number, or out of range
    (``xsi_number_problem``), is ``XsiParseError``: the event is malformed."""
    value = _value(children, name)
    if not value:
        return None
    if not _INTEGER.fullmatch(value):
        raise XsiParseError(f"{name} is not a number: {value[:40]!r}")
    number = int(value)
    problem = xsi_number_problem(name, number, time=time)
    if problem:
        raise XsiParseError(problem)
    return number


def _call(node: Element | None) -> XsiCall | None:
    if node is None:
        return None
    fields = _by_name(node)
    ext_tracking_id = _value(fields, "extTrackingId")
    call_id = _value(fields, "callId")
    if not ext_tracking_id or not call_id:
        return None
    remote = fields.get("remoteParty")
    cause = fields.get("releaseCause")
    redirections: list[str] = []
    for redirection in fields.get("redirections", ()):
        address = _text(_child(redirection, "party"), "address")
        if address:
            redirections.append(address)
    return XsiCall(
        call_id=call_id,
        ext_tracking_id=ext_tracking_id,
        personality=_value(fields, "personality"),
        state=_value(fields, "state"),
        remote_address=_text(remote, "address"),
        remote_call_type=_text(remote, "callType"),
        release_cause=_text(cause, "internalReleaseCause"),
        releasing_party=_value(fields, "releasingParty"),
        redirection_addresses=tuple(redirections),
        start_time=_number(fields, "startTime"),
        answer_time=_number(fields, "answerTime"),
        release_time=_number(fields, "releaseTime"),
    )


def _root(body: bytes | str) -> Element:
    """The ``Event`` root of a well-formed, safe document, or ``XsiParseError``."""
    try:
        if isinstance(body, str):
            # A str has already been decoded; its declared encoding no longer applies. Without
            # a DOCTYPE no entity can be declared, so nothing can expand or be fetched: the C
            # parser is then as safe as defusedxml and several times faster (the webhook's
            # path). Bytes (any encoding) still go through defusedxml.
            body = _XML_DECLARATION.sub("", body, count=1)
            if "<!DOCTYPE" in body or "<!ENTITY" in body:
                raise XsiParseError("XML with DTD, entities or external references is refused")
            root = _c_fromstring(body)
        else:
            root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise XsiParseError("XML with DTD, entities or external references is refused") from None
    except (ParseError, ValueError):
        raise XsiParseError("body is not well-formed XML") from None
    if _local(root.tag) != "Event":
        raise XsiParseError("the root element is not an XSI Event")
    return root


def _event_id(fields: dict[str, Element]) -> str:
    event_id = _value(fields, "eventID")
    if not event_id or len(event_id) > 128:
        raise XsiParseError("the event has no eventID")
    return event_id


def xsi_event_head(body: bytes | str) -> XsiEventHead:
    """Only what storing an event needs (the webhook's path); the same checks as
    ``xsi_event_parse``, which reads the rest later, in the worker."""
    fields = _by_name(_root(body))
    event_id = _event_id(fields)
    event_data = fields.get("eventData")
    call = _by_name(_child(event_data, "call"))
    ext_tracking_id = _value(call, "extTrackingId") if _value(call, "callId") else ""
    return XsiEventHead(
        event_id=event_id,
        event_type=_type_attr(event_data)[:64],
        subscription_id=_value(fields, "subscriptionId")[:128],
        target_id=_value(fields, "targetId")[:255],
        ext_tracking_id=ext_tracking_id[:128],
    )


def xsi_event_parse(body: bytes | str) -> XsiEvent:
    """Parse one XSI ``Event`` document.

    Raises ``XsiParseError`` for anything that is not well-formed, safe XML with an ``Event``
    root and an ``eventID``, and for a number field that is not a number or out of range
    (``xsi_number_problem``). Unknown event types parse fine (the caller decides to ignore
    them).
    """
    fields = _by_name(_root(body))
    event_id = _event_id(fields)
    event_data = fields.get("eventData")
    return XsiEvent(
        event_id=event_id,
        event_type=_type_attr(event_data)[:64],
        sequence_number=_number(fields, "sequenceNumber", time=False),
        subscription_id=_value(fields, "subscriptionId")[:128],
        target_id=_value(fields, "targetId")[:255],
        call=_call(_child(event_data, "call")),
    )


# <httpContact><uri>https://…/beeline/events/SECRET</uri></httpContact>, any namespace prefix.
_HTTP_CONTACT = re.compile(
    r"(<(?P<p>[\w.-]+:)?httpContact\b[^>]*>)(?P<inner>.*?)(</(?P=p)?httpContact\s*>)", re.S
)
BODY_REDACTED = "[redacted]"


def xsi_body_scrub(body: str, *, secret: str = "") -> str:
    """The event body as we keep it: Beeline repeats our callback URL (``httpContact``), secret
    included, in every event; the URL is replaced, and so is any other copy of ``secret``."""
    body = _HTTP_CONTACT.sub(lambda m: m.group(1) + BODY_REDACTED + m.group(4), body)
    if secret:
        body = body.replace(secret, BODY_REDACTED)
    return body
