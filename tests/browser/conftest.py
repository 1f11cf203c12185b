"""Browser tests: headless Debian Chromium driven by Playwright against pytest-django's
``live_server``. Never runs ``playwright install``: the system's /usr/bin/chromium is used.

Screenshots go to ``test-artifacts/`` (gitignored) so a failed or passed run can be looked at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an asyncio loop on the test thread; the ORM calls the tests
    make there (fixtures, assertions) are ordinary synchronous code, so Django's async guard is
    lifted for browser tests only (never process-wide: ``check --deploy`` rightly objects)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def chromium(transactional_db: None) -> Iterator[object]:
    """Per test, and set up after the database so that it is gone (and its event loop with it)
    before the database is flushed at teardown."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server) -> Iterator[object]:
    """A fresh browser context (own cookies) with a desktop-sized page; base URL = live server."""
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="ru-RU"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    page.wait_for_load_state("networkidle")
    context.close()
    # The test's own ORM calls ran while Playwright was active and got their own connection;
    # close it here, or it outlives the test and blocks dropping the test database.
    connections.close_all()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest):
    """``screenshot(page, "name")`` saves test-artifacts/<test name>/<name>.png."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def emulators(live_server, settings, transactional_db):
    """Both emulators served by the live server, and our app talking to them over HTTP."""
    from sandbox.amocrm.services import account_create
    from sandbox.beeline.services import pbx_create

    settings.PUBLIC_URL = live_server.url
    settings.AMOCRM_API_BASE_URL = f"{live_server.url}/sandbox/amocrm"
    settings.BEELINE_API_URL = f"{live_server.url}/sandbox/beeline"
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0  # the recording is ready when the call ends
    account = account_create(
        subdomain="journey",
        name="Рога и копыта",
        users=[
            {"name": "Админ Админов", "is_admin": True},
            {"name": "Иван Петров", "phone": "9161110001"},
            {"name": "Мария Соколова", "phone": "+7 916 111-00-02"},
        ],
    )
    pbx = pbx_create(
        name="АТС Рога и копыта",
        abonents=[
            {
                "phone": "9161110001",
                "first_name": "Иван",
                "last_name": "Петров",
                "extension": "201",
            },
            {
                "phone": "9161110002",
                "first_name": "Мария",
                "last_name": "Соколова",
                "extension": "202",
            },
            {
                "phone": "9161110003",
                "first_name": "Олег",
                "last_name": "Кузнецов",
                "extension": "203",
            },
        ],
        numbers=[{"phone": "+74950000001", "multichannel": True}],
    )
    return account, pbx
