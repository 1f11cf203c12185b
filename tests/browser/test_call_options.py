"""«Настройки звонков» beyond the manual, in headless Chromium against both emulators over real
HTTP: the pipelines load by themselves (HTMX, with a progress indicator), the options are chosen
and saved, routing rules appear in the Beeline emulator, Диагностика shows the routing state,
and the page reads in English too. Screenshots: test-artifacts/<test name>/."""

from __future__ import annotations

import re

from core.models import Organization
from integration.selectors import call_settings_for

CLIENT = "+79031112233"


def _connected(emulators) -> Organization:
    """Installed from the emulated amoCRM, Beeline token saved, Иван and Мария mapped."""
    from crm.services import amo_install_complete, amo_users_refresh
    from integration.services import ManagerMappingInput, manager_mappings_save
    from pbx.connection import beeline_token_save
    from pbx.selectors import abonents_for
    from sandbox.amocrm.services import oauth_code_issue

    account, pbx = emulators
    organization = amo_install_complete(
        code=oauth_code_issue(account=account), referer=account.host
    )
    beeline_token_save(organization=organization, token=pbx.token)
    users = {u.name: u.amo_id for u in amo_users_refresh(organization=organization)}
    abonents = {a.phone: a.pk for a in abonents_for(organization=organization)}
    manager_mappings_save(
        organization=organization,
        rows=[
            ManagerMappingInput(abonents["9161110001"], True, users["Иван Петров"]),
            ManagerMappingInput(abonents["9161110002"], True, users["Мария Соколова"]),
        ],
    )
    return organization


def test_new_call_options_in_the_browser(page, emulators, outsider, screenshot):
    from playwright.sync_api import expect

    from sandbox.amocrm.pipelines import pipeline_add
    from sandbox.amocrm.services import contact_create

    account, pbx = emulators
    organization = _connected(emulators)
    incoming = pipeline_add(account=account, name="Входящие звонки", stage_names=["Новый звонок"])
    contact_create(
        account=account,
        name="Постоянный клиент",
        responsible=account.users.get(name="Мария Соколова"),
        phones=[(CLIENT, "WORK")],
    )

    page.goto("/cabinet/login")
    page.get_by_label("Ключ доступа").fill(organization.access_key)
    page.get_by_role("button", name="Войти").click()
    page.get_by_role("navigation").get_by_role("link", name="НАСТРОЙКИ ЗВОНКОВ").click()

    # The pipelines load by themselves on the first visit.
    stage = page.get_by_label("Воронка и этап")
    expect(stage.locator("optgroup[label='Входящие звонки'] option")).to_have_text(
        ["Входящие звонки → Новый звонок"]
    )
    expect(
        page.locator("#toasts .toast").filter(has_text="Воронки amoCRM загружены")
    ).to_be_visible()
    for hint in (
        "сначала идёт его ответственному менеджеру",
        "вместо нового контакта",
        "с контактом, теми же тегами и ответственным менеджером",
    ):
        expect(page.get_by_text(hint, exact=False)).to_be_visible()
    screenshot(page, "01-options-loaded")

    page.get_by_label(re.compile("Звонок ответственному")).check(force=True)
    page.get_by_label(re.compile(r"\+7 4950000001")).check()
    page.get_by_label(re.compile("Звонки с неизвестных номеров")).check(force=True)
    page.get_by_label("Воронка", exact=True).select_option(label="Входящие звонки")
    page.get_by_label(re.compile("Сделка для нового клиента")).check(force=True)
    stage.select_option(value=f"{incoming.id}:{incoming.first_open_stage.id}")
    # «Загрузить воронки из amoCRM» again keeps what was chosen but not saved yet.
    page.get_by_role("button", name="Загрузить воронки из amoCRM").click()
    expect(page.get_by_label(re.compile("Сделка для нового клиента"))).to_be_checked()
    page.locator("#settings-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#toasts .toast").filter(has_text="Сохранено")).to_be_visible()
    screenshot(page, "02-options-saved")

    settings = call_settings_for(organization=organization)
    assert settings.routing_enabled and settings.unsorted_enabled and settings.lead_enabled
    assert (settings.unsorted_pipeline_id, settings.lead_pipeline_id) == (incoming.id, incoming.id)
    assert dict(pbx.icr_routes.values_list("inbound_national", "extension")) == {
        "9031112233": "202"
    }
    assert not call_settings_for(organization=outsider).routing_enabled

    page.get_by_role("navigation").get_by_role("link", name="ДИАГНОСТИКА").click()
    routing = page.locator('[data-check="routing"]')
    expect(routing).to_contain_text("Правил в Билайн: 1; ожидают отправки: 0; отклонено: 0.")
    expect(routing).to_contain_text("Вебхуки amoCRM: подписка с")
    screenshot(page, "03-diagnostics")

    page.get_by_role("navigation").get_by_role("link", name="НАСТРОЙКИ ЗВОНКОВ").click()
    page.get_by_role("button", name="EN").click()
    expect(page.get_by_text("Call the responsible manager", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Load pipelines from amoCRM")).to_be_visible()
    screenshot(page, "04-options-en")
