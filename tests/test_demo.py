"""`make demo` on a fresh database: the portal and the sandbox come up, Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 45


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, deadline: float, demo: subprocess.Popen[str]) -> int:
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            pytest.fail(f"make demo exited early with {demo.returncode}")
        try:
            return requests.get(url, timeout=2).status_code
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {BUDGET_SECONDS}s")


class Demo:
    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "demo.log"
        env = {
            key: value
            for key, value in os.environ.items()
            # pytest's settings and the suite's PostgreSQL must not leak into the demo.
            if key not in {"DJANGO_SETTINGS_MODULE", "PUBLIC_URL", "BEELINE_API_URL",
                           "AMOCRM_API_BASE_URL", _REEXEC}
        }  # fmt: skip
        self.tmp = tmp_path / "tmp"  # the demo's temporary directory: checked after Ctrl-C
        self.tmp.mkdir(exist_ok=True)
        env.update(
            DEMO_PORT=str(self.port),
            DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            REDIS_URL=redis_url,
            TMPDIR=str(self.tmp),
        )
        self.process = subprocess.Popen(
            # -o: the virtualenv is already installed; do not let make reinstall it.
            ["make", "-o", ".venv/.installed", "demo"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.deadline = time.monotonic() + BUDGET_SECONDS

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        """Ctrl-C, as a person would; the whole group must be gone afterwards."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


_REEXEC = "BEETEL_DEMO_CONFIGURED"


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[type[Demo]]:
    started: list[Demo] = []

    def start(redis_url: str) -> Demo:
        demo = Demo(tmp_path, redis_url)
        started.append(demo)
        return demo

    yield start  # type: ignore[misc]
    for demo in started:
        demo.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_make_demo_without_redis_stops_at_once_and_says_how_to_start_it(start_demo):
    """Without Redis no call could go through (Celery broker, amoCRM pacing): the demo says so
    instead of serving pages on which nothing works."""
    demo = start_demo("redis://127.0.0.1:1/0")  # nothing listens on port 1

    assert demo.process.wait(timeout=BUDGET_SECONDS) != 0
    output = demo.output()
    assert "Redis is not reachable at redis://127.0.0.1:1/0" in output
    assert "redis-server" in output
    assert "Starting development server" not in output


def test_make_demo_serves_the_portal_and_sandbox_and_stops_on_ctrl_c(start_demo, settings):
    demo = start_demo(settings.REDIS_URL)

    assert _wait_for(f"{demo.base}/healthz", demo.deadline, demo.process) == 200
    assert _wait_for(f"{demo.base}/sandbox/beeline/", demo.deadline, demo.process) == 200
    assert _wait_for(f"{demo.base}/sandbox/", demo.deadline, demo.process) == 200

    output = demo.output()
    assert f"{demo.base}/cabinet/login" in output
    assert f"{demo.base}/sandbox/amocrm/accounts/" in output  # step 1 names the account page
    from sandbox.beeline.demo import DEMO_TOKEN

    assert DEMO_TOKEN in output
    # The demo's own Beeline API answers with the demo token at the advertised base URL.
    abonents = requests.get(
        f"{demo.base}/sandbox/beeline/abonents",
        headers={"X-MPBX-API-AUTH-TOKEN": DEMO_TOKEN},
        timeout=5,
    )
    assert [a["phone"] for a in abonents.json()] == [
        "9161110001", "9161110002", "9161110003", "9161110004",
    ]  # fmt: skip

    assert list(demo.tmp.glob("beetel-beat-*"))  # beat's schedule, while running
    pgid = demo.process.pid
    demo.stop()
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(pgid), "a demo child outlived Ctrl-C"
    # Its beat schedule folder went with it.
    assert not list(demo.tmp.glob("beetel-beat-*"))


@pytest.mark.worker
def test_make_demo_with_redis_starts_worker_and_beat(start_demo, settings):
    demo = start_demo(settings.REDIS_URL)

    assert _wait_for(f"{demo.base}/healthz", demo.deadline, demo.process) == 200
    worker_ready = re.compile(r"celery@\S+ ready\.")
    while time.monotonic() < demo.deadline:
        output = demo.output()
        if worker_ready.search(output) and "beat: Starting" in output:
            break
        time.sleep(0.3)
    assert "Celery: worker (queues events, crm, default) and beat" in output
    assert worker_ready.search(output), output[-2000:]
    assert "beat: Starting" in output


# --- The README's journey against a running demo on its default database (SQLite) -------------


