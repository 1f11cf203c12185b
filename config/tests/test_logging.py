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


def test_gunicorn_access_log_atoms_are_redacted():
    """The Procfile's gunicorn logger class: paths, query strings, referers and credential
    headers are redacted before the access-log format sees them."""
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from config.gunicorn_conf import RedactingLogger

    logger = RedactingLogger(Config())
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    request = SimpleNamespace(
        headers=[("AUTHORIZATION", f"Bearer {SECRET}"), ("X-AUTH-TOKEN", SECRET)]
    )
    environ = {
        "REMOTE_ADDR": "203.0.113.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/beeline/events/{SECRET}?token={SECRET}",
        "PATH_INFO": f"/beeline/events/{SECRET}",
        "QUERY_STRING": f"token={SECRET}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://beetel.test/recordings/{SECRET}",
    }
    atoms = logger.atoms(response, request, environ, timedelta(seconds=1))
    assert atoms["U"] == "/beeline/events/[redacted]"
    assert SECRET not in repr(atoms)


def test_sentry_events_are_scrubbed_by_the_product_redactor():
    from config.sentry import sentry_event_scrub

    event = {
        "request": {
            "url": f"https://beetel.test/recordings/{SECRET}",
            "headers": {"Authorization": f"Bearer {SECRET}", "X-Auth-Token": SECRET},
            "cookies": {"sessionid": SECRET},
            "query_string": f"access_token={SECRET}",
        },
        "exception": {"values": [{"type": "ValueError", "value": f"token={SECRET}"}]},
        "extra": {"api_token": SECRET},
        "breadcrumbs": {"values": [{"message": f"GET /beeline/events/{SECRET}"}]},
    }
    assert SECRET not in json.dumps(sentry_event_scrub(event, {}))


def test_sentry_is_started_without_local_variables_or_request_bodies(monkeypatch):
    import sentry_sdk

    from config.sentry import sentry_event_scrub, sentry_init

    seen: dict[str, object] = {}
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: seen.update(options))
    sentry_init(dsn="https://public@sentry.invalid/1")
    assert seen["include_local_variables"] is False
    assert seen["send_default_pii"] is False
    assert seen["max_request_body_size"] == "never"
    assert seen["before_send"] is sentry_event_scrub


def test_secret_carriers_do_not_print_their_secrets():
    from crm.client import StaticToken, TokenPair

    pair = TokenPair(access_token=SECRET, refresh_token=SECRET[::-1], expires_in=60)
    for shown in (repr(pair), str(pair), repr(StaticToken(SECRET))):
        assert SECRET not in shown and SECRET[::-1] not in shown
    assert pair.access_token == SECRET  # still usable


def test_celery_workers_keep_the_redacting_handler():
    from celery import signals

    from config.celery_app import _keep_django_logging, app

    assert app.conf.worker_hijack_root_logger is False
    assert any(
        receiver() is _keep_django_logging
        for _, receiver in signals.setup_logging.receivers  # weak references
    )
