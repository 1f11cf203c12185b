"""Suite-wide fixtures. The suite needs the real PostgreSQL and Redis: it stops at once, with a
clear message, when either is unreachable (no silent fallback to SQLite or to mocks)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    db_url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    problems = []
    if not _reachable(db_url, 5432):
        problems.append(f"PostgreSQL is not reachable at {db_url} (set DATABASE_URL)")
    if not _reachable(settings.REDIS_URL, 6379):
        problems.append(f"Redis is not reachable at {settings.REDIS_URL} (set REDIS_URL)")
    if problems:
        pytest.exit("Test services unavailable:\n  " + "\n  ".join(problems), returncode=3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (the chaos run, then the ones that start real processes), so that
    under ``make test``'s several processes they overlap the many short ones instead of running
    alone at the end."""
    weight = {"chaos": 0, "worker": 1, "browser": 1}

    def rank(item: pytest.Item) -> int:
        return min((weight[m.name] for m in item.iter_markers() if m.name in weight), default=2)

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    """Each test starts with an empty Redis test database (rate limiters, locks, caches)."""
    from core.redis import redis_client

    redis_client().flushdb()
    yield


@pytest.fixture
def outsider(db: None):
    """Another tenant that must never see or be touched by the test's organization."""
    from core.testing import organization_make

    return organization_make(name="Outsider Ltd")


@pytest.fixture
def org(outsider):
    """The organization under test (always created alongside ``outsider``)."""
    from core.testing import organization_make

    return organization_make(name="Acme")


pytest_plugins = ["sandbox.testing", "sandbox.beeline.testing", "sandbox.amocrm.testing"]
