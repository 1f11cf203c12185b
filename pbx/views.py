"""Beeline's event webhook and the public recording proxy. Thin: the work is in services."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from pbx import events
from pbx.credentials import beeline_client_for
from pbx.errors import BeelineError, BeelineNotConfigured, BeelineNotFound
from pbx.recording_links import recording_ref_from_token
from pbx.xsi import (
    CALL_EVENT_TYPES,
    SUBSCRIPTION_TERMINATED,
    XsiParseError,
    xsi_body_scrub,
    xsi_event_parse,
)

logger = logging.getLogger(__name__)

_XML_TYPES = ("application/xml", "text/xml")
_STORED_TYPES = CALL_EVENT_TYPES | {SUBSCRIPTION_TERMINATED}


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def beeline_events(request: HttpRequest, secret: str, extra: str = "") -> HttpResponse:
    """Store one XSI event and answer 200 before any processing (docs/beeline-api.md §6.1).

    404 for an unknown secret, 413 over the size limit, 415 for a non-XML content type, 400
    for a body we cannot read; duplicates and event types we do not use are 200. Never 500:
    if the event cannot be stored we answer 503, so a retrying sender tries again.
    """
    try:
        organization_id = events.webhook_organization_id(secret=secret)
    except Exception:  # the database is unreachable: ask the sender to come back
        logger.exception("beeline webhook secret lookup failed")
        return _text(503, "temporarily unavailable, retry later")
    if organization_id is None:
        return _text(404, "unknown endpoint")
    limit = settings.PBX_WEBHOOK_MAX_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        return _text(413, "event body too large")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _text(413, "event body too large")
    content_type = (request.content_type or "").lower()
    if content_type and content_type not in _XML_TYPES and not content_type.endswith("+xml"):
        return _text(415, "expected application/xml")
    try:
        text = body.decode(request.encoding or "utf-8")
        event = xsi_event_parse(text)
    except (UnicodeDecodeError, LookupError):
        return _text(400, "body is not valid text in the declared charset")
    except XsiParseError as exc:
        return _text(400, str(exc))
    if event.event_type not in _STORED_TYPES:
        return _text(200, "ignored")
    if event.event_type in CALL_EVENT_TYPES and event.call is None:
        return _text(200, "ignored: no call data")
    try:
        # Stored without our callback URL: the secret must not sit in the events table.
        stored = events.event_store(
            organization_id=organization_id, event=event, body=xsi_body_scrub(text, secret=secret)
        )
    except Exception:
        logger.exception("beeline event not stored", extra={"organization_id": organization_id})
        return _text(503, "event not stored, retry later")
    return _text(200, "ok" if stored else "duplicate")


def _stream(upstream: requests.Response) -> Iterator[bytes]:
    try:
        yield from upstream.iter_content(chunk_size=64 * 1024)
    finally:
        upstream.close()


@require_GET
def recording(request: HttpRequest, token: str) -> HttpResponse | StreamingHttpResponse:
    """Stream a call recording from Beeline, passing Range through (the player seeks)."""
    ref = recording_ref_from_token(token=token)
    not_found = _("Запись разговора не найдена.")
    if ref is None:
        return _text(404, not_found)
    try:
        _credentials, client = beeline_client_for(ref.organization_id)
    except BeelineNotConfigured:
        return _text(404, not_found)
    try:
        upstream = client.record_download(
            ext_tracking_id=ref.ext_tracking_id,
            user_id=ref.user_id,
            range_header=request.headers.get("Range", "")[:100],
        )
    except BeelineNotFound:
        return _text(
            404,
            _("Запись разговора ещё не готова: Beeline выкладывает её через несколько минут "
              "после звонка. Попробуйте позже."),
        )  # fmt: skip
    except BeelineError as exc:
        logger.warning("recording not fetched", extra={"error": exc.message, "status": exc.status})
        return _text(502, _("Beeline сейчас не отдаёт запись разговора. Попробуйте позже."))
    response = StreamingHttpResponse(
        _stream(upstream),
        status=upstream.status_code if upstream.status_code in (200, 206) else 200,
        content_type=upstream.headers.get("Content-Type", "audio/mpeg"),
    )
    for header in ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified", "ETag"):
        if header in upstream.headers:
            response[header] = upstream.headers[header]
    response.setdefault("Accept-Ranges", "bytes")
    response["Cache-Control"] = "private, max-age=3600"
    return response
