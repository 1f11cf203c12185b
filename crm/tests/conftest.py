"""Fixtures of the amoCRM half: an emulated amoCRM account, and our organization installed
from it through the real install flow (callback → code exchange → /api/v4/account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from crm.testing import amo_account_make, install


@dataclass
class Installed:
    account: Any  # sandbox.amocrm.models.Account
    organization: Any  # core.models.Organization
    admin: Any
    managers: list[Any]


@pytest.fixture
def amo_account(sandbox_http: Any) -> Any:
    return amo_account_make()


@pytest.fixture
def installed(amo_account: Any, outsider: Any) -> Installed:
    organization = install(amo_account)
    users = list(amo_account.users.order_by("id"))
    return Installed(
        account=amo_account, organization=organization, admin=users[0], managers=users[1:]
    )
