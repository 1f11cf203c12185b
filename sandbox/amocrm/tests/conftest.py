from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from django.conf import settings
from django.utils import timezone

from sandbox.amocrm import clock
from sandbox.amocrm.models import Account, User
from sandbox.amocrm.services import tokens_issue
from sandbox.routing import route_to_django

API = settings.AMOCRM_API_BASE_URL


class FakeClock:
    """Replaces sandbox.amocrm.clock.now; ``advance`` moves time without sleeping."""

    def __init__(self) -> None:
        self.current = timezone.now()

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


@pytest.fixture
def admin(amocrm_account: Account) -> User:
    return amocrm_account.users.get(is_admin=True)


@pytest.fixture
def manager(amocrm_account: Account) -> User:
    return amocrm_account.users.filter(is_admin=False).order_by("id").first()  # type: ignore[return-value]


@pytest.fixture
def admin_token(amocrm_account: Account, admin: User) -> str:
    return tokens_issue(account=amocrm_account, user=admin)[0]


@pytest.fixture
def api(admin_token: str) -> Callable[..., requests.Response]:
    """``api("GET", "/api/v4/account", json=...)`` with the admin's bearer token."""

    def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or admin_token}"}
        return requests.request(method, API + path, headers=headers, timeout=5, **kwargs)

    return call


@pytest.fixture
def hook_receiver(db: None) -> Iterator[list[Any]]:
    """The emulator routed as usual, but our own URLs replaced by a recorder answering 200,
    so hook tests do not depend on (or trigger) the real callback views."""
    received: list[Any] = []

    def record(request: Any) -> tuple[int, dict[str, str], bytes]:
        received.append(request)
        return 200, {}, b"ok"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        route_to_django(rsps, settings.AMOCRM_API_BASE_URL, "/sandbox/amocrm")
        rsps.add_callback(
            "GET", re.compile("^" + re.escape(settings.PUBLIC_URL) + "/.*"), callback=record
        )
        yield received


@pytest.fixture
def no_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test send more than 7 requests in a second (the limit has its own tests)."""
    from sandbox.amocrm import ratelimit

    monkeypatch.setattr(ratelimit, "rate_limit_admit", lambda **_: True)
