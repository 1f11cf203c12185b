"""A newcomer's first hour in a real browser, at desktop (1280 px) and phone (390 px) width, in
Russian and English: install from the amoCRM sandbox's account page → the key page → the
cabinet; every page fits its width and speaks its language (screenshots of each in
test-artifacts/); then what went wrong before: an expired session inside a form, a refused
«Менеджеры» save, a wrong delete confirmation, a bad token over a working one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Organization

VARIANTS = [(1280, "ru"), (390, "ru"), (1280, "en"), (390, "en")]
IDS = [f"{width}-{lang}" for width, lang in VARIANTS]

# Each cabinet page: URL name suffix → its heading in each language.
PAGES = [
    ("", {"ru": "Dashboard", "en": "Dashboard"}),
    ("diagnostics", {"ru": "Диагностика", "en": "Diagnostics"}),
    ("organization", {"ru": "Организация", "en": "Organization"}),
    ("managers", {"ru": "Менеджеры", "en": "Managers"}),
    ("call-settings", {"ru": "Настройки звонков", "en": "Call settings"}),
    ("keys", {"ru": "Настройки ключей", "en": "Key settings"}),
]
COPY = {"ru": "Копировать", "en": "Copy"}
LOGIN_BUTTON = {"ru": "Войти в личный кабинет", "en": "Log into the personal cabinet"}
EXPIRED = {"ru": "Сессия истекла", "en": "Your session has expired"}


@pytest.fixture
def browser_page(request, chromium, live_server) -> Iterator[object]:
    width, lang = request.param
    context = chromium.new_context(
        base_url=live_server.url,
        viewport={"width": width, "height": 860},
        locale="ru-RU" if lang == "ru" else "en-US",
    )
    context.add_cookies(
        [{"name": "django_language", "value": lang, "url": live_server.url}]  # the switch's cookie
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.lang = lang  # type: ignore[attr-defined]
    page.width = width  # type: ignore[attr-defined]
    yield page
    context.close()
    from django.db import connections

    connections.close_all()


def _fits(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window"


def _install(page, account, screenshot) -> Organization:
    """The README's step 1: the sandbox account page → «Установить» → «Разрешить» → the key."""
    from playwright.sync_api import expect

    page.goto(f"/sandbox/amocrm/accounts/{account.pk}/")
    page.get_by_test_id("install").click()
    page.get_by_label(
        "Подтвердите согласие на передачу данных аккаунта на сторонний сервер"
    ).check()
    page.get_by_role("button", name="Разрешить").click()
    key = page.get_by_test_id("access-key").inner_text().strip()
    organization = Organization.objects.get(amo_account_id=account.pk)
    assert key == organization.access_key
    # The key page looks like the product: header, language switch, «Копировать».
    expect(page.locator("header.topbar .brand")).to_have_text("Beetel Integration")
    expect(page.locator("header.topbar form.language")).to_be_visible()
    expect(page.get_by_role("button", name=COPY[page.lang], exact=True)).to_be_visible()
    _fits(page)
    screenshot(page, "01-key-page")
    return organization


def _connect(organization, pbx) -> None:
    """Steps 2–4 done by the services (the journey test clicks them): token, managers, calls."""
    from crm.services import amo_users_refresh
    from integration.services import ManagerMappingInput, manager_mappings_save
    from pbx.calls import call_finalize_due
    from pbx.connection import beeline_token_save
    from pbx.selectors import abonents_for
    from sandbox.beeline.services import call_simulate

    beeline_token_save(organization=organization, token=pbx.token)
    users = {u.phone_national: u.amo_id for u in amo_users_refresh(organization=organization)}
    manager_mappings_save(
        organization=organization,
        rows=[
            ManagerMappingInput(a.pk, True, users.get(a.phone))
            for a in abonents_for(organization=organization)
        ],
    )
    for scenario, abonent, client in (
        ("inbound_answered", "9161110001", "+79031110001"),
        ("inbound_missed", "9161110002", "+79031110002"),
        ("outbound_answered", "9161110002", "+79031110003"),
    ):
        call_simulate(pbx=pbx, scenario=scenario, abonent_phone=abonent, external_phone=client)
    call_finalize_due(now=timezone.now() + timedelta(seconds=60))