class Visitor:
    """A browser's part in the README's steps, over plain HTTP: cookies, CSRF, redirects."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Accept-Language"] = "ru"

    def get(self, path: str) -> requests.Response:
        response = self.session.get(self._url(path), timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response

    def submit(self, path: str, data: dict[str, object], *, expect: int = 200) -> requests.Response:
        """POST a form the way a browser does after showing it (CSRF cookie and token)."""
        token = self.session.cookies.get("csrftoken")
        response = self.session.post(
            self._url(path),
            data={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": self._url(path)},
            timeout=60,
        )
        assert response.status_code == expect, (path, response.status_code, response.text[:800])
        return response

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path


def _one(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.S)
    assert found, f"{pattern!r} not in page:\n{text[:3000]}"
    return found.group(1)


def _journey_to_five_calls(demo: Demo) -> None:
    from html import unescape

    from sandbox.beeline.demo import DEMO_TOKEN

    assert _wait_for(f"{demo.base}/healthz", demo.deadline, demo.process) == 200
    me = Visitor(demo.base)

    # 1. amoCRM sandbox → the demo account → «Установить» → consent → «Разрешить» → the key.
    accounts = me.get("/sandbox/amocrm/").text
    account_id = _one(r'href="/sandbox/amocrm/accounts/(\d+)/"[^>]*>\s*Демо-компания', accounts)
    account_page = me.get(f"/sandbox/amocrm/accounts/{account_id}/").text
    install = unescape(_one(r'data-testid="install"\s+href="([^"]+)"', account_page))
    consent = me.get(install).text
    grant = _one(r'<option value="([^"]+)" selected', consent)
    key_page = me.submit(
        install,
        {
            "client_id": _one(r'name="client_id" value="([^"]*)"', consent),
            "state": "",
            "mode": "popup",
            "account": account_id,
            "from_widget": "1",
            "grant": grant,
            "consent": "on",
            "allow": "",
        },
    )
    assert "Ваш ключ доступа" in key_page.text
    key = _one(r'data-testid="access-key">([^<]+)<', key_page.text).strip()

    # 2. The key page's «Войти в личный кабинет» → Dashboard.
    dashboard = me.submit("/cabinet/login", {"key": key})
    org_id = _one(r"/cabinet/(\d+)/$", dashboard.url)

    # 3. «Настройки ключей»: the printed Beeline token → «Сохранено».
    keys = me.submit(f"/cabinet/{org_id}/keys", {"token": DEMO_TOKEN})
    assert "Токен сохранён и проверен" in keys.text

    # 4. «Менеджеры»: load amoCRM's managers, keep the suggested ones, «Сохранить».
    me.submit(f"/cabinet/{org_id}/managers/refresh", {})
    managers = me.get(f"/cabinet/{org_id}/managers").text
    form: dict[str, object] = {}
    for name in re.findall(r'<select name="(amo_user_\d+)"', managers):
        block = managers.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
        chosen = re.search(r'<option value="(\d+)"\s+selected', block)
        form[name] = chosen.group(1) if chosen else ""
        form[name.replace("amo_user_", "enabled_")] = "on"
    assert sum(1 for value in form.values() if value not in ("", "on")) == 3, form
    me.submit(f"/cabinet/{org_id}/managers", form)

    # 5. Beeline sandbox → «Демо-АТС»: five calls of different kinds.
    pbx_list = me.get("/sandbox/beeline/").text
    pbx_path = _one(r'href="(/sandbox/beeline/pbx/\d+/)"[^>]*>\s*Демо-АТС', pbx_list)
    me.get(pbx_path)
    calls = [
        ("inbound_answered", "9161110001", "+79031110001", ""),
        ("inbound_missed", "9161110002", "+79031110002", ""),
        ("inbound_group_answered", "9161110001", "+79031110003", "4950000001"),
        ("outbound_answered", "9161110003", "+79031110004", ""),
        ("outbound_busy", "9161110002", "+79031110005", ""),
    ]
    for scenario, abonent, client, via in calls:
        fired = me.submit(
            pbx_path,
            {
                "action": "call",
                "scenario": scenario,
                "abonent": abonent,
                "external_phone": client,
                "via_number": via,
                "talk_seconds": 20,
            },
        )
        assert re.search(r"Звонок .+: событий \d+, ответы: 200", fired.text), fired.text[-2000:]

    # 6. All five in the journal as delivered, and in the amoCRM sandbox, each once.
    deadline = time.monotonic() + 90
    while True:
        journal = me.get(f"/cabinet/{org_id}/").text
        delivered = re.findall(r'data-delivery="done"', journal)
        if len(delivered) == 5 or time.monotonic() > deadline:
            break
        time.sleep(1)
    rows = re.findall(r'data-delivery="([a-z_]*)"', journal)
    assert rows == ["done"] * 5, (rows, demo.output()[-4000:])
    for _scenario, _abonent, client, _via in calls:
        assert client[2:] in journal
    account_page = me.get(f"/sandbox/amocrm/accounts/{account_id}/").text
    calls_section = account_page.split('<section id="calls">', 1)[1].split("</section>", 1)[0]
    assert len(re.findall(r"<tr>\s*<td>\d+</td>", calls_section)) == 5
    assert "повтор" not in calls_section
    # Nothing failed on the way (the demo used to fail every event on SQLite).
    diagnostics = me.get(f"/cabinet/{org_id}/diagnostics").text
    assert "с ошибкой обработки: 0" in diagnostics
    assert 'data-check="undelivered" data-status="ok"' in diagnostics
    assert "no such function" not in demo.output()


@pytest.mark.worker
def test_demo_on_sqlite_takes_five_calls_to_the_journal_and_amocrm(start_demo, settings):
    """The acceptance of issue 17: the README's steps on `make demo`'s default database."""
    demo = start_demo(settings.REDIS_URL)
    _journey_to_five_calls(demo)
    assert "Database: sqlite3" in demo.output()
