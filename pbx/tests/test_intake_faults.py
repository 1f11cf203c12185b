"""The webhook under real faults: Beeline's resend of an event we stored, a broker that refuses
or never answers, a PostgreSQL that is down or frozen. No event is lost, none is queued twice
for nothing, and no request thread hangs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from core.testing import call_timed, celery_broker_at, closed_port, frozen_tcp_server
from pbx import event_publisher, events
from pbx.models import PbxCall, PbxEvent
from pbx.tests.test_event_intake import wsgi_post
from pbx.tests.xsi_fixtures import fixture_body

RECEIVED = "inbound_missed/01_received"


@pytest.fixture
def published(monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr(event_publisher, "_publish_with_celery", sent.append)
    return sent


def only_event() -> PbxEvent:
    with scopes_disabled():
        (event,) = PbxEvent.objects.all()
    return event


def test_a_resent_event_still_unprocessed_is_queued_again_not_left_to_the_sweeper(
    creds, published, django_capture_on_commit_callbacks
):
    body = fixture_body(RECEIVED).encode()
    url = f"/beeline/events/{creds.webhook_secret}"
    with django_capture_on_commit_callbacks(execute=True):
        assert wsgi_post(url, body)[2] == b"ok"
    event = only_event()
    assert published == [[event.pk]]  # (that message was lost with its worker, say)

    # Beeline resends it (we answered 503 after the row was committed, or timed out).
    with django_capture_on_commit_callbacks(execute=True):
        assert wsgi_post(url, body)[2] == b"duplicate"
    assert published == [[event.pk], [event.pk]]

    # Once processed, a resend costs nothing more.
    with scopes_disabled():
        PbxEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert wsgi_post(url, body)[2] == b"duplicate"
    assert published == [[event.pk], [event.pk]]


def test_a_new_event_is_still_one_statement(
    creds, published, django_assert_num_queries, django_capture_on_commit_callbacks
):
    events.webhook_organization_id(secret=creds.webhook_secret)  # (the secret is cached)
    body = fixture_body(RECEIVED).encode()
    with django_assert_num_queries(0):  # the prepared insert bypasses Django's cursor…
        with django_capture_on_commit_callbacks(execute=True):
            assert wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)[2] == b"ok"
    # …and the duplicate check reads only when the insert found a twin.
    with django_assert_num_queries(1):
        assert wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)[2] == b"duplicate"


def test_broker_refusing_connections_the_webhook_answers_200_and_the_sweeper_catches_up(
    creds, django_capture_on_commit_callbacks, caplog
):
    body = fixture_body(RECEIVED).encode()
    with celery_broker_at(f"redis://127.0.0.1:{closed_port()}/0"):
        with django_capture_on_commit_callbacks(execute=True):
            status, _, content = wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)
    assert (status, content) == ("200 OK", b"ok")
    assert "the sweeper will queue it" in caplog.text
    event = only_event()
    assert event.processed_at is None

    # Redis is back (eager Celery again): the beat's sweeper queues the event, it is folded.
    later = timezone.now() + timedelta(minutes=1)
    assert events.events_unprocessed_requeue(now=later) == 1
    assert only_event().processed_at is not None
    with organization_scope(creds.organization_id):
        assert PbxCall.objects.count() == 1


def test_frozen_broker_the_webhook_answers_at_once_and_the_publish_gives_up(
    creds, settings, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    """Redis accepts connections and never answers: the request thread only hands the id to
    the batcher, whose publish fails within the broker timeouts (it used to wait for ever)."""
    settings.PBX_EVENT_BATCH_SECONDS = 0.05
    batcher = event_publisher.EventBatcher(event_publisher._publish_with_celery, interval=0.05)
    monkeypatch.setattr(event_publisher, "_batcher", batcher)
    body = fixture_body(RECEIVED).encode()
    caplog.set_level(logging.WARNING, logger="pbx.event_publisher")
    with frozen_tcp_server() as port, celery_broker_at(f"redis://127.0.0.1:{port}/0"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            status, _, _ = wsgi_post(f"/beeline/events/{creds.webhook_secret}", body)
        answered = time.monotonic() - started
        deadline = started + 15
        while "not queued" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        gave_up = time.monotonic() - started
    assert status == "200 OK" and answered < 1.0
    assert "stored events not queued; the sweeper will queue them" in caplog.text, (
        "the publish to a frozen broker did not give up within 15 s"
    )
    assert gave_up < 10
    assert only_event().processed_at is None  # the sweeper's, as above


@pytest.fixture
def database_at_port():
    """Point new connections of the default database at another port (threads other than the
    test's open new ones; the test's own, in its transaction, is left alone)."""
    settings_dict = connections["default"].settings_dict
    saved = settings_dict["PORT"]

    def point(port: int) -> None:
        settings_dict["PORT"] = str(port)

    yield point
    settings_dict["PORT"] = saved


@pytest.fixture(params=[False, True], ids=["direct-insert", "group-commit"])
def group_commit(request, settings, monkeypatch):
    """Both ways of storing: the request thread's own insert, and the process's group commit
    (``pbx.event_group_commit``, a fresh batcher with no connection yet)."""
    settings.PBX_WEBHOOK_GROUP_COMMIT = request.param
    monkeypatch.setattr(events, "_batcher", None)
    yield request.param
    if events._batcher is not None:
        events._batcher.close()


@pytest.mark.parametrize("secret_cached", [False, True])
def test_postgresql_frozen_the_webhook_answers_503_within_the_connect_timeout(
    creds, settings, database_at_port, secret_cached, group_commit
):
    if secret_cached:  # then the failing statement is the insert, not the secret's lookup
        events.webhook_organization_id(secret=creds.webhook_secret)
    else:
        events._SECRET_CACHE.clear()
    body = fixture_body(RECEIVED).encode()
    with frozen_tcp_server() as port:
        database_at_port(port)
        timed = call_timed(
            lambda: wsgi_post(f"/beeline/events/{creds.webhook_secret}", body), limit=15
        )
    assert timed.error is None and timed.result[0].startswith("503")
    assert settings.DATABASE_CONNECT_TIMEOUT == 2
    # libpq's connect_timeout (whole seconds, at least 2) and no second try on a new connection
    assert timed.seconds < settings.DATABASE_CONNECT_TIMEOUT + 1.5


def test_postgresql_down_the_webhook_answers_503_at_once(creds, database_at_port, group_commit):
    events.webhook_organization_id(secret=creds.webhook_secret)
    body = fixture_body(RECEIVED).encode()
    database_at_port(closed_port())
    timed = call_timed(lambda: wsgi_post(f"/beeline/events/{creds.webhook_secret}", body), limit=15)
    assert timed.error is None and timed.result[0].startswith("503")
    assert timed.seconds < 1.0
    assert (events._batcher is not None) == group_commit  # (the path under test was taken)


def test_postgresql_frozen_concurrent_posts_all_answer_503_within_the_connect_timeout(
    creds, settings, database_at_port, group_commit
):
    """Requests that queue behind a flush whose connection attempt times out get its error,
    rather than each trying again in turn (several connect timeouts in a row)."""
    events.webhook_organization_id(secret=creds.webhook_secret)
    url = f"/beeline/events/{creds.webhook_secret}"
    body = fixture_body(RECEIVED)
    results: list[object] = []

    def post_several() -> list[object]:
        def post(n: int) -> None:
            try:
                results.append(
                    wsgi_post(url, body.replace("</xsi:eventID>", f"-{n}</xsi:eventID>").encode())[
                        0
                    ]
                )
            finally:
                connections["default"].close()

        threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
        for n, thread in enumerate(threads):
            thread.start()
            if n == 0:
                time.sleep(0.3)  # (the first is connecting when the others arrive)
        for thread in threads:
            thread.join(15)
        return results

    with frozen_tcp_server() as port:
        database_at_port(port)
        timed = call_timed(post_several, limit=30)
    assert timed.error is None and len(results) == 6
    assert all(str(status).startswith("503") for status in results), results
    assert timed.seconds < settings.DATABASE_CONNECT_TIMEOUT + 1.5
