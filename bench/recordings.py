"""Recordings never block webhooks: slow players on /recordings/… while Beeline posts events.

The web process runs as in the Procfile (``config/gunicorn_conf.py``); a second gunicorn plays
Beeline (the sandbox emulator serving the recordings). 20 players each download a recording
of about a minute (≈ 60 KB) reading ~1 KB/s through a small receive buffer — longer than the
30 s worker timeout — while events are fired at the webhook at 200/s. Prints the webhook's
p50/p99 (target p99 < 50 ms) and whether every recording arrived whole (byte for byte).

    .venv/bin/python bench/recordings.py [--players 20] [--seconds 15]

A throwaway database (migrated) and Redis db are used and cleaned up; everything stops by itself
(--deadline seconds at most); nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from harness import PG, free_port, machine_load, percentile, process_tree, rss_mb, wait_ready
from ingest import event_requests
from loadgen import open_loop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's apps, whatever the virtualenv points at
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))


@dataclass
class Download:
    status: int = 0
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""


def slow_download(
    port: int,
    path: str,
    *,
    bytes_per_second: int,
    deadline: float,
    started_reading: threading.Event | None = None,
) -> Download:
    """GET ``path`` reading ~``bytes_per_second`` through a small receive buffer, as a player
    on a poor connection would."""
    result = Download()
    started = time.monotonic()
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.settimeout(60)
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Forwarded-Proto: https\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        raw = b""
        while time.monotonic() < deadline:
            chunk = sock.recv(1024)
            if not chunk:
                break
            raw += chunk
            if started_reading is not None:
                started_reading.set()
            pause = started + len(raw) / bytes_per_second - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        result.status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            decoded, rest = b"", body
            while rest:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    break
                decoded, rest = decoded + rest[:size], rest[size + 2 :]
            body = decoded
        result.body = body
    except (OSError, ValueError, IndexError) as exc:
        result.error = repr(exc)
    result.seconds = time.monotonic() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--recording-seconds", type=int, default=15, help="call length")
    parser.add_argument("--read-rate", type=int, default=1024, help="bytes/s per player")
    parser.add_argument("--rate", type=float, default=200.0, help="webhook events/s")
    parser.add_argument("--workers", type=int, default=3, help="web processes (Procfile)")
    parser.add_argument("--deadline", type=float, default=240.0, help="hard stop, seconds")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.players = max(1, min(args.players, 100))
    deadline = time.monotonic() + args.deadline

    db = f"beetel_bench_rec_{os.getpid()}"
    web_port, beeline_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": f"{PG}/{db}",
        "REDIS_URL": args.redis,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": f"http://127.0.0.1:{web_port}",
        "BEELINE_API_URL": f"http://127.0.0.1:{beeline_port}/sandbox/beeline",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    processes: list[subprocess.Popen[bytes]] = []
    redis.Redis.from_url(args.redis).flushdb()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        print(f"database {db}: migrating…", flush=True)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        config = "python:config.gunicorn_conf"
        # The web process as in the Procfile; "Beeline" with few threads (few connections).
        for port, workers, threads in ((web_port, args.workers, 16), (beeline_port, 2, 4)):
            command = [GUNICORN, "-c", config, "config.wsgi:application", "--bind",
                       f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                       "--log-level", "warning"]  # fmt: skip
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True))
        web = processes[0]
        wait_ready(f"http://127.0.0.1:{web_port}/healthz", deadline)
        wait_ready(f"http://127.0.0.1:{beeline_port}/healthz", deadline)

        os.environ.update(env)
        import django

        django.setup()
        from datetime import timedelta

        from django.utils import timezone

        from core.tenancy import organization_scope
        from core.testing import organization_make
        from pbx.credentials import webhook_secret_hash
        from pbx.models import BeelineCredentials
        from pbx.recording_links import recording_token_make
        from sandbox.beeline.audio import mp3_silence
        from sandbox.beeline.models import Record
        from sandbox.beeline.services import pbx_create

        pbx = pbx_create(
            name="АТС", abonents=[{"phone": "9161110001", "last_name": "Петров"}], numbers=[]
        )
        abonent = pbx.abonents.get()
        org = organization_make(name="Bench")
        secret = uuid.uuid4().hex
        with organization_scope(org):
            BeelineCredentials.objects.create(
                organization=org,
                api_token=pbx.token,
                webhook_secret=secret,
                webhook_secret_hash=webhook_secret_hash(secret),
            )
        duration_ms = args.recording_seconds * 1000
        expected = mp3_silence(duration_ms)
        paths = []
        for _ in range(args.players):
            record = Record.objects.create(
                pbx=pbx, ext_tracking_id=str(uuid.uuid4()), abonent=abonent, phone="9031112233",
                direction=Record.Direction.INBOUND, date=timezone.now(),
                duration_ms=duration_ms, ready_at=timezone.now() - timedelta(minutes=1),
            )  # fmt: skip
            token = recording_token_make(
                organization_id=org.pk,
                ext_tracking_id=record.ext_tracking_id,
                user_id=abonent.user_id,
                generation=0,  # a new organization's links
            )
            paths.append(f"/recordings/{token}")

        expected_seconds = len(expected) / args.read_rate
        print(f"{args.players} players downloading {len(expected) // 1024} KB each at "
              f"~{args.read_rate} B/s (≈ {expected_seconds:.0f} s, longer than the 30 s worker "
              f"timeout) while firing {args.rate:.0f} events/s at the webhook; "
              f"web: {args.workers} processes ({machine_load()})", flush=True)  # fmt: skip
        results: list[Download] = [Download() for _ in paths]
        reading = [threading.Event() for _ in paths]

        def player(index: int) -> None:
            results[index] = slow_download(
                web_port,
                paths[index],
                bytes_per_second=args.read_rate,
                deadline=deadline,
                started_reading=reading[index],
            )

        # Warm the web processes up (first requests connect to PostgreSQL and Redis).
        open_loop(web_port, event_requests(web_port, f"/beeline/events/{secret}"),
                  rate=args.rate, seconds=2.0)  # fmt: skip
        threads = [
            threading.Thread(target=player, args=(i,), daemon=True) for i in range(len(paths))
        ]
        for thread in threads:
            thread.start()
        for event in reading:  # every player is receiving, so each holds a server thread
            event.wait(15)
        time.sleep(3)  # past the downloads' start: measure while they are in progress
        fire_seconds = max(5.0, expected_seconds - 10)
        events = open_loop(
            web_port,
            event_requests(web_port, f"/beeline/events/{secret}"),
            rate=args.rate,
            seconds=fire_seconds,
        )
        web_rss = rss_mb(process_tree(web.pid))
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic()))

        intact = sum(r.status == 200 and r.body == expected for r in results)
        longest = max(r.seconds for r in results)
        p50, p99 = percentile(events.latencies_ms, 50), percentile(events.latencies_ms, 99)
        steady = [ms for at, ms in zip(events.sent_at, events.latencies_ms, strict=True) if at >= 3]
        steady_p99 = percentile(steady, 99)
        print()
        print(f"webhook during the downloads: {events.ok}/{events.sent} events accepted "
              f"(statuses {events.statuses}), p50 {p50:.1f} ms, p99 {p99:.1f} ms; after the "
              f"first 3 s: p99 {steady_p99:.1f} ms   target p99 < 50 ms")  # fmt: skip
        print(f"recordings intact: {intact}/{len(results)} (byte for byte; longest transfer "
              f"{longest:.0f} s, worker timeout 30 s)   target: all")  # fmt: skip
        for index, r in enumerate(results):
            if r.status != 200 or r.body != expected:
                print(f"  player {index}: status {r.status}, {len(r.body)}/{len(expected)} "
                      f"bytes after {r.seconds:.0f} s {r.error}")  # fmt: skip
        timeline = zip(events.sent_at, events.latencies_ms, strict=True)
        slow = sorted((round(at), round(ms)) for at, ms in timeline if ms > 200)
        if slow:
            print(f"  slow webhook answers (second of the run, ms): {slow[:8]} … {slow[-4:]}")
        print(f"resident memory: web (master + {args.workers} workers) {web_rss:.0f} MB")
        print(f"machine: {machine_load()}")
        ok = intact == len(results) and p99 < 50 and events.ok == events.sent
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 (django may not be set up yet)
            pass
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        redis.Redis.from_url(args.redis).flushdb()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
