from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from integration.models import Organization


def login_with_key(client: Client, organization: Organization) -> None:
    response = client.post(reverse("cabinet:login"), {"key": organization.access_key})
    assert response.status_code == 302, response.content.decode()[:500]


@pytest.fixture
def cabinet(client: Client, org: Organization) -> Client:
    """A browser session that unlocked ``org`` (and only ``org``) with its access key."""
    login_with_key(client, org)
    return client


# Every organization page of the cabinet, by URL name (each takes the organization id).
ORGANIZATION_PAGES = [
    "cabinet:dashboard",
    "cabinet:diagnostics",
    "cabinet:organization",
    "cabinet:managers",
    "cabinet:call_settings",
    "cabinet:keys",
]


@pytest.fixture
def amo_account(sandbox_http):
    """A sandbox amoCRM account: an admin without a phone and two managers whose «Телефон моб.»
    matches the sandbox PBX's abonents 9161110001 and 9161110002 (typed differently)."""
    from sandbox.amocrm.services import account_create

    return account_create(
        subdomain="cabinetacme",
        name="Acme amoCRM",
        users=[
            {"name": "Админ", "is_admin": True},
            {"name": "Иван Петров", "phone": "9161110001"},
            {"name": "Мария Соколова", "phone": "+7 916 111-00-02"},
        ],
    )


@pytest.fixture
def installed_org(amo_account, outsider) -> Organization:
    """The organization created by installing the widget in the sandbox amoCRM account."""
    from crm.services import amo_install_complete
    from sandbox.amocrm.services import oauth_code_issue

    return amo_install_complete(
        code=oauth_code_issue(account=amo_account), referer=amo_account.host
    )


@pytest.fixture
def installed_cabinet(client: Client, installed_org: Organization) -> Client:
    login_with_key(client, installed_org)
    return client
