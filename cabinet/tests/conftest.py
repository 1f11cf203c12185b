from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from crm.models import AmoUser
from integration.models import CallDelivery, Organization
from integration.tenancy import organization_scope
from pbx.models import PbxCall


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
    "cabinet:missed",
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


@pytest.fixture
def connected_org(installed_org: Organization, beeline_pbx, settings) -> Organization:
    """Installed, Beeline token saved (3 abonents, numbers 4950000001/2), amoCRM users loaded,
    Иван ↔ 9161110001 and Мария ↔ 9161110002 mapped; 9161110003 left without a manager."""
    from crm.services import amo_users_refresh
    from integration.services import ManagerMappingInput, manager_mappings_save
    from pbx.selectors import abonents_for
    from pbx.services import beeline_token_save

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


def call_play(pbx, **kwargs):
    """Play a call on the sandbox PBX through our webhook, then let it settle into the
    pipeline (Celery is eager in tests; the settle delay is passed by finalizing 'later')."""
    from pbx.services import call_finalize_due
    from sandbox.beeline.services import call_simulate

    kwargs.setdefault("abonent_phone", "9161110001")
    with TestCase.captureOnCommitCallbacks(execute=True):
        sim = call_simulate(pbx=pbx, **kwargs)
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_finalize_due(now=timezone.now() + timedelta(seconds=60))
    return sim


def calls_make(organization: Organization, count: int, *, prefix: str = "bulk") -> None:
    """``count`` finished calls with their amoCRM outcome, the way the pipeline leaves them
    (bulk rows: playing 500 calls through the emulators would take minutes)."""
    now = timezone.now()
    with organization_scope(organization):
        AmoUser.objects.get_or_create(
            organization=organization, amo_id=7001, defaults={"name": "Анна", "fetched_at": now}
        )
        calls = PbxCall.objects.bulk_create(
            [
                PbxCall(
                    organization=organization,
                    ext_tracking_id=f"{prefix}-{i}",
                    direction="in" if i % 2 else "out",
                    external_phone=f"+79{i:09d}",
                    external_phone_national=f"9{i:09d}",
                    started_at=now - timedelta(minutes=i),
                    answered_at=now - timedelta(minutes=i) if i % 3 else None,
                    ended_at=now - timedelta(minutes=i) + timedelta(seconds=40),
                    talk_seconds=35 if i % 3 else 0,
                    outcome="answered" if i % 3 else "missed",
                    status="finished",
                    finished_at=now,
                    recording_user_id="9161110001@ip.beeline.ru",
                )
                for i in range(count)
            ]
        )
        CallDelivery.objects.bulk_create(
            [
                CallDelivery(
                    organization=organization,
                    pbx_call=call,
                    status="failed" if i % 7 == 0 else "done",
                    last_error="amoCRM отказал" if i % 7 == 0 else "",
                    contact_id=500 + i,
                    responsible_user_id=7001,
                )
                for i, call in enumerate(calls)
            ]
        )
