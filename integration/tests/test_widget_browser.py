"""The widget in headless Chromium on the sandbox page that hosts it the way amoCRM does, end to
end over live_server: the real telephony backend (integration.widget.TelephonyBackend), our
API and both emulators speak real HTTP to each other.

The organization is installed from the emulated amoCRM (real install flow), its Beeline token
is saved against an emulated PBX, and «Менеджеры» maps Анна to abonent 9161110001 and Борис,
switched off, to 9161110002; the account's admin is left unmapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.models import Organization
from core.testing import organization_make
from crm.testing import amo_account_make, install
from integration.services import ManagerMappingInput, manager_mappings_save
from pbx.connection import beeline_token_save
from pbx.selectors import abonents_for
from sandbox.beeline.models import ClickToCall
from sandbox.beeline.services import pbx_create
from sandbox.beeline.testing import ABONENTS

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CARD = "#beetel-status-card"


@dataclass
class World:
    organization: Organization
    pbx: Any  # sandbox.beeline.models.Pbx
    admin: Any  # sandbox amoCRM users: the admin is not mapped,
    anna: Any  # Анна rings from 9161110001,
    boris: Any  # Борис's 9161110002 is switched off in «Менеджеры».

    def click_to_calls(self) -> list[ClickToCall]:
        return list(ClickToCall.objects.filter(pbx=self.pbx).select_related("abonent"))


@pytest.fixture
def live(live_server: Any, settings: Any, transactional_db: None) -> Any:
    """Every URL of ours and of both emulators points at the live server: real HTTP."""
    settings.PUBLIC_URL = live_server.url
    settings.AMOCRM_API_BASE_URL = f"{live_server.url}/sandbox/amocrm"
    settings.BEELINE_API_URL = f"{live_server.url}/sandbox/beeline"
    settings.WIDGET_TELEPHONY_BACKEND = "integration.widget.TelephonyBackend"
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    return live_server


@pytest.fixture
def world(live: Any) -> World:
    organization_make(name="Outsider Ltd")
    account = amo_account_make()
    organization = install(account)
    pbx = pbx_create(
        name="Тестовая АТС",
        abonents=ABONENTS,
        numbers=[{"phone": "+74950000001", "name": "Отдел продаж", "multichannel": True}],
    )
    beeline_token_save(organization=organization, token=pbx.token)
    users = list(account.users.order_by("id"))
    admin = users[0]
    anna = next(u for u in users if u.name.startswith("Анна"))
    boris = next(u for u in users if u.name.startswith("Борис"))
    abonents = {a.phone: a for a in abonents_for(organization=organization)}
    manager_mappings_save(
        organization=organization,
        rows=[
            ManagerMappingInput(abonents["9161110001"].pk, True, anna.pk),
            ManagerMappingInput(abonents["9161110002"].pk, False, boris.pk),
        ],
    )
    return World(organization=organization, pbx=pbx, admin=admin, anna=anna, boris=boris)


@pytest.fixture
def page(live: Any, world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are
    # still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        yield page
        browser.close()
        # The test body's ORM calls under sync_playwright run in another context (greenlet)
        # and get a connection of their own; left open, it keeps the test database alive.
        connections.close_all()


def _open(page: Any, live: Any, world: World, user: Any) -> Any:
    account_id = world.organization.amo_account_id
    page.goto(f"{live.url}/sandbox/amocrm/widget-host/?account={account_id}&user={user.pk}")
    page.wait_for_selector("body[data-widget-ready='1']")
    card = page.locator(CARD)
    card.wait_for(timeout=10_000)
    return card


def _wait_card_text(page: Any, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => {"
        " const card = document.querySelector(selector);"
        " return card && card.innerText.includes(text); }",
        arg=[CARD, text],
        timeout=15_000,
    )


def test_status_card_and_click_to_call_reach_beeline(page, live, world):
    card = _open(page, live, world, world.anna)

    assert card.get_attribute("data-state") == "ok"
    text = card.inner_text()
    assert "Соединение установлено" in text
    assert "Анна Петрова" in text
    assert "Рабочий телефон: 9161110001" in text
    page.screenshot(path=str(ARTIFACTS / "widget_status_ok.png"))

    page.click("[data-testid='phone-1']")  # +7 (916) 555-44-33
    _wait_card_text(page, "Звоним")

    assert card.get_attribute("data-state") == "ok"
    assert "+79165554433" in card.inner_text()
    [request] = world.click_to_calls()
    assert request.abonent is not None and request.abonent.phone == "9161110001"
    assert request.phone_number == "9165554433"
    assert request.status_code == 200
    page.screenshot(path=str(ARTIFACTS / "widget_call_placed.png"))


def test_unmapped_user_sees_what_is_wrong_and_no_call_is_placed(page, live, world):
    card = _open(page, live, world, world.admin)

    assert card.get_attribute("data-state") == "error"
    text = card.inner_text()
    assert "Нет соединения с Beeline" in text
    assert "не привязан к номеру Beeline" in text and "Менеджеры" in text
    page.screenshot(path=str(ARTIFACTS / "widget_status_unmapped.png"))

    page.click("[data-testid='phone-2']")
    _wait_card_text(page, "Не удалось позвонить")

    assert "не привязан к номеру Beeline" in card.inner_text()
    assert page.locator(".host-note--error").count() == 1
    assert world.click_to_calls() == []


def test_switched_off_number_is_explained_and_not_dialled(page, live, world):
    card = _open(page, live, world, world.boris)

    assert card.get_attribute("data-state") == "error"
    text = card.inner_text()
    assert "Нет соединения с Beeline" in text
    assert "Ваш номер Beeline выключен" in text and "«Вкл.»" in text
    page.screenshot(path=str(ARTIFACTS / "widget_status_switched_off.png"))

    page.click("[data-testid='phone-1']")
    _wait_card_text(page, "Не удалось позвонить")

    assert "Ваш номер Beeline выключен" in card.inner_text()
    assert world.click_to_calls() == []
