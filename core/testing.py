"""Test builders shared by every app: organizations built the way installs build them.

Every test that touches tenant data gets an ``outsider`` organization next to its own (see the
root ``conftest.py``): anything the outsider can see of the organization under test is a bug.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection

from core.models import Organization
from core.services import organization_create

_account_ids = itertools.count(30_000_001)
T = TypeVar("T")


def organization_make(*, name: str = "Acme", subdomain: str | None = None) -> Organization:
    account_id = next(_account_ids)
    subdomain = subdomain or f"{name.lower().replace(' ', '')}{account_id}"
    return organization_create(
        amo_account_id=account_id,
        name=name,
        subdomain=subdomain,
        host=f"{subdomain}.amocrm.ru",
    )


def in_parallel(work: Callable[[], T], *, threads: int, timeout: float = 60) -> list[T]:
    """Run ``work`` in ``threads`` threads released together, for races (needs
    ``django_db(transaction=True)``: each thread has its own connection, closed after).

    Returns the results in the order the threads finished; re-raises a thread's exception.
    """
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(exc)
        finally:
            connection.close()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout)
    if errors:
        raise errors[0]
    return results


@contextmanager
def frozen_tcp_server() -> Iterator[int]:
    """A local port that accepts TCP connections and never answers a byte: Redis or PostgreSQL
    frozen (a stopped VM, a lost network path), as opposed to down (refused at once). Yields
    the port; leaving the block closes every connection, which frees any caller still waiting.
    """
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, name="frozen-tcp-server", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


@dataclass
class Timed:
    seconds: float
    result: Any = None
    error: BaseException | None = None


def call_timed(work: Callable[[], Any], *, limit: float) -> Timed:
    """Run ``work`` in a daemon thread and time it; fails (AssertionError) instead of hanging
    when it has not returned within ``limit`` seconds. The thread has its own database
    connection (closed after)."""
    outcome: list[Timed] = []
    started = time.monotonic()

    def run() -> None:
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 (handed to the test's thread)
            outcome.append(Timed(time.monotonic() - started, error=exc))
        else:
            outcome.append(Timed(time.monotonic() - started, result=result))
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="call-timed", daemon=True)
    thread.start()
    thread.join(limit)
    assert outcome, f"still waiting after {limit} s: hung instead of failing"
    return outcome[0]


@contextmanager
def celery_broker_at(url: str) -> Iterator[None]:
    """Publish to a real broker at ``url`` (not eagerly) inside the block: tasks queued there
    are sent over the network as in production, to a broker that may be down or frozen."""
    from celery import current_app

    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]  # (a proxy)
    conf = app.conf
    saved = {"broker_url": conf.broker_url, "task_always_eager": conf.task_always_eager}

    def reset_pools() -> None:  # (what Celery does after a fork: new connections)
        app._pool = None
        app.amqp._producer_pool = None

    conf.update(broker_url=url, task_always_eager=False)
    reset_pools()
    try:
        yield
    finally:
        conf.update(saved)
        reset_pools()
