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
        env.update(
            DEMO_PORT=str(self.port),
            DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            REDIS_URL=redis_url,
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


def test_make_demo_without_redis_serves_the_portal_and_sandbox(start_demo):
    demo = start_demo("redis://127.0.0.1:1/0")  # nothing listens on port 1

    assert _wait_for(f"{demo.base}/healthz", demo.deadline, demo.process) == 200
    assert _wait_for(f"{demo.base}/sandbox/beeline/", demo.deadline, demo.process) == 200
    assert _wait_for(f"{demo.base}/sandbox/", demo.deadline, demo.process) == 200

    output = demo.output()
    assert f"{demo.base}/cabinet/login" in output
    assert f"{demo.base}/sandbox/beeline/" in output
    assert "Redis is NOT reachable" in output
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

    pgid = demo.process.pid
    demo.stop()
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(pgid), "a demo child outlived Ctrl-C"


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
