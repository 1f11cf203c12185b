"""What the benchmarks share: free loopback ports, waiting for a server, percentiles, the
Procfile's processes on loopback, and organizations connected to the emulators."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import requests
from cryptography.fernet import Fernet

PG = "postgres://postgres@127.0.0.1:5432"
ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, deadline: float) -> None:
    """Poll ``url`` until it answers at all, or raise once ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def percentile(data: list[float], p: float) -> float:
    ordered = sorted(data)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from /proc; Linux only)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    """Resident memory of ``pids`` in MB (shared pages counted in each process)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def machine_load() -> str:
    with open("/proc/loadavg") as f:
        one, five, fifteen = f.read().split()[:3]
    return f"load average {one}, {five}, {fifteen} on {os.cpu_count()} CPUs"


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backend processes serving ``database`` (their title names it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(entry))
    return pids


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def stack_env(*, dsn: str, redis_url: str, public: str, **extra: str) -> dict[str, str]:
    """The environment of every process of the stack (development settings, emulators on, a
    fresh secret and encryption key), plus ``extra`` variables."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": dsn,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": public,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
        # PostgreSQL is shared: 3 web processes x 8 threads keep connections in check.
        "WEB_THREADS": "8",
        "RECORDING_STREAMS_PER_PROCESS": "6",
        **extra,
    }


def stack_commands(
    *,
    port: int,
    workers: int,
    events_workers: int,
    beat_schedule: str | None = None,
    lean: bool = True,
) -> dict[str, list[str]]:
    """As in the Procfile: web (gunicorn config; it also serves the emulators here),
    worker-events (queue events: folding and pop-ups), worker (crm,default: deliveries) and,
    given a schedule file, beat. ``lean`` drops the workers' heartbeat, gossip and mingle
    (less broker traffic for a benchmark); without it the workers run as the Procfile says."""
    celery = [PYTHON, "-m", "celery", "-A", "config.celery_app"]
    worker = [*celery, "worker", "-l", "WARNING"]
    if lean:
        worker += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
    commands = {
        "web": [GUNICORN, "-c", "python:config.gunicorn_conf", "config.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--workers", "3", "--log-level", "warning"],
        "worker-events": [*worker, "-Q", "events", "-c", str(events_workers)],
        "worker": [*worker, "-Q", "crm,default", "-c", str(workers)],
    }  # fmt: skip
    if beat_schedule:
        commands["beat"] = [*celery, "beat", "-l", "WARNING", "-s", beat_schedule]
    return commands


def process_start(command: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen:
    """One process of the stack in its own session (so its whole group can be signalled)."""
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, **kwargs)  # type: ignore[call-overload]


def process_stop(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after ``timeout``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def org_make(index: int, *, with_pbx: bool):
    """An organization connected to its own emulated amoCRM account (tokens issued directly)
    and, with ``with_pbx``, to its own emulated PBX (token saved over HTTP: subscription)."""
    from django.utils import timezone

    from core.services import organization_create
    from core.tenancy import organization_scope
    from crm.models import AmoCredentials
    from integration.services import ManagerMappingInput, manager_mappings_save
    from pbx.connection import beeline_token_save
    from pbx.models import Abonent
    from pbx.selectors import abonents_for
    from sandbox.amocrm.services import account_create, tokens_issue
    from sandbox.beeline.services import pbx_create

    account = account_create(
        subdomain=f"bench{index}x{uuid.uuid4().hex[:6]}",
        name=f"Bench {index}",
        users=[
            {"name": "Админ", "email": "a@bench.test", "phone": None, "is_admin": True},
            {"name": "Менеджер", "email": "m@bench.test", "phone": "9161110001"},
        ],
    )
    manager = account.users.get(is_admin=False)
    access, refresh = tokens_issue(account=account)
    org = organization_create(
        amo_account_id=account.pk, name=account.name, subdomain=account.subdomain, host=account.host
    )
    with organization_scope(org):
        AmoCredentials.objects.create(
            organization=org,
            access_token=access,
            refresh_token=refresh,
            expires_at=timezone.now() + timedelta(hours=23),
            refreshed_at=timezone.now(),
        )
    pbx = None
    if with_pbx:
        pbx = pbx_create(
            name=f"АТС {index}",
            abonents=[{"phone": "9161110001", "first_name": "Иван", "last_name": "Петров"}],
            numbers=[],
        )
        beeline_token_save(organization=org, token=pbx.token)
        abonent = abonents_for(organization=org).get()
    else:
        with organization_scope(org):
            abonent = Abonent.objects.create(
                organization=org, user_id="9161110001@ip.beeline.ru", phone="9161110001"
            )
    manager_mappings_save(
        organization=org, rows=[ManagerMappingInput(abonent.pk, True, manager.pk)]
    )
    return org, account, pbx, abonent, manager
