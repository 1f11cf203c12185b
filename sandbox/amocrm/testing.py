"""Pytest fixtures for the amoCRM emulator (registered in the root conftest.py).

``amocrm_account``: an account with an admin and two managers, reachable through
``sandbox_http``. With it, the emulator's timeout fault surfaces as ``requests.ReadTimeout``
in the caller, as a real hang would, instead of making the test wait.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from django.conf import settings

from sandbox.amocrm import gate
from sandbox.amocrm.models import Account
from sandbox.amocrm.services import account_create

AMOCRM_TEST_USERS: list[dict[str, Any]] = [
    {"name": "Админ Админов", "email": "admin@acme.example", "phone": None, "is_admin": True},
    {
        "name": "Мария Менеджер",
        "email": "maria@acme.example",
        "phone": "9161230001",
        "is_admin": False,
    },
    {
        "name": "Пётр Продажник",
        "email": "petr@acme.example",
        "phone": "8 (916) 123-00-02",
        "is_admin": False,
    },
]


def timeouts_raise(rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the timeout fault raise ``requests.ReadTimeout`` at once in the routed caller."""
    monkeypatch.setattr(gate, "timeout_sleep", lambda seconds: None)
    base = settings.AMOCRM_API_BASE_URL
    for registered in rsps.registered():
        if not isinstance(registered, responses.CallbackResponse):
            continue
        if not registered.url.match(base + "/"):  # type: ignore[union-attr]
            continue
        original = registered.callback

        def callback(request: Any, original: Any = original) -> Any:
            status, headers, body = original(request)
            if headers.get(gate.FAULT_HEADER) == "timeout":
                return requests.ReadTimeout("Read timed out (sandbox timeout fault)")
            return status, headers, body

        registered.callback = callback


@pytest.fixture
def amocrm_account(
    sandbox_http: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> Account:
    timeouts_raise(sandbox_http, monkeypatch)
    return account_create(subdomain="acme", name="ООО «Акме»", users=AMOCRM_TEST_USERS)
