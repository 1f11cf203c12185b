from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings as django_settings

SECRET = "s3cr3t-T0KEN-value-1234567890abcdef"


@pytest.fixture
def captured_log():
    """Capture exactly what production would print: the configured JSON handler and filters."""
    stream = io.StringIO()
    config = django_settings.LOGGING
    handler = logging.StreamHandler(stream)
    from config.logs import JsonFormatter, RequestIdFilter, SecretRedactingFilter

    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretRedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    assert config["handlers"]["console"]["filters"] == ["request_id", "redact"]
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_request_carrying_tokens_leaves_no_trace_in_logs(client, db, captured_log):
    client.get(
        f"/readyz?access_token={SECRET}",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
        HTTP_X_MPBX_API_AUTH_TOKEN=SECRET,
    )
    client.post(f"/beeline/events/{SECRET}", data="<x/>", content_type="application/xml")
    client.get(f"/recordings/{SECRET}")
    output = captured_log.getvalue()
    assert output, "the requests should have been logged"
    assert SECRET not in output


def test_log_lines_are_json_with_request_id(client, db, captured_log):
    response = client.get("/nowhere", HTTP_X_REQUEST_ID="req-abcdef123456")
    assert response["X-Request-ID"] == "req-abcdef123456"
    lines = [json.loads(line) for line in captured_log.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "beetel.request"]
    assert access and access[-1]["request_id"] == "req-abcdef123456"
    assert access[-1]["status"] == 404


def test_secrets_in_messages_extras_and_tracebacks_are_redacted(captured_log):
    log = logging.getLogger("beetel.test")
    log.info("refresh with refresh_token=%s", SECRET)
    log.info("header X-MPBX-API-AUTH-TOKEN: %s", SECRET)
    log.warning("calling", extra={"api_token": SECRET, "payload": {"client_secret": SECRET}})
    try:
        raise ValueError(f"bad token={SECRET}")
    except ValueError:
        log.exception("failed")
    output = captured_log.getvalue()
    assert SECRET not in output
    assert output.count("[redacted]") >= 5
