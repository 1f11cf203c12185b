"""The real widget telephony backend (integration.widget) behind crm's widget API, against
both emulators: «Соединение установлено» data and click-to-call through Beeline."""

from __future__ import annotations

import pytest
from django.test import Client

from core.tenancy import organization_scope
from integration.models import ManagerMapping
from pbx.models import BeelineCredentials
from sandbox.amocrm.widget_host.views import disposable_token

STATUS = "/amocrm/widget/status"
CALL = "/amocrm/widget/call"


@pytest.fixture(autouse=True)
def _real_backend(settings):
    settings.WIDGET_TELEPHONY_BACKEND = "integration.widget.TelephonyBackend"


def _headers(world, user):
    org = world.organization
    token = disposable_token(
        account_id=org.amo_account_id, user_id=user.pk, subdomain=org.amo_subdomain
    )
    return {"HTTP_X_AUTH_TOKEN": token}


def test_status_card_of_a_mapped_manager(world):
    body = Client().get(STATUS, **_headers(world, world.anna)).json()

    assert body["ok"] is True, body
    assert body["telephony"]["abonent_phone"] == "9161110001"
    assert body["user"]["name"] == world.anna.name


def test_status_explains_unmapped_disabled_and_token_problems(world):
    admin = world.account.users.order_by("id").first()
    assert Client().get(STATUS, **_headers(world, admin)).json()["code"] == "no_mapping"

    with organization_scope(world.organization):
        ManagerMapping.objects.filter(amo_user_id=world.anna.pk).update(enabled=False)
    assert Client().get(STATUS, **_headers(world, world.anna)).json()["code"] == "number_disabled"

    with organization_scope(world.organization):
        BeelineCredentials.objects.update(status=BeelineCredentials.Status.REJECTED)
    body = Client().get(STATUS, **_headers(world, world.boris)).json()
    assert body["ok"] is False and body["code"] == "token_invalid"


def test_click_to_call_rings_the_managers_beeline_number(world):
    response = Client().post(CALL, {"phone": "8 (916) 555-44-33"}, **_headers(world, world.boris))

    assert response.status_code == 200, response.content
    request = world.pbx.click_to_calls.get()
    assert request.phone_number == "9165554433"
    assert request.abonent.phone == "9161110002"


def test_click_to_call_errors_reach_the_widget(world, outsider):
    admin = world.account.users.order_by("id").first()
    assert (
        Client().post(CALL, {"phone": "+79165554433"}, **_headers(world, admin)).status_code == 404
    )
    with organization_scope(world.organization):
        ManagerMapping.objects.filter(amo_user_id=world.anna.pk).update(enabled=False)
    refused = Client().post(CALL, {"phone": "+79165554433"}, **_headers(world, world.anna))
    assert refused.status_code == 409
    assert not world.pbx.click_to_calls.exists()

    from sandbox.beeline.services import faults_set

    faults_set(pbx=world.pbx, down=True)
    down = Client().post(CALL, {"phone": "+79165554433"}, **_headers(world, world.boris))
    assert down.status_code == 502
