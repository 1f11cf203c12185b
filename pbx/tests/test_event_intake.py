"""The webhook's fast path: the bare WSGI handler, batched publishing, and the sweeper."""

from __future__ import annotations

import io
import sys
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from pbx import event_publisher, events
from pbx.models import PbxCall, PbxEvent
from pbx.testing import credentials_make
from pbx.tests.xsi_fixtures import fixture_body
from pbx.webhook_wsgi import webhook_router


def _django_app(environ, start_response):
    start_response("299 Django", [("Content-Type", "text/plain")])
    return [b"django"]


def wsgi_post(path: str, body: bytes, *, content_type: str = "application/xml; charset=UTF-8",
              method: str = "POST") -> tuple[str, dict[str, str], bytes]:  # fmt: skip
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "wsgi.url_scheme": "https",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }
    got: dict[str, object] = {}

    def start_response(status, headers):
        got["status"], got["headers"] = status, dict(headers)

    content = b"".join(webhook_router(_django_app)(environ, start_response))
    return str(got["status"]), got["headers"], content  # type: ignore[return-value]


@pytest.fixture
def published(monkeypatch):
    """Event ids handed to the broker (instead of Celery)."""
    sent: list[list[int]] = []
    monkeypatch.setattr(event_publisher, "_publish_with_celery", sent.append)
    return sent


def stored() -> list[PbxEvent]:
    with scopes_disabled():
        return list(PbxEvent.objects.order_by("pk"))


def test_bare_handler_stores_the_event_under_its_organization_only(
    creds, outsider, published, django_capture_on_commit_callbacks
):
    theirs = credentials_make(outsider)
    body = fixture_body("inbound_missed/01_received").encode()
    with django_capture_on_commit_callbacks(execute=True):
        status, headers, content = wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)
    assert (status, content) == ("200 OK", b"ok")
    assert headers["Content-Length"] == "2"
    again = wsgi_post(f"/beeline/events/{creds.webhook_secret}/null", body)
    assert again[0] == "200 OK" and again[2] == b"duplicate"
    (event,) = stored()
    assert event.organization_id == creds.organization_id != theirs.organization_id
    assert event.event_type == "CallReceivedEvent" and event.ext_tracking_id
    assert event.processed_at is None  # processing is queued, not done in the request
    assert published == [[event.pk]]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"<Event><eventID>1</eventID>", "application/xml", "400 Bad Request"),
        (b"<!DOCTYPE x [<!ENTITY a 'b'>]><Event/>", "text/xml", "400 Bad Request"),
        (b'{"eventID": 1}', "application/json", "415 Unsupported Media Type"),
        (b"\xff\xfe<Event/>", "application/xml; charset=utf-8", "400 Bad Request"),
    ],
)
def test_bare_handler_refuses_bad_bodies_with_4xx(creds, published, body, content_type, status):
    got = wsgi_post(f"/beeline/events/{creds.webhook_secret}", body, content_type=content_type)
    assert got[0] == status and got[2]
    assert stored() == [] and published == []


def test_bare_handler_unknown_secret_oversize_and_other_paths(creds, settings, published):
    body = fixture_body("inbound_missed/01_received").encode()
    assert wsgi_post("/beeline/events/nope", body)[0] == "404 Not Found"
    settings.PBX_WEBHOOK_MAX_BYTES = 100
    assert wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)[0].startswith("413")
    # Anything that is not a POST to the webhook is Django's.
    assert wsgi_post(f"/beeline/events/{creds.webhook_secret}", b"", method="GET")[2] == b"django"
    assert wsgi_post("/cabinet/login", body)[2] == b"django"
    assert stored() == []


def test_bare_handler_answers_503_when_the_event_cannot_be_stored(creds, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(events, "event_store", broken)
    body = fixture_body("inbound_missed/01_received").encode()
    assert wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)[0].startswith("503")


def test_batcher_sends_one_message_for_many_events_from_many_threads():
    sent: list[list[int]] = []
    done = threading.Event()

    def publish(pks: list[int]) -> None:
        sent.append(pks)
        if sum(map(len, sent)) == 200:
            done.set()

    batcher = event_publisher.EventBatcher(publish, interval=0.2)
    threads = [
        threading.Thread(target=lambda n=n: [batcher.add(n * 50 + i) for i in range(50)])
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done.wait(5)
    assert sorted(pk for batch in sent for pk in batch) == list(range(200))
    assert len(sent) <= 2  # batched, not one message per event


def test_batcher_keeps_going_when_the_broker_is_down():
    calls: list[list[int]] = []

    def publish(pks: list[int]) -> None:
        calls.append(pks)
        if len(calls) == 1:
            raise ConnectionError("redis down")

    batcher = event_publisher.EventBatcher(publish, interval=0.01)
    batcher.add(1)
    batcher.flush()  # the first message fails: logged, left to the sweeper
    batcher.add(2)
    batcher.flush()
    assert calls == [[1], [2]]


def test_sweeper_queues_only_events_left_unprocessed(
    creds, post_fixture, published, django_capture_on_commit_callbacks, monkeypatch
):
    queued: list[list[int]] = []
    monkeypatch.setattr(
        events, "task_enqueue", lambda name, pks: queued.append(pks) if "process" in name else None
    )
    post_fixture(creds.webhook_secret, "inbound_missed/01_received")  # never processed
    (event,) = stored()
    now = timezone.now()
    assert events.events_unprocessed_requeue(now=now) == 0  # too fresh: still on its way
    later = now + timedelta(minutes=5)
    assert events.events_unprocessed_requeue(now=later) == 1
    assert queued == [[event.pk]]
    events.events_process(event_pks=[event.pk])
    with organization_scope(creds.organization_id):
        assert PbxCall.objects.count() == 1
    assert stored()[0].processed_at is not None
    assert events.events_unprocessed_requeue(now=later) == 0  # processed: never again
    assert queued == [[event.pk]]


def test_a_batch_rebuilds_each_call_once_and_processes_every_event(
    creds, outsider, post_fixture, published, monkeypatch
):
    theirs = credentials_make(outsider)
    for name in ("inbound_missed/01_received", "inbound_missed/02_released"):
        post_fixture(creds.webhook_secret, name)
    post_fixture(theirs.webhook_secret, "inbound_missed/01_received")
    rebuilt: list[tuple[int, str]] = []
    original = events.call_rebuild

    def counting(**kwargs):
        rebuilt.append((kwargs["organization_id"], kwargs["ext_tracking_id"]))
        return original(**kwargs)

    monkeypatch.setattr(events, "call_rebuild", counting)
    assert events.events_process(event_pks=[e.pk for e in stored()]) == 2
    assert sorted(org for org, _ in rebuilt) == sorted(
        [creds.organization_id, outsider.pk]
    )  # one rebuild per (organization, call), not per event
    assert all(e.processed_at is not None for e in stored())
    with organization_scope(outsider):
        assert PbxCall.objects.count() == 1
