"""`make demo`: one command from a fresh clone to a running portal with both sandboxes.

It migrates (SQLite unless DATABASE_URL says otherwise), seeds the demo amoCRM account and the
demo Beeline PBX, then runs as child processes: the web server (threaded: the portal calls the
sandbox over HTTP on the same server), and — when Redis answers at REDIS_URL — a Celery worker
and beat; without Redis, tasks run in-process (CELERY_TASK_ALWAYS_EAGER). Ctrl-C stops all.

PUBLIC_URL, AMOCRM_API_BASE_URL and BEELINE_API_URL are derived from DEMO_HOST/DEMO_PORT; when
the settings this process started with disagree, it restarts itself once with the right ones.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from core.redis import redis_client

_REEXEC_FLAG = "BEETEL_DEMO_CONFIGURED"
# SQLite for several processes/threads: wait for locks, take write locks up front, WAL readers.
_SQLITE_OPTIONS = "?timeout=20&transaction_mode=IMMEDIATE&init_command=" + quote(
    "PRAGMA journal_mode=WAL"
)


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
            env["DATABASE_URL"] = f"sqlite:///{settings.BASE_DIR / 'db.sqlite3'}{_SQLITE_OPTIONS}"
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
        redis_ok = _redis_reachable(env.get("REDIS_URL") or settings.REDIS_URL)
        env["CELERY_TASK_ALWAYS_EAGER"] = "false" if redis_ok else "true"
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
        token = self._seed()
        self._announce(env, redis_ok=redis_ok, token=token)
        self._run(env, host=host, port=port, redis_ok=redis_ok)

    def _prepare(self) -> None:
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(f"Database: {engine} — applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)

    def _seed(self) -> str:
        try:
            from sandbox.amocrm.demo import demo_seed as amocrm_demo_seed
        except ImportError:
            self.stdout.write(
                self.style.WARNING(
                    "amoCRM sandbox: sandbox.amocrm.demo.demo_seed does not exist yet — "
                    "no demo amoCRM account was created."
                )
            )
        else:
            try:
                account = amocrm_demo_seed()
                self.stdout.write(f"amoCRM sandbox: demo account «{account}» is ready.")
            except Exception as exc:  # a half-built sibling sandbox must not stop the demo
                self.stdout.write(self.style.ERROR(f"amoCRM sandbox: seeding failed: {exc!r}"))

        from sandbox.beeline.demo import demo_seed as beeline_demo_seed

        pbx = beeline_demo_seed()
        self.stdout.write(f"Beeline sandbox: demo PBX «{pbx.name}» is ready.")
        return pbx.token

    def _announce(self, env: dict[str, str], *, redis_ok: bool, token: str) -> None:
        public = env["PUBLIC_URL"]
        if redis_ok:
            mode = "Celery: worker (queues events, crm, default) and beat, broker " + (
                env.get("REDIS_URL") or settings.REDIS_URL
            )
        else:
            mode = (
                "Celery: Redis is NOT reachable — tasks run in-process in the web server "
                "(CELERY_TASK_ALWAYS_EAGER); no worker, no beat (periodic jobs do not run)."
            )
        self.stdout.write(
            self.style.SUCCESS("\nBeetel demo is starting.\n")
            + f"  Cabinet:          {public}/cabinet/login\n"
            + f"  Sandbox:          {public}/sandbox/\n"
            + f"  amoCRM sandbox:   {public}/sandbox/amocrm/\n"
            + f"  Beeline sandbox:  {public}/sandbox/beeline/\n"
            + f"  Admin:            {public}/admin/\n"
            + f"  Health:           {public}/healthz\n"
            + f"  Beeline token:    {token}\n"
            + f"  {mode}\n\n"
            + "Next steps:\n"
            + "  1. Open the amoCRM sandbox, demo account page, and install the widget\n"
            + "     («Установить» → «Разрешить»): note «Ваш ключ доступа».\n"
            + "  2. Log into the cabinet with that key.\n"
            + "  3. «Настройки ключей»: paste the Beeline token above into «Beeline API Token»,\n"
            + "     «Сохранить».\n"
            + "  4. «Менеджеры»: map 9161110001..3 to the amoCRM managers, «Сохранить».\n"
            + "  5. «Настройки звонков»: choose the switches, «Сохранить».\n"
            + "  6. Beeline sandbox → «Демо-АТС»: fire calls and watch them arrive in amoCRM.\n"
            + "Press Ctrl-C to stop everything.\n"
        )
        self.stdout.flush()

    def _run(self, env: dict[str, str], *, host: str, port: str, redis_ok: bool) -> None:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands: dict[str, list[str]] = {
            # runserver is threaded by default; never --nothreading (the portal calls itself).
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
        }
        schedule_dir = tempfile.mkdtemp(prefix="beetel-beat-")
        if redis_ok:
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
