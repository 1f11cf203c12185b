"""The cabinet in a real browser: log in with the key, walk every tab, save call settings."""

from __future__ import annotations

import re

from integration.selectors import call_settings_for

TABS = [
    ("DASHBOARD", "dashboard"),
    ("ПРОПУЩЕННЫЕ", "missed"),
    ("СПИСОК ОРГАНИЗАЦИЙ", "organizations"),
    ("ДИАГНОСТИКА", "diagnostics"),
    ("ОРГАНИЗАЦИЯ", "organization"),
    ("МЕНЕДЖЕРЫ", "managers"),
    ("НАСТРОЙКИ ЗВОНКОВ", "call-settings"),
    ("НАСТРОЙКИ КЛЮЧЕЙ", "keys"),
]


def test_login_walk_the_tabs_and_save_call_settings(page, org, outsider, screenshot):
    from playwright.sync_api import expect

    page.goto("/")
    expect(page.get_by_role("link", name="Установить в amoCRM")).to_be_visible()
    screenshot(page, "00-landing")
    page.get_by_role("link", name="Войти в личный кабинет").click()

    page.get_by_label("Ключ доступа").fill("WRONG-KEY")
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("alert")).to_have_text("Неверный ключ доступа")
    page.get_by_label("Ключ доступа").fill(org.access_key)
    page.get_by_role("button", name="Войти").click()
    expect(page.locator(".brand")).to_have_text("Beetel Integration")

    for index, (label, name) in enumerate(TABS, start=1):
        page.get_by_role("navigation").get_by_role("link", name=label, exact=True).click()
        expect(page.get_by_role("navigation").locator('[aria-current="page"]')).to_have_text(label)
        assert outsider.name not in page.content()
        screenshot(page, f"{index:02d}-{name}")

    # «Настройки звонков»: switch 5 off, «Сохранить», the toast «Сохранено» in the corner.
    page.get_by_role("navigation").get_by_role("link", name="НАСТРОЙКИ ЗВОНКОВ").click()
    switch = page.get_by_label(re.compile("Создание контакта при исходящих звонках"))
    expect(switch).to_be_checked()
    switch.uncheck(force=True)  # the real checkbox sits under the styled track
    page.locator("#settings-form").get_by_role("button", name="Сохранить").click()
    toast = page.locator("#toasts .toast")
    expect(toast).to_have_text("Сохранено")
    screenshot(page, "08-call-settings-saved")
    assert call_settings_for(organization=org).create_contact_outgoing is False
    assert call_settings_for(organization=outsider).create_contact_outgoing is True

    # The page survives a reload with the saved state (no JavaScript-only state).
    page.reload()
    expect(
        page.get_by_label(re.compile("Создание контакта при исходящих звонках"))
    ).not_to_be_checked()

    # Phone width: the menu becomes a strip and nothing overflows sideways.
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "09-call-settings-phone")

    # English through the language switch.
    page.get_by_role("button", name="EN").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Call settings")
    screenshot(page, "10-call-settings-en")


def test_leaving_with_unsaved_changes_asks_first(page, org):
    from playwright.sync_api import expect

    page.goto("/cabinet/login")
    page.get_by_label("Ключ доступа").fill(org.access_key)
    page.get_by_role("button", name="Войти").click()
    nav = page.get_by_role("navigation")
    nav.get_by_role("link", name="НАСТРОЙКИ ЗВОНКОВ", exact=True).click()
    dialogs: list[str] = []

    def stay(dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.get_by_label(re.compile("Уведомления при входящих звонках")).uncheck(force=True)
    nav.get_by_role("link", name="DASHBOARD", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Настройки звонков")
    assert dialogs == ["beforeunload"]

    # Saved: leaving is silent.
    page.locator("#settings-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#toasts .toast")).to_have_text("Сохранено")
    nav.get_by_role("link", name="DASHBOARD", exact=True).click()
    expect(nav.locator('[aria-current="page"]')).to_have_text("DASHBOARD")
    assert dialogs == ["beforeunload"]
    assert call_settings_for(organization=org).notify_incoming is False
