"""Group commit of the webhook's inserts (``pbx.event_group_commit``) with real PostgreSQL and
concurrent request threads: every event stored once, every request told the truth, every new
row published, and the batcher's own connection survives a PostgreSQL restart."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from core.tenancy import scopes_disabled
from pbx import event_publisher, events
from pbx.event_group_commit import EventInsertBatcher, EventRow
from pbx.models import PbxEvent
from pbx.tests.test_event_intake import wsgi_post
from pbx.tests.xsi_fixtures import fixture_body

pytestmark = pytest.mark.django_db(transaction=True)  # the batcher commits on its own connection

RECEIVED = "inbound_missed/01_received"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(event_publisher, "_publish_with_celery", sent.extend)
    return sent


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Group commit on, with a fresh batcher whose statements are counted (rows per statement);
    its first statement waits a little, so that the requests arriving meanwhile pile up."""
    sizes: list[int] = []
    execute = EventInsertBatcher._execute

    def counted(cursor: psycopg.RawCursor[Any], slots: Any) -> dict[tuple[int, str], int]:
        if not sizes:
            threading.Event().wait(0.2)
        sizes.append(len(slots))
        return execute(cursor, slots)

    monkeypatch.setattr(EventInsertBatcher, "_execute", staticmethod(counted))
    monkeypatch.setattr(events, "_batcher", None)
    from django.conf import settings

    monkeypatch.setattr(settings, "PBX_WEBHOOK_GROUP_COMMIT", True)
    yield sizes
    if events._batcher is not None:
        events._batcher.close()


def event_body(event_id: str) -> bytes:
    template = fixture_body(RECEIVED)
    original = template.split("<xsi:eventID>")[1].split("</xsi:eventID>")[0]
    return template.replace(original, event_id).encode()


def stored_ids() -> dict[str, int]:
    with scopes_disabled():
        return dict(PbxEvent.objects.values_list("event_id", "pk"))


def test_concurrent_posts_are_stored_once_each_by_shared_statements(creds, published, batches):
    once = [f"once-{n}" for n in range(24)]
    thrice = [f"thrice-{n}" for n in range(8)]
    posts = once + thrice * 3
    answers: dict[int, list[str]] = {}
    start = threading.Barrier(len(posts))

    def post(n: int, event_id: str) -> None:
        start.wait()
        try:
            status, _, content = wsgi_post(
                f"/beeline/events/{creds.webhook_secret}", event_body(event_id)
            )
            answers[n] = [event_id, status, content.decode()]
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n, e)) for n, e in enumerate(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(answers) == len(posts)
    assert {status for _, status, _ in answers.values()} == {"200 OK"}
    oks = Counter(event_id for event_id, _, content in answers.values() if content == "ok")
    dups = Counter(event_id for event_id, _, content in answers.values() if content == "duplicate")
    assert oks == Counter(once + thrice)  # exactly one "ok" per event…
    assert dups == Counter(thrice * 2)  # …the others were told "duplicate"
    ids = stored_ids()
    assert sorted(ids) == sorted(once + thrice)  # stored once each
    # Fewer statements than events (twins in one statement are sent once).
    assert len(batches) < len(once + thrice) and sum(batches) < len(posts), batches
    # Every new row is published after its commit; an event posted once, exactly once. (A
    # resend whose twin was committed by an earlier statement queues the unprocessed twin
    # again, by design; one in the same statement does not.)
    assert set(published) == set(ids.values())
    assert all(published.count(ids[event_id]) == 1 for event_id in once)
    assert all(published.count(ids[event_id]) <= 3 for event_id in thrice)


def _row(organization_id: int, event_id: str, now: datetime) -> EventRow:
    return (organization_id, event_id, "CallReceivedEvent", "t-1", "u@x", "s-1", "<xml/>", now)


def _insert_together(batcher: EventInsertBatcher, rows: list[EventRow]) -> list[Any]:
    """Insert ``rows`` from one thread each, all after a first row held in flight (so that
    they go out as one statement)."""
    outcomes: list[Any] = [None] * len(rows)

    def insert(n: int) -> None:
        try:
            outcomes[n] = batcher.insert(rows[n])
        except Exception as exc:  # noqa: BLE001 (the outcome under test)
            outcomes[n] = exc

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(len(rows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    return outcomes


def test_twins_in_one_statement_one_stored_one_duplicate(creds, batches):
    batcher = EventInsertBatcher(events._batcher_connect, max_age=None)
    now = timezone.now()
    org = creds.organization_id
    warmup = threading.Thread(target=batcher.insert, args=(_row(org, "first", now),))
    warmup.start()
    threading.Event().wait(0.05)  # (the first statement is held: the rest pile up)
    outcomes = _insert_together(batcher, [_row(org, "twin", now)] * 3)
    warmup.join(5)
    batcher.close()
    assert batches == [1, 1]
    new = [o for o in outcomes if o.event_pk is not None]
    assert len(new) == 1 and new[0].event_pk == stored_ids()["twin"]
    assert sorted(o.twin_in_batch for o in outcomes) == [False, True, True]


def test_a_row_refused_fails_only_its_own_request(creds, batches):
    batcher = EventInsertBatcher(events._batcher_connect, max_age=None)
    now = timezone.now()
    org = creds.organization_id
    warmup = threading.Thread(target=batcher.insert, args=(_row(org, "first", now),))
    warmup.start()
    threading.Event().wait(0.05)
    orphan = _row(org + 999_999, "orphan", now)
    rows = [_row(org, "good-1", now), orphan, _row(org, "good-2", now), orphan]
    outcomes = _insert_together(batcher, rows)
    warmup.join(5)
    batcher.close()
    assert isinstance(outcomes[1], psycopg.errors.ForeignKeyViolation)
    assert outcomes[3] is outcomes[1]  # (its twin in the batch is not "a duplicate": not stored)
    ids = stored_ids()
    assert outcomes[0].event_pk == ids["good-1"]
    assert outcomes[2].event_pk == ids["good-2"]
    assert batches == [1, 3, 1, 1, 1]  # (the shared statement, then row by row)


def test_the_batchers_connection_is_reopened_after_postgresql_dropped_it(creds, published):
    batcher = EventInsertBatcher(events._batcher_connect, max_age=None)
    now = timezone.now()
    first = batcher.insert(_row(creds.organization_id, "before", now))
    assert batcher._conn is not None
    with connection.cursor() as cursor:  # (what a PostgreSQL restart does to it)
        cursor.execute("SELECT pg_terminate_backend(%s)", [batcher._conn.info.backend_pid])
    second = batcher.insert(_row(creds.organization_id, "after", now))
    batcher.close()
    assert first.event_pk is not None and second.event_pk is not None
    assert sorted(stored_ids()) == ["after", "before"]


def test_a_lone_post_is_committed_and_published_before_the_answer(creds, published, batches):
    status, _, content = wsgi_post(f"/beeline/events/{creds.webhook_secret}", event_body("alone"))
    assert (status, content) == ("200 OK", b"ok")
    # Read on Django's connection, not the batcher's: committed, not merely inserted.
    assert list(stored_ids()) == ["alone"] and published == [stored_ids()["alone"]]
    assert batches == [1]
