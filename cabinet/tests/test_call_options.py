"""«Настройки звонков» beyond the seven switches: «Звонок ответственному» with its numbers,
«Неразобранное» and leads with pipelines and stages loaded from amoCRM; Диагностика shows the
routing sync state and what amoCRM refused. An outsider organization sees none of it."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client, TestCase
from django.urls import reverse

from cabinet.testing import call_play, login_with_key
from cabinet.tests.test_call_settings import ALL_ON
from core.tenancy import organization_scope
from integration.models import CallDelivery
from integration.selectors import call_settings_for
from pbx.models import Abonent, PbxNumber
from sandbox.amocrm.pipelines import pipeline_add
from sandbox.amocrm.services import contact_create, faults_set

# The seven settings switched on, as the form posts them.
SEVEN_ON = ALL_ON
CLIENT = "+79031112233"


@pytest.fixture
def browser(client: Client, connected_org) -> Client:
    login_with_key(client, connected_org)
    return client


@pytest.fixture
def incoming(amo_account):
    return pipeline_add(account=amo_account, name="Входящие", stage_names=["Новый", "В работе"])


def url(org, name: str = "cabinet:call_settings") -> str:
    return reverse(name, args=[org.pk])


def number_pk(org, phone: str = "4950000001") -> int:
    with organization_scope(org):
        return PbxNumber.objects.get(phone=phone).pk


def load_pipelines(browser: Client, org) -> str:
    response = browser.post(url(org, "cabinet:call_settings_pipelines"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content
    return response.content.decode()


def save(browser: Client, org, **options) -> object:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return browser.post(url(org), {**SEVEN_ON, **options}, HTTP_HX_REQUEST="true")


def test_page_explains_each_option_in_both_languages(browser: Client, connected_org):
    page = browser.get(url(connected_org)).content.decode()
    for text in (
        "Звонок ответственному",
        "сначала идёт его ответственному менеджеру",
        "Звонки с неизвестных номеров — в «Неразобранное»",
        "вместо нового контакта",
        "Сделка для нового клиента",
        "с контактом, теми же тегами и ответственным менеджером",
        "Загрузить воронки из amoCRM",
        "+7 4950000001",
    ):
        assert text in page, text
    # Pipelines were never loaded: the loader fires by itself once the page is there.
    assert 'hx-trigger="click, load"' in page
    browser.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = browser.get(url(connected_org)).content.decode()
    assert "Call the responsible manager" in page
    assert "Load pipelines from amoCRM" in page


def test_pipelines_load_with_htmx_and_keep_unsaved_choices(
    browser: Client, connected_org, incoming
):
    fragment = browser.post(
        url(connected_org, "cabinet:call_settings_pipelines"),
        {"lead_enabled": "on", "unsorted_pipeline": ""},
        HTTP_HX_REQUEST="true",
    )
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="pipeline-options"')
    assert "<html" not in body
    assert json.loads(fragment["HX-Trigger"])["toast"]["message"] == "Воронки amoCRM загружены: 2"
    assert f'value="{incoming.id}:{incoming.first_open_stage.id}"' in body
    assert "Неразобранное</option>" not in body  # not a stage a lead can be created in
    assert re.search(r'name="lead_enabled"[^>]*checked', body)  # the unsaved choice survived
    assert 'hx-trigger="click, load"' not in body
    assert 'class="spinner"' in body and "htmx-indicator" in body


def test_pipelines_loading_failure_is_a_toast(browser: Client, connected_org, amo_account):
    faults_set(account=amo_account, down=True)
    response = browser.post(
        url(connected_org, "cabinet:call_settings_pipelines"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    toast = json.loads(response["HX-Trigger"])["toast"]
    assert toast["level"] == "error" and "воронки" in toast["message"]


def test_saving_the_options(browser: Client, connected_org, incoming, amo_account, beeline_pbx):
    load_pipelines(browser, connected_org)
    contact_create(
        account=amo_account,
        name="Клиент",
        responsible=amo_account.users.get(name="Мария Соколова"),
        phones=[(CLIENT, "WORK")],
    )
    stage = incoming.first_open_stage.id

    response = save(
        browser,
        connected_org,
        routing_enabled="on",
        routing_numbers=[number_pk(connected_org)],
        unsorted_enabled="on",
        unsorted_pipeline=str(incoming.id),
        lead_enabled="on",
        lead_stage=f"{incoming.id}:{stage}",
    )

    assert response.status_code == 200, response.content.decode()[:2000]
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Сохранено"
    settings = call_settings_for(organization=connected_org)
    assert settings.routing_enabled and settings.unsorted_enabled and settings.lead_enabled
    assert (settings.unsorted_pipeline_id, settings.lead_pipeline_id) == (incoming.id, incoming.id)
    assert settings.lead_status_id == stage
    with organization_scope(connected_org):
        assert [n.phone for n in settings.routing_numbers.all()] == ["4950000001"]
    # Switching routing on synced the rules at once.
    assert dict(beeline_pbx.icr_routes.values_list("inbound_national", "extension")) == {
        "9031112233": "202"
    }
    page = response.content.decode()
    assert re.search(r'name="routing_enabled"[^>]*checked', page)

    # Switched off again: Beetel's rules go.
    response = save(browser, connected_org)
    assert response.status_code == 200
    assert not beeline_pbx.icr_routes.exists()
    assert not call_settings_for(organization=connected_org).routing_enabled


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"routing_enabled": "on"}, "Выберите номера"),
        ({"lead_enabled": "on"}, "Выберите воронку и этап"),
        ({"lead_enabled": "on", "lead_stage": "1:2"}, "Выберите корректный вариант"),
        ({"unsorted_enabled": "on", "unsorted_pipeline": "123"}, "Выберите корректный вариант"),
    ],
)
def test_bad_choices_are_refused_with_a_reason(
    browser: Client, connected_org, incoming, options, error
):
    load_pipelines(browser, connected_org)
    response = save(browser, connected_org, **options)
    assert response.status_code == 400
    assert error in response.content.decode()
    settings = call_settings_for(organization=connected_org)
    assert not (settings.routing_enabled or settings.lead_enabled or settings.unsorted_enabled)


def test_another_organizations_numbers_and_pages_are_out_of_reach(
    browser: Client, connected_org, outsider
):
    with organization_scope(outsider):
        foreign = PbxNumber.objects.create(organization=outsider, number_id="x", phone="4959999999")
    response = save(browser, connected_org, routing_enabled="on", routing_numbers=[foreign.pk])
    assert response.status_code == 400
    assert not call_settings_for(organization=connected_org).routing_enabled
    assert browser.get(url(outsider)).status_code == 404
    assert browser.post(url(outsider, "cabinet:call_settings_pipelines")).status_code == 404
    assert browser.post(url(outsider), SEVEN_ON).status_code == 404


# --- Диагностика and the journal ----------------------------------------------------------------


def statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-check="([a-z_]+)" data-status="([a-z]+)"', html))


def test_diagnostics_shows_routing_state_and_beelines_reasons(
    browser: Client, connected_org, amo_account
):
    diagnostics = url(connected_org, "cabinet:diagnostics")
    assert statuses(browser.get(diagnostics).content.decode())["routing"] == "ok"  # off
    with organization_scope(connected_org):
        Abonent.objects.filter(phone="9161110002").update(extension="999")
    contact_create(
        account=amo_account,
        name="Клиент",
        responsible=amo_account.users.get(name="Мария Соколова"),
        phones=[(CLIENT, "WORK")],
    )
    load_pipelines(browser, connected_org)
    save(
        browser,
        connected_org,
        routing_enabled="on",
        routing_numbers=[number_pk(connected_org)],
    )

    page = browser.get(diagnostics).content.decode()

    assert statuses(page)["routing"] == "warning"
    assert "Правил в Билайн: 0; ожидают отправки: 0; отклонено: 1." in page
    assert "+79031112233 → 999" in page and "Добавочный 999 не найден" in page
    assert "Вебхуки amoCRM: подписка с" in page


def test_diagnostics_warns_when_unsorted_is_off_in_amocrm(
    browser: Client, connected_org, amo_account, beeline_pbx
):
    load_pipelines(browser, connected_org)
    save(browser, connected_org, unsorted_enabled="on")
    amo_account.is_unsorted_on = False
    amo_account.save()

    call_play(beeline_pbx, scenario="inbound_missed", external_phone=CLIENT)

    assert amo_account.contacts.count() == 1 and not amo_account.unsorted.exists()
    page = browser.get(url(connected_org, "cabinet:diagnostics")).content.decode()
    assert statuses(page)["new_callers"] == "warning"
    assert "выключено «Неразобранное»" in page


def test_journal_says_where_the_call_landed(browser: Client, connected_org, beeline_pbx, incoming):
    load_pipelines(browser, connected_org)
    save(
        browser,
        connected_org,
        lead_enabled="on",
        lead_stage=f"{incoming.id}:{incoming.first_open_stage.id}",
    )
    call_play(beeline_pbx, scenario="inbound_answered", external_phone=CLIENT)
    with organization_scope(connected_org):
        delivery = CallDelivery.objects.get()
    page = browser.get(url(connected_org, "cabinet:dashboard")).content.decode()
    assert "На сделке в amoCRM" in page
    assert f"/leads/detail/{delivery.lead_id}" in page
