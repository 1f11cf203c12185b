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
        if _local(child.tag) == name:
            return child
    return None


def _text(parent: Element | None, name: str) -> str:
    node = _child(parent, name)
    return (node.text or "").strip() if node is not None else ""


def _int(parent: Element | None, name: str) -> int | None:
    value = _text(parent, name)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _type_attr(node: Element | None) -> str:
    """``xsi1:type="xsi:CallReleasedEvent"`` → ``CallReleasedEvent`` (any namespace/prefix)."""
    if node is None:
        return ""
    for key, value in node.attrib.items():
        if _local(key) == "type":
            return value.rsplit(":", 1)[-1].strip()
    return ""


def _call(node: Element | None) -> XsiCall | None:
    if node is None:
        return None
    ext_tracking_id = _text(node, "extTrackingId")
    call_id = _text(node, "callId")
    if not ext_tracking_id or not call_id:
        return None
    remote = _child(node, "remoteParty")
    cause = _child(node, "releaseCause")
    redirections: list[str] = []
    for redirection in _child(node, "redirections") or ():
        address = _text(_child(redirection, "party"), "address")
        if address:
            redirections.append(address)
    return XsiCall(
        call_id=call_id,
        ext_tracking_id=ext_tracking_id,
        personality=_text(node, "personality"),
        state=_text(node, "state"),
        remote_address=_text(remote, "address"),
        remote_call_type=_text(remote, "callType"),
        release_cause=_text(cause, "internalReleaseCause"),
        releasing_party=_text(node, "releasingParty"),
        redirection_addresses=tuple(redirections),
        start_time=_int(node, "startTime"),
        answer_time=_int(node, "answerTime"),
        release_time=_int(node, "releaseTime"),
    )


def xsi_event_parse(body: bytes | str) -> XsiEvent:
    """Parse one XSI ``Event`` document.

    Raises ``XsiParseError`` for anything that is not well-formed, safe XML with an ``Event``
    root and an ``eventID``. Unknown event types parse fine (the caller decides to ignore them).
    """
    if isinstance(body, str):
        # A str has already been decoded; its declared encoding no longer applies.
        body = _XML_DECLARATION.sub("", body, count=1)
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise XsiParseError("XML with DTD, entities or external references is refused") from None
    except (ParseError, ValueError):
        raise XsiParseError("body is not well-formed XML") from None
    if _local(root.tag) != "Event":
        raise XsiParseError("the root element is not an XSI Event")
    event_id = _text(root, "eventID")
    if not event_id or len(event_id) > 128:
        raise XsiParseError("the event has no eventID")
    event_data = _child(root, "eventData")
    return XsiEvent(
        event_id=event_id,
        event_type=_type_attr(event_data)[:64],
        sequence_number=_int(root, "sequenceNumber"),
        subscription_id=_text(root, "subscriptionId")[:128],
        target_id=_text(root, "targetId")[:255],
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
