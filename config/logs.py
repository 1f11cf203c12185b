"""Structured logging: one JSON line per event, tagged with the request id, secrets redacted.

The request id comes from a valid inbound ``X-Request-ID`` or is generated, is echoed on the
response, and travels in a context variable so every log line of that request (and every Celery
task it enqueues, see ``config.celery_app``) carries it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

# Attribute names on a LogRecord whose values are never printed.
_SECRET_KEYS = re.compile(
    r"(token|secret|password|passwd|authorization|api[_-]?key|access[_-]?key|auth_code|cookie|jwt)",
    re.IGNORECASE,
)
# Values in free text that look like credentials.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)(\b(?:access_token|refresh_token|client_secret|code|token|secret|key|password"
        r"|x-mpbx-api-auth-token|x-auth-token)[\"']?\s*[:=]\s*[\"']?)[^\s&\"',;}]{4,}"
    ),
    # URL segments that are secrets by construction (webhook secret, recording token).
    re.compile(r"(/beeline/events/)[^/\s?\"']+"),
    re.compile(r"(/recordings/)[^/\s?\"']+"),
    re.compile(r"(/cabinet/login/)[^/\s?\"']+"),
]
REDACTED = "[redacted]"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "request_id"}


def redact_text(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    """``value`` with secrets removed: everything under a secret-looking key, credential-looking
    text anywhere else (nested dicts and lists included). The one redactor of the product: log
    records, the gunicorn access log and Sentry events all go through it."""
    if _SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Arbitrary objects (Django attaches the request) are printed as redacted text.
    return redact_text(str(value))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs 4xx/5xx after the middleware returned: read the id off the request.
        request = getattr(record, "request", None)
        record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        return True


class SecretRedactingFilter(logging.Filter):
    """Renders the message once, redacts it, and redacts secret-named ``extra`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        for key in set(vars(record)) - _STANDARD_ATTRS:
            setattr(record, key, redact_value(key, getattr(record, key)))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key in set(vars(record)) - _STANDARD_ATTRS:
            payload[key] = getattr(record, key)
        if record.exc_text:
            payload["exc"] = record.exc_text
        elif record.exc_info:
            payload["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False, default=str)


request_logger = logging.getLogger("beetel.request")


class RequestIdMiddleware:
    """Assigns the request id and writes one access line per request (path redacted)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        inbound = request.headers.get("X-Request-ID", "")
        request_id = inbound if _REQUEST_ID_RE.match(inbound) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if request.path not in ("/healthz", "/healthz/redis", "/readyz", "/metrics"):
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            return response
        finally:
            request_id_var.reset(token)
