"""Webhook ingestion benchmark: our Beeline event webhook vs a bare WSGI baseline.

Both run under gunicorn on loopback against PostgreSQL, in the same run and with the same
worker count. The baseline is the least any server can do per event: a minimal WSGI app that
inserts the raw body into a table. Each target receives the same number of XSI events at a fixed
rate; we print events/second accepted (HTTP 200), their ratio and p50/p99 latency.

    .venv/bin/python bench/ingest.py [--rate 200] [--events 2000] [--workers 4]

A throwaway database (migrated) and Redis db are used and cleaned up; everything stops by itself
(bounded count, --deadline seconds at most); nothing listens beyond 127.0.0.1.
Target: ratio >= 0.7 and p99 < 50 ms at 200 events/second.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from harness import PG, free_port, percentile, wait_ready

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
FIXTURE = ROOT / "pbx" / "tests" / "fixtures" / "inbound_answered" / "01_received.xml"
HEADERS = {"Content-Type": "application/xml; charset=UTF-8", "X-Forwarded-Proto": "https"}

# The bare baseline: one insert of the raw body per request, nothing else.
BASELINE_APP = """
import os
import psycopg

_conn = None


def application(environ, start_response):
    global _conn
    if _conn is None:
        _conn = psycopg.connect(os.environ["BENCH_BASELINE_DSN"], autocommit=True)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    _conn.execute("INSERT INTO raw_event (body) VALUES (%s)", [body.decode("utf-8")])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
"""

SETUP_ORG = """
import django
django.setup()
from core.testing import organization_make
from pbx.models import BeelineCredentials
from pbx.credentials import webhook_secret_hash
from core.tenancy import organization_scope
import secrets
org = organization_make(name="Bench")
secret = secrets.token_urlsafe(32)
with organization_scope(org):
    BeelineCredentials.objects.create(organization=org, api_token="bench-token",
        webhook_secret=secret, webhook_secret_hash=webhook_secret_hash(secret))
