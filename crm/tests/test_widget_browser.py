"""The widget in headless Chromium on the sandbox page that hosts it the way amoCRM does.

Telephony is the recording double at the Beeline boundary (crm/tests/telephony_double.py)
until the integration layer's real backend lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from crm.models import AmoUser
from crm.tests import telephony_double
from crm.tests.telephony_double import CALLS, MAPPINGS
from integration.tenancy import organization_scope
from integration.testing import organization_make

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(live_server, settings, transactional_db, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    settings.PUBLIC_URL = live_server.url
    settings.AMOCRM_API_BASE_URL = f"{live_server.url}/sandbox/amocrm"
    settings.WIDGET_TELEPHONY_BACKEND = "crm.tests.telephony_double.RecordingTelephony"
    telephony_double.reset()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        yield page
        browser.close()
    telephony_double.reset()


@pytest.fixture
def organization(transactional_db):
    organization_make(name="Outsider Ltd")
    org = organization_make(name="Рога и копыта")
    with organization_scope(org):
        AmoUser.objects.create(
            organization=org, amo_id=501, name="Анна Петрова", fetched_at=timezone.now()
        )
    return org


def _open(page, live_server, org, user_id):
    page.goto(
        f"{live_server.url}/sandbox/amocrm/widget-host/?account={org.amo_account_id}&user={user_id}"
    )
    page.wait_for_selector("body[data-widget-ready='1']")
    card = page.locator("#beetel-status-card")
    card.wait_for(timeout=10_000)
    return card


def test_status_card_and_click_to_call(page, live_server, organization):
    MAPPINGS[(organization.pk, 501)] = ("9161110001", True)

    card = _open(page, live_server, organization, 501)

    assert card.get_attribute("data-state") == "ok"
    text = card.inner_text()
    assert "Соединение установлено" in text
    assert "Анна Петрова" in text
    assert "Рабочий телефон: 9161110001" in text
    page.screenshot(path=str(ARTIFACTS / "widget_status_ok.png"))

    page.click("[data-testid='phone-1']")
    page.wait_for_function(
        "() => document.querySelector('#beetel-status-card').innerText.includes('Звоним')"
    )
    assert CALLS == [(organization.pk, 501, "9165554433")]
    page.screenshot(path=str(ARTIFACTS / "widget_call_placed.png"))


def test_unmapped_user_sees_what_is_wrong(page, live_server, organization):
    card = _open(page, live_server, organization, 777)

    assert card.get_attribute("data-state") == "error"
    text = card.inner_text()
    assert "Нет соединения с Beeline" in text
    assert "не привязан к номеру Beeline" in text and "Менеджеры" in text
    page.screenshot(path=str(ARTIFACTS / "widget_status_unmapped.png"))

    page.click("[data-testid='phone-2']")
    page.wait_for_function(
        "() => document.querySelector('#beetel-status-card')"
        ".innerText.includes('Не удалось позвонить')"
    )
    assert CALLS == []
    assert page.locator(".host-note--error").count() == 1
