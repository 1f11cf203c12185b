"""Helpers for tests that start the real processes of the Procfile (gunicorn, Celery)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = str(Path(sys.executable).parent)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} process in the Procfile")


def honcho(
    process: str, env: dict[str, str], log: Path, *, port: int = 5000
) -> subprocess.Popen[bytes]:
    """``honcho start <process>`` from the repository root, as ``make run`` does (honcho hands
    the process PORT; a developer's .env is not read: the test gives the whole environment)."""
    env = {**env, "PATH": f"{VENV_BIN}:{env.get('PATH', os.environ.get('PATH', ''))}"}
    no_env_file = log.with_suffix(".env")
    no_env_file.write_text("")
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 (fixed arguments: our own Procfile)
            [
                f"{VENV_BIN}/honcho",
                "--no-colour",
                "-e",
                str(no_env_file),
                "start",
                "-p",
                str(port),
                process,
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")
