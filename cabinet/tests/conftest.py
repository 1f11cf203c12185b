from __future__ import annotations

import pytest
from django.test import Client

from cabinet.testing import login_with_key
from core.models import Organization
from crm.services import amo_install_complete, amo_users_refresh
from integration.services import ManagerMappingInput, manager_mappings_save
from pbx.connection import beeline_token_save
from pbx.selectors import abonents_for
from sandbox.amocrm.services import account_create, oauth_code_issue


@pytest.fixture
def cabinet(client: Client, org: Organization) -> Client:
    """A browser session that unlocked ``org`` (and only ``org``) with its access key."""
    login_with_key(client, org)
    return client


@pytest.fixture
def amo_account(sandbox_http):
    """A sandbox amoCRM account: an admin without a phone and two managers whose «Телефон моб.»
    matches the sandbox PBX's abonents 9161110001 and 9161110002 (typed differently)."""
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
    return amo_install_complete(
        code=oauth_code_issue(account=amo_account), referer=amo_account.host
    )


@pytest.fixture
def installed_cabinet(client: Client, installed_org: Organization) -> Client:
    login_with_key(client, installed_org)
    return client


@pytest.fixture
def connected_org(installed_org: Organization, beeline_pbx, settings) -> Organization:
    """Installed, Beeline token saved (3 abonents, numbers 4950000001/2), amoCRM users loaded,
    Иван ↔ 9161110001 and Мария ↔ 9161110002 mapped; 9161110003 left without a manager."""
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    beeline_token_save(organization=installed_org, token=beeline_pbx.token)
    users = {user.name: user.amo_id for user in amo_users_refresh(organization=installed_org)}
    abonents = {a.phone: a.pk for a in abonents_for(organization=installed_org)}
    manager_mappings_save(
        organization=installed_org,
        rows=[
            ManagerMappingInput(abonents["9161110001"], True, users["Иван Петров"]),
            ManagerMappingInput(abonents["9161110002"], True, users["Мария Соколова"]),
            ManagerMappingInput(abonents["9161110003"], True, None),
        ],
    )
    return installed_org
