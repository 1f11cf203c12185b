"""Pytest fixtures for the amoCRM emulator (registered in the root conftest.py).

``amocrm_account``: an account with an admin and two managers, reachable through
``sandbox_http`` (whose routing turns the emulator's timeout fault into
``requests.ReadTimeout`` in the caller, as a real hang would, without making the test wait).
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

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


@pytest.fixture
def amocrm_account(sandbox_http: responses.RequestsMock) -> Account:
    return account_create(subdomain="acme", name="ООО «Акме»", users=AMOCRM_TEST_USERS)