@pytest.mark.parametrize("browser_page", VARIANTS, ids=IDS, indirect=True)
def test_every_page_fits_and_speaks_the_language(
    browser_page,
    emulators,
    outsider,
    screenshot,
):
    from playwright.sync_api import expect

    page, lang = browser_page, browser_page.lang
    account, pbx = emulators

    page.goto("/")
    _fits(page)
    screenshot(page, "00-landing")
    organization = _install(page, account, screenshot)
    _connect(organization, pbx)

    page.get_by_role("button", name=LOGIN_BUTTON[lang]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    for index, (path, heading) in enumerate(PAGES, start=2):
        page.goto(f"/cabinet/{organization.pk}/{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading[lang])
        content = page.content()
        assert outsider.name not in content
        assert "p.m." not in content and "a.m." not in content
        if lang == "en":
            assert "Amo CRM" not in content
        _fits(page)
        screenshot(page, f"{index:02d}-{path or 'dashboard'}")
    page.goto("/cabinet/organizations")
    _fits(page)
    screenshot(page, "08-organizations")
    # Every menu item, ВЫХОД included, is on screen without scrolling sideways.
    logout = page.locator("nav.menu .menu-button")
    box = logout.bounding_box()
    assert box is not None and box["x"] + box["width"] <= page.width
    page.goto(f"/sandbox/amocrm/contacts/detail/{account.contacts.first().pk}")
    expect(page.get_by_text("Соединение установлено")).to_be_visible(timeout=15_000)
    screenshot(page, "09-contact-card-widget")
    page.goto("/cabinet/login")
    screenshot(page, "10-login")


@pytest.mark.parametrize("browser_page", VARIANTS, ids=IDS, indirect=True)
def test_what_went_wrong_before_holds(
    browser_page,
    emulators,
    outsider,
    screenshot,
    live_server,
):
    from playwright.sync_api import expect

    page, lang = browser_page, browser_page.lang
    account, pbx = emulators
    organization = _install(page, account, screenshot)
    from crm.services import amo_users_refresh
    from pbx.connection import beeline_token_save

    beeline_token_save(organization=organization, token=pbx.token)
    amo_users_refresh(organization=organization)
    page.get_by_role("button", name=LOGIN_BUTTON[lang]).click()
    base = f"/cabinet/{organization.pk}"
    dialogs: list[str] = []
    stay = [True]

    def dismiss(dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss() if stay[0] else dialog.accept()

    page.on("dialog", dismiss)

    # «Менеджеры»: the suggested managers are not saved yet — leaving warns.
    page.goto(f"{base}/managers")
    expect(page.locator("#managers-form[data-unsaved-on-load]")).to_have_count(1)
    page.locator("nav.menu a").first.click()
    assert dialogs == ["beforeunload"]
    expect(page).to_have_url(re.compile(r"/managers$"))
    # Picking another manager by hand hides «Предложено по телефону…».
    first, second = (
        page.locator("#managers-form select").nth(0),
        page.locator("#managers-form select").nth(1),
    )
    hint = page.locator("[data-suggestion-for]").first
    expect(hint).to_be_visible()
    same = second.input_value()
    first.select_option(same)  # the same manager on two numbers
    expect(hint).to_be_hidden()
    page.locator("#managers-form button[type=submit]").click()
    expect(page.locator("#toasts .toast-error")).to_be_visible()  # not only inline
    expect(page.locator("#managers-form .error").first).to_be_visible()
    screenshot(page, "11-managers-refused")
    # Still unsaved after the refusal: leaving warns again.
    page.locator("nav.menu a").first.click()
    assert dialogs == ["beforeunload", "beforeunload"]
    # Corrected and saved: now leaving is silent.
    page.locator("#managers-form select").nth(0).select_option("")
    page.locator("#managers-form button[type=submit]").click()
    expect(page.locator("#toasts .toast-success")).to_be_visible()
    page.locator("nav.menu a").first.click()
    expect(page).not_to_have_url(re.compile(r"/managers$"))
    assert dialogs == ["beforeunload", "beforeunload"]
    stay[0] = False  # from here on, leave when asked

    # «Настройки ключей»: a bad token over the working one.
    page.goto(f"{base}/keys")
    token = page.locator("#token-form input[name=token]")
    token.fill("typo-token")
    page.locator("#token-form button[type=submit]").click()
    expect(page.get_by_test_id("old-token-kept")).to_be_visible()
    expect(token).to_have_value("typo-token")  # not wiped
    screenshot(page, "12-keys-bad-token")

    # «Организация»: a wrong name in the delete form — the error is on screen, the URL stays,
    # and the language switch still works afterwards.
    page.goto(f"{base}/organization")
    page.locator("#delete input[name=confirmation]").fill("not the name")
    page.locator("#delete button[type=submit]").click()
    error = page.locator("#delete-error")
    expect(error).to_be_visible()
    expect(error).to_be_in_viewport()
    expect(page).to_have_url(re.compile(r"/organization$"))
    screenshot(page, "13-delete-refused")
    other = "en" if lang == "ru" else "ru"
    page.locator(f"form.language button[value={other}]").click()
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page).to_have_url(re.compile(r"/organization$"))
    page.locator(f"form.language button[value={lang}]").click()

    # The session expires with a form open: the page goes to the login page, which says so,
    # and logging in returns to that page.
    page.goto(f"{base}/call-settings")
    page.locator("#settings-form .switch").first.click()
    page.context.clear_cookies(name="sessionid")
    page.locator("#settings-form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/cabinet/login\?next="))
    expect(page.get_by_role("alert").first).to_contain_text(EXPIRED[lang])
    assert page.locator("header.topbar").count() == 1  # no second header inside a form
    screenshot(page, "14-session-expired")
    page.locator("input[name=key]").fill(organization.access_key)
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"{base}/call-settings$"))
    _fits(page)
