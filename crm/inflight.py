"""Several amoCRM requests of one delivery round in flight at once.

Each request waits for its slot from the account's shared limiter (``crm.ratelimit``) anyway;
sending the next ones while an answer is on its way fills the slots a lone request would leave
unused (amoCRM answers a batch of 50 calls in about twice the pace's interval). At most
``AMOCRM_SEARCH_CONCURRENCY`` requests are in flight. Inside a database transaction everything
runs in the calling thread: other threads' connections could not see its rows (tokens, index).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.db import connection

Item = TypeVar("Item")
Result = TypeVar("Result")


def _workers(count: int) -> int:
    if connection.in_atomic_block:
        return 1
    return max(1, min(int(settings.AMOCRM_SEARCH_CONCURRENCY), count))


def requests_in_flight(
    send: Callable[[Item], Result], items: Sequence[Item]
) -> list[Result | Exception]:
    """``send(item)`` for every item, several at once; the results in the order of ``items``,
    each either what ``send`` returned or the exception it raised (every item is tried: one
    failing request does not lose the answers of the others)."""
    workers = _workers(len(items))

    def one(item: Item) -> Result | Exception:
        try:
            return send(item)
        except Exception as exc:  # handed back to the caller, in its place
            return exc
        finally:
            if workers > 1:
                connection.close()  # this thread's own database connection

    if workers == 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="amo-request") as pool:
        return list(pool.map(one, items))
