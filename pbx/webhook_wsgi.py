"""Beeline's event webhook as a bare WSGI application, in front of Django in the web process.

Beeline posts every call event here, hundreds per second at peak. Django's request object,
middleware (sessions, locale, CSRF, authentication, messages, CORS, static files), URL
resolver and access log would cost several times what storing the event does, and the webhook
needs none of them: ``config.wsgi`` sends ``POST /beeline/events/<secret>`` here and
everything else to Django. The work itself is ``pbx.intake.event_intake``, the same as the
Django view's. Accepted events are not logged one line each (the stored row is the record);
refusals are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from pbx.intake import IntakeAnswer, body_too_large, event_intake

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Mirrors pbx/urls.py: the secret, and one tolerated extra segment ("/null").
_PATH = re.compile(r"^/beeline/events/([^/]+)(?:/[^/]+)?$")


def _content_type(header: str) -> tuple[str, str | None]:
    media, *params = header.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media.strip(), charset


_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


def _answer(start_response: Callable[..., Any], answer: IntakeAnswer) -> list[bytes]:
    body = answer.message.encode()
    start_response(
        _STATUS_LINES[answer.status],
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _handle(environ: dict[str, Any], secret: str) -> IntakeAnswer:
    declared = environ.get("CONTENT_LENGTH")
    if body_too_large(declared):
        return IntakeAnswer(413, "event body too large")
    limit = settings.PBX_WEBHOOK_MAX_BYTES + 1
    stream = environ["wsgi.input"]
    body = stream.read(min(int(declared), limit)) if declared and declared.isdigit() else b""
    if not declared:  # chunked upload: read up to the limit
        body = stream.read(limit)
    media, charset = _content_type(environ.get("CONTENT_TYPE", ""))
    # What Django does at the start of each request (request_started): drop a connection that
    # broke or outlived CONN_MAX_AGE. The per-request health check (a SELECT 1) is skipped:
    # the store is one idempotent statement that is retried once on a broken connection
    # (Django's, or the group commit's own: pbx.event_group_commit).
    db = connections[DEFAULT_DB_ALIAS]
    if not db.in_atomic_block:  # (a test's transaction: leave it alone)
        db.close_if_unusable_or_obsolete()
        db.health_check_done = True  # type: ignore[attr-defined]  # (Django's own flag)
    return event_intake(secret=secret, body=body, content_type=media, charset=charset)


def webhook_router(django_app: WSGIApp) -> WSGIApp:
    """Route Beeline's event posts to the bare handler, everything else to ``django_app``."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        match = _PATH.match(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return django_app(environ, start_response)
        try:
            answer = _handle(environ, match.group(1))
        except Exception:  # never a 500 page: the sender retries a 503
            logger.exception("beeline webhook failed")
            answer = IntakeAnswer(503, "temporarily unavailable, retry later")
        if answer.status >= 400:
            logger.info(
                "beeline webhook refused an event",
                extra={"status": answer.status, "reason": answer.message[:200]},
            )
        return _answer(start_response, answer)

    return application