print(secret)
"""


@dataclass
class Result:
    name: str
    sent: int = 0
    accepted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = 0.0  # seconds this target was being fed or still answering
    first_sent: float = 0.0
    last_done: float = 0.0

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def _post(port: int, path: str, body: bytes) -> int:
    # http.client, not requests: the sender must cost far less CPU than the servers it measures.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=HEADERS)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def fire(targets: list[tuple[Result, int, str, list[bytes]]], rate: float, deadline: float) -> None:
    """Send each target's bodies at ``rate`` per second (open loop: a slow server does not slow
    the sender), alternating one-second blocks between targets so that both see the same
    machine load over the run."""
    lock = threading.Lock()

    def one(result: Result, port: int, path: str, body: bytes) -> None:
        started = time.perf_counter()
        status = _post(port, path, body)
        latency = (time.perf_counter() - started) * 1000
        with lock:
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.latencies_ms.append(latency)
            if status == 200:
                result.accepted += 1
            result.last_done = max(result.last_done, time.perf_counter())

    block = max(1, int(rate))
    interval = 1.0 / rate
    cursors = [0] * len(targets)
    with ThreadPoolExecutor(max_workers=48) as pool:
        while any(c < len(t[3]) for c, t in zip(cursors, targets, strict=True)):
            for index, (result, port, path, bodies) in enumerate(targets):
                chunk = bodies[cursors[index] : cursors[index] + block]
                cursors[index] += len(chunk)
                start = time.perf_counter()
                result.first_sent = result.first_sent or start
                for n, body in enumerate(chunk):
                    delay = start + n * interval - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    if time.monotonic() > deadline:
                        return
                    pool.submit(one, result, port, path, body)
                    result.sent += 1
                # Let this block's requests finish before the other target's block starts.
                time.sleep(max(0.0, start + len(chunk) * interval - time.perf_counter()))
                while result.sent > len(result.latencies_ms) and time.monotonic() < deadline:
                    time.sleep(0.002)
                result.elapsed += time.perf_counter() - start


def event_bodies(count: int) -> list[bytes]:
    template = FIXTURE.read_text(encoding="utf-8")
    original_id = template.split("<xsi:eventID>")[1].split("</xsi:eventID>")[0]
    original_call = template.split("<xsi:extTrackingId>")[1].split("</xsi:extTrackingId>")[0]
    bodies = []
    for _ in range(count):
        body = template.replace(original_id, str(uuid.uuid4()))
        bodies.append(body.replace(original_call, str(uuid.uuid4())).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=180.0, help="hard stop, seconds")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    # A plain `kill` (or timeout) must still run the cleanup below, or workers are orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.events = max(1, min(args.events, 20_000))
    deadline = time.monotonic() + args.deadline

    db = f"beetel_bench_{os.getpid()}"
    dsn = f"{PG}/{db}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "RECORDING_SIGNING_KEYS": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "PUBLIC_URL": "https://bench.beetel.test",
        "AMOCRM_CLIENT_ID": "bench",
        "AMOCRM_CLIENT_SECRET": "bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "WARNING",
        "BENCH_BASELINE_DSN": dsn,
        "PYTHONPATH": str(ROOT),
    }
    processes: list[subprocess.Popen[bytes]] = []
    bench_dir: Path | None = None
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        print(f"database {db}: migrating…", flush=True)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        secret = subprocess.run(
            [PYTHON, "-c", SETUP_ORG], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE raw_event (id bigserial PRIMARY KEY, body text NOT NULL, "
                "received_at timestamptz NOT NULL DEFAULT now())"
            )
        # The baseline module lives in a temporary folder, never in the source tree.
        bench_dir = Path(tempfile.mkdtemp(prefix="beetel-bench-"))
        (bench_dir / "_baseline_wsgi.py").write_text(BASELINE_APP)

        app_port, base_port = free_port(), free_port()
        common = ["--workers", str(args.workers), "--log-level", "warning", "--timeout", "30"]
        processes.append(
            subprocess.Popen(
                [GUNICORN, "config.wsgi:application", "--bind", f"127.0.0.1:{app_port}", *common],
                cwd=ROOT,
                env=env,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    GUNICORN,
                    "_baseline_wsgi:application",
                    "--bind",
                    f"127.0.0.1:{base_port}",
                    *common,
                ],
                cwd=bench_dir,
                env=env,
            )  # fmt: skip
        )
        wait_ready(f"http://127.0.0.1:{app_port}/healthz", deadline)
        wait_ready(f"http://127.0.0.1:{base_port}/", deadline)
        app_path = f"/beeline/events/{secret}"

        # Warm both (connections, imports), then measure them side by side.
        fire(
            [(Result("warm-up"), app_port, app_path, event_bodies(50)),
             (Result("warm-up"), base_port, "/", event_bodies(50))],
            50,
            deadline,
        )  # fmt: skip
        print(f"firing {args.events} events at {args.rate:.0f}/s at each target…", flush=True)
        baseline, app = Result("baseline"), Result("beetel webhook")
        fire(
            [(baseline, base_port, "/", event_bodies(args.events)),
             (app, app_port, app_path, event_bodies(args.events))],
            args.rate,
            deadline,
        )  # fmt: skip

        with psycopg.connect(dsn) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM pbx_pbxevent WHERE event_type = 'CallReceivedEvent'"
            ).fetchone()
        print()
        print(
            f"{'target':<16}{'sent':>7}{'accepted':>10}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        )
        for r in (baseline, app):
            print(
                f"{r.name:<16}{r.sent:>7}{r.accepted:>10}{r.rate:>10.1f}"
                f"{r.pct(50):>9.1f}{r.pct(99):>9.1f}"
            )
        ratio = app.rate / baseline.rate if baseline.rate else 0.0
        print(f"\nratio (webhook / baseline events/s): {ratio:.2f}   target >= 0.70")
        print(f"webhook p99: {app.pct(99):.1f} ms   target < 50 ms")
        print(f"statuses: baseline {baseline.statuses}, webhook {app.statuses}")
        print(f"events stored by the webhook: {stored[0] if stored else '?'}")
        ok = ratio >= 0.7 and app.pct(99) < 50
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if bench_dir is not None:
            shutil.rmtree(bench_dir, ignore_errors=True)
        redis.Redis.from_url(args.redis).flushdb()  # the queued processing tasks
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
