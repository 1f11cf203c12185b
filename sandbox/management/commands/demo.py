"""`make demo`: one command from a fresh clone to a running portal with both sandboxes.

It migrates (SQLite unless DATABASE_URL says otherwise), seeds the demo amoCRM account and the
demo Beeline PBX, then runs as child processes: the web server (threaded: the portal calls the
sandbox over HTTP on the same server), a Celery worker and beat. Redis at REDIS_URL is needed
(the Celery broker, and the amoCRM request pacing every process shares): without it the demo
stops at once and says how to start one. Ctrl-C stops all.

PUBLIC_URL, AMOCRM_API_BASE_URL and BEELINE_API_URL are derived from DEMO_HOST/DEMO_PORT; when
the settings this process started with disagree, it restarts itself once with the right ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from core.redis import redis_client

_REEXEC_FLAG = "BEETEL_DEMO_CONFIGURED"


def _redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            pass
        return bool(redis_client(url).ping())
    except Exception:  # unreachable, refused, auth, protocol: all mean "no broker"
        return False


class Command(BaseCommand):
    help = "Run the Beetel demo: portal + Celery + amoCRM and Beeline sandboxes on one machine."

    def _demo_env(self, host: str, port: str) -> dict[str, str]:
        public = f"http://{host}:{port}"
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            SANDBOX_ENABLED="true",
            PUBLIC_URL=public,
            AMOCRM_API_BASE_URL=f"{public}/sandbox/amocrm",
            BEELINE_API_URL=f"{public}/sandbox/beeline",
            ALLOWED_HOSTS=",".join(sorted({host, "127.0.0.1", "localhost"})),
            PYTHONUNBUFFERED="1",
        )
        if not env.get("DATABASE_URL"):
            # SQLite options (IMMEDIATE transactions, WAL, busy timeout): config.settings.base.
            env["DATABASE_URL"] = f"sqlite:///{settings.BASE_DIR / 'db.sqlite3'}"
        return env

    def _configured(self, env: dict[str, str]) -> bool:
        return (
            os.environ.get(_REEXEC_FLAG) == "1"
            and settings.SANDBOX_ENABLED
            and settings.PUBLIC_URL == env["PUBLIC_URL"]
            and settings.BEELINE_API_URL == env["BEELINE_API_URL"]
            and settings.AMOCRM_API_BASE_URL == env["AMOCRM_API_BASE_URL"]
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host = os.environ.get("DEMO_HOST", "127.0.0.1")
        port = os.environ.get("DEMO_PORT", "8000")
        env = self._demo_env(host, port)
        redis_url = env.get("REDIS_URL") or settings.REDIS_URL
        if not _redis_reachable(redis_url):
            # Calls cannot go through without it (Celery's broker, the amoCRM rate limiter):
            # say so now rather than serve pages on which nothing works.
            raise CommandError(
                f"Redis is not reachable at {redis_url}. The demo needs it (Celery broker, amoCRM "
                "rate limiter). Start one — `apt-get install redis-server`, or "
                "`docker run -p 6379:6379 redis` — or point REDIS_URL at yours, then run "
                "`make demo` again."
            )
        env["CELERY_TASK_ALWAYS_EAGER"] = "false"
        if not self._configured(env):
            if os.environ.get(_REEXEC_FLAG) == "1":
                raise CommandError(
                    "The demo settings did not take effect (PUBLIC_URL / BEELINE_API_URL / "
                    "AMOCRM_API_BASE_URL / SANDBOX_ENABLED); check your .env."
                )
            env[_REEXEC_FLAG] = "1"
            manage = str(Path(settings.BASE_DIR) / "manage.py")
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, manage, "demo"], env)

        self._prepare()
        account_page, pbx_page, token = self._seed()
        self._announce(env, token=token, account_page=account_page, pbx_page=pbx_page)
        self._run(env, host=host, port=port)

    def _prepare(self) -> None:
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(f"Database: {engine} — applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)

    def _seed(self) -> tuple[str, str, str]:
        """Seed both sandboxes; returns (amoCRM account page, Beeline PBX page, Beeline token)."""
        from django.urls import reverse

        from sandbox.amocrm.demo import demo_seed as amocrm_demo_seed
        from sandbox.beeline.demo import demo_seed as beeline_demo_seed

        account = amocrm_demo_seed()
        self.stdout.write(f"amoCRM sandbox: demo account «{account}» is ready.")
        pbx = beeline_demo_seed()
        self.stdout.write(f"Beeline sandbox: demo PBX «{pbx.name}» is ready.")
        return (
            reverse("sandbox_amocrm:account", args=[account.pk]),
            reverse("sandbox_beeline:pbx", args=[pbx.pk]),
            pbx.token,
        )

    def _announce(
        self, env: dict[str, str], *, token: str, account_page: str, pbx_page: str
    ) -> None:
        public = env["PUBLIC_URL"]
        broker = env.get("REDIS_URL") or settings.REDIS_URL
        self.stdout.write(
            self.style.SUCCESS("\nBeetel demo is starting.\n")
            + f"  Cabinet:          {public}/cabinet/login\n"
            + f"  Sandbox:          {public}/sandbox/\n"
            + f"  amoCRM sandbox:   {public}/sandbox/amocrm/\n"
            + f"  Beeline sandbox:  {public}/sandbox/beeline/\n"
            + f"  Admin:            {public}/admin/\n"
            + f"  Health:           {public}/healthz\n"
            + f"  Beeline token:    {token}\n"
            + f"  Celery: worker (queues events, crm, default) and beat, broker {broker}\n\n"
            + "The customer journey (README, «Demo»):\n"
            + f"  1. {public}{account_page} → «Установить» → tick the consent → «Разрешить»:\n"
            + "     the page shows «Ваш ключ доступа» (copy it) → «Войти в личный кабинет».\n"
            + "  2. «Настройки ключей»: paste the Beeline token above, «Сохранить».\n"
            + "  3. «Менеджеры»: «Загрузить менеджеров amoCRM» (suggested by profile phones),\n"
            + "     «Сохранить».\n"
            + "  4. «Организация»: name 4950000001 (e.g. «Отдел продаж»): the contacts' tag.\n"
            + "  5. «Настройки звонков»: choose the switches, «Сохранить».\n"
            + f"  6. {public}{pbx_page} → «Позвонить»: the call appears in the Dashboard's\n"
            + "     journal and on the amoCRM sandbox account page within seconds.\n"
            + "  7. Journal → «Контакт в amoCRM»: the contact card with the widget shows\n"
            + "     «Соединение установлено» bottom-right.\n"
            + "Press Ctrl-C to stop everything.\n"
        )
        self.stdout.flush()

    def _run(self, env: dict[str, str], *, host: str, port: str) -> None:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands: dict[str, list[str]] = {
            # runserver is threaded by default; never --nothreading (the portal calls itself).
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
        }
        schedule_dir = tempfile.mkdtemp(prefix="beetel-beat-")
        celery = [python, "-m", "celery", "-A", "config.celery_app"]
        commands["worker"] = [
            *celery, "worker", "-Q", "events,crm,default", "-l", "info", "-c", "2",
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        commands["beat"] = [
            *celery, "beat", "-l", "info", "-s", str(Path(schedule_dir) / "schedule"),
        ]  # fmt: skip
        children: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in commands.items():
                children[name] = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with code {child.returncode}")
                        stopping = True
                time.sleep(0.3)
        finally:
            self._stop(children)
            shutil.rmtree(schedule_dir, ignore_errors=True)  # beat's schedule file

    def _stop(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.stdout.write("Beetel demo stopped.")
