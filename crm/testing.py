"""Test builders of the amoCRM half: an emulated amoCRM account, and our organization installed
from it through the real install flow (callback → code exchange → /api/v4/account).

Test-only: it drives the sandbox emulator (see sandbox/), which product code never imports.
"""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client, TestCase

from core.models import Organization
from sandbox.amocrm.services import account_create, oauth_code_issue

_subdomains = itertools.count(1)


def amo_account_make(name: str = "Рога и копыта") -> Any:
    return account_create(
        subdomain=f"acme{next(_subdomains)}x",
        name=name,
        users=[
            {"name": "Админ Админов", "email": "admin@acme.test", "phone": None, "is_admin": True},
            {"name": "Анна Петрова", "email": "anna@acme.test", "phone": "9161110001"},
            {"name": "Борис Сидоров", "email": "boris@acme.test", "phone": "+7 (916) 111-00-02"},
        ],
    )


def install(account: Any) -> Organization:
    """What amoCRM does when the admin presses «Разрешить»: the redirect to our callback."""
    code = oauth_code_issue(account=account)
    # run the on-commit work (users refresh) as a real commit would
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = Client().get("/amocrm/oauth/callback", {"code": code, "referer": account.host})
    assert response.status_code == 200, response.content.decode()[:500]
    return Organization.objects.get(amo_account_id=account.pk)
