"""Test builders shared by every app: organizations built the way installs build them.

Every test that touches tenant data gets an ``outsider`` organization next to its own (see the
root ``conftest.py``): anything the outsider can see of the organization under test is a bug.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import TypeVar

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
