"""Fixtures of the amoCRM half: an emulated amoCRM account, and our organization installed
from it through the real install flow (callback → code exchange → /api/v4/account)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

_subdomains = itertools.count(1)


@dataclass
class Installed:
    account: Any  # sandbox.amocrm.models.Account
    organization: Any  # integration.models.Organization
    admin: Any
    managers: list[Any]


def amo_account_make(name: str = "Рога и копыта") -> Any:
    from sandbox.amocrm.services import account_create

    return account_create(
        subdomain=f"acme{next(_subdomains)}x",
        name=name,
        users=[
            {"name": "Админ Админов", "email": "admin@acme.test", "phone": None, "is_admin": True},
            {"name": "Анна Петрова", "email": "anna@acme.test", "phone": "9161110001"},
            {"name": "Борис Сидоров", "email": "boris@acme.test", "phone": "+7 (916) 111-00-02"},
        ],
    )


def install(account: Any) -> Any:
    """What amoCRM does when the admin presses «Разрешить»: the redirect to our callback."""
    from django.test import TestCase

    from integration.models import Organization
    from sandbox.amocrm.services import oauth_code_issue

    code = oauth_code_issue(account=account)
    # run the on-commit work (users refresh) as a real commit would
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = Client().get("/amocrm/oauth/callback", {"code": code, "referer": account.host})
    assert response.status_code == 200, response.content.decode()[:500]
    return Organization.objects.get(amo_account_id=account.pk)


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
