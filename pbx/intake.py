"""Beeline's event webhook, independent of how the request arrived (docs/beeline-api.md §6.1).

What happens inside the request is only: find the organization by the URL secret, check and
parse the body, store the event once per eventID, answer. Folding the event into a call runs
later on the ``events`` queue (``pbx.event_publisher``). Two thin adapters call
``event_intake``: the Django view (``pbx.views.beeline_events``: tests, development server)
and the bare WSGI app the web process routes the webhook to (``pbx.webhook_wsgi``).

Answers: 404 for an unknown secret, 413 over the size limit, 415 for a non-XML content type,
400 for a body we cannot read; duplicates and event types we do not use are 200. Never 500: if
the event cannot be stored we answer 503, so a retrying sender tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from core import metrics
from pbx import events
from pbx.xsi import (
    CALL_EVENT_TYPES,
    SUBSCRIPTION_TERMINATED,
    XsiParseError,
    xsi_body_scrub,
    xsi_event_head,
)

logger = logging.getLogger(__name__)

_XML_TYPES = ("application/xml", "text/xml")
_STORED_TYPES = CALL_EVENT_TYPES | {SUBSCRIPTION_TERMINATED}


@dataclass(frozen=True, slots=True)
class IntakeAnswer:
    status: int
    message: str


def body_too_large(declared_length: str | None) -> bool:
    """Whether a declared Content-Length is over the limit (checked before reading)."""
    declared = declared_length or "0"
    return declared.isdigit() and int(declared) > settings.PBX_WEBHOOK_MAX_BYTES


@metrics.intake_observed
def event_intake(
    *, secret: str, body: bytes, content_type: str, charset: str | None
) -> IntakeAnswer:
    """Check, parse and store one posted event. ``body`` was read with at most
    ``PBX_WEBHOOK_MAX_BYTES + 1`` bytes; ``content_type`` is the media type without
    parameters."""
    try:
        organization_id = events.webhook_organization_id(secret=secret)
    except Exception:  # the database is unreachable: ask the sender to come back
        logger.exception("beeline webhook secret lookup failed")
        return IntakeAnswer(503, "temporarily unavailable, retry later")
    if organization_id is None:
        return IntakeAnswer(404, "unknown endpoint")
    if len(body) > settings.PBX_WEBHOOK_MAX_BYTES:
        return IntakeAnswer(413, "event body too large")
    content_type = content_type.lower()
    if content_type and content_type not in _XML_TYPES and not content_type.endswith("+xml"):
        return IntakeAnswer(415, "expected application/xml")
    try:
        text = body.decode(charset or "utf-8")
        event = xsi_event_head(text)
    except (UnicodeDecodeError, LookupError):
        return IntakeAnswer(400, "body is not valid text in the declared charset")
    except XsiParseError as exc:
        return IntakeAnswer(400, str(exc))
    if event.event_type not in _STORED_TYPES:
        return IntakeAnswer(200, "ignored")
    if event.event_type in CALL_EVENT_TYPES and not event.ext_tracking_id:
        return IntakeAnswer(200, "ignored: no call data")
    try:
        # Stored without our callback URL: the secret must not sit in the events table.
        stored = events.event_store(
            organization_id=organization_id, event=event, body=xsi_body_scrub(text, secret=secret)
        )
    except Exception:
        logger.exception("beeline event not stored", extra={"organization_id": organization_id})
        return IntakeAnswer(503, "event not stored, retry later")
    return IntakeAnswer(200, "ok" if stored else "duplicate")
