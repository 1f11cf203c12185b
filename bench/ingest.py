"""Webhook ingestion benchmark: our Beeline event webhook vs a bare-insert baseline.

Both run under gunicorn with the web process's settings (``config/gunicorn_conf.py``: worker class,
threads) and the same worker count, on loopback, against one PostgreSQL. The baseline is the
least any server can do per event: a bare WSGI app inserting the raw body into a table.

1. Maximum sustained throughput: a closed loop of N keep-alive connections posting distinct
   valid XSI events as fast as they are answered, in alternating rounds (baseline, webhook,
   baseline, …); the median events/s of each, their ratio, and the CPU milliseconds per event
   the web processes spent (from /proc). Target: ratio >= 0.7.
2. Latency at a fixed 200 events/s (open loop, alternating one-second blocks), while a real
   ``worker-events`` Celery process folds the webhook's events: p50/p99 of each target, and
   how long stored events waited to be processed. Target: webhook p99 < 50 ms.

    .venv/bin/python bench/ingest.py [--workers 2] [--connections 8] [--rounds 5]

A throwaway database (migrated) and Redis db are used and cleaned up; everything stops by itself
(bounded rounds, --deadline seconds at most); nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from harness import (
    PG,
    cpu_by_pid,
    cpu_seconds,
    free_port,
    machine_load,
    percentile,
    postgres_backends,
    process_tree,
    rss_mb,
    wait_ready,
)
from loadgen import Tally, closed_loop, open_loop, request_bytes

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
FIXTURE = ROOT / "pbx" / "tests" / "fixtures" / "inbound_answered" / "01_received.xml"
CONTENT_TYPE = "application/xml; charset=UTF-8"

# The bare baseline: one insert of the raw body per request, nothing else.
BASELINE_APP = """
import os
import threading
import psycopg

_local = threading.local()


def application(environ, start_response):
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["BENCH_BASELINE_DSN"], autocommit=True)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    conn.execute("INSERT INTO raw_event (body) VALUES (%s)", [body.decode("utf-8")])
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


def event_requests(port: int, path: str, *, events_per_call: int = 4) -> Iterator[bytes]:
    """Endless distinct, valid XSI events (a new eventID each, a new call every few)."""
    template = FIXTURE.read_text(encoding="utf-8")
    event_id = template.split("<xsi:eventID>")[1].split("</xsi:eventID>")[0]
    tracking = template.split("<xsi:extTrackingId>")[1].split("</xsi:extTrackingId>")[0]
    head, tail = template.split(event_id, 1)
    tail_a, tail_b = tail.split(tracking, 1)
    run = uuid.uuid4().hex[:12]
    for n in itertools.count():
        body = f"{head}{run}-{n}{tail_a}{run}-call-{n // events_per_call}{tail_b}"
        yield request_bytes("127.0.0.1", port, path, body.encode(), CONTENT_TYPE)


def gunicorn(
    app: str, port: int, workers: int, cwd: Path, env: dict[str, str], log: Path
) -> subprocess.Popen:
    # Same config file (worker class, threads, timeouts) for both; only the app differs. The
    # log (Django's access line per request) goes to a file, as it would to a log collector.
    with log.open("ab") as out:
        return subprocess.Popen(
            [GUNICORN, "-c", "python:config.gunicorn_conf", app,
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
            cwd=cwd, env=env, start_new_session=True, stdout=out, stderr=out,
        )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of each")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="closed-loop rounds per target")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one round")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--deadline", type=float, default=300.0, help="hard stop, seconds")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    args = parser.parse_args()
    # A plain `kill` (or timeout) must still run the cleanup below, or workers are orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.rounds = max(1, min(args.rounds, 10))
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
        "LOG_LEVEL": "INFO",  # as in production: the access line of every request is written
        "BENCH_BASELINE_DSN": dsn,
        "PYTHONPATH": str(ROOT),
    }
    processes: list[subprocess.Popen[bytes]] = []
    bench_dir: Path | None = None
    redis.Redis.from_url(args.redis).flushdb()
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
        # Django's access log goes to the process's stdout: discarded, but still written.
        web_log, base_log = bench_dir / "web.log", bench_dir / "baseline.log"
        web = gunicorn("config.wsgi:application", app_port, args.workers, ROOT, env, web_log)
        base = gunicorn(
            "_baseline_wsgi:application", base_port, args.workers, bench_dir, env, base_log
        )
        processes += [web, base]
        wait_ready(f"http://127.0.0.1:{app_port}/healthz", deadline)
        wait_ready(f"http://127.0.0.1:{base_port}/", deadline)
        app_path = f"/beeline/events/{secret}"
        targets = {
            # Posted to the webhook's path, so gunicorn's access log treats both alike.
            "baseline": (base, base_port, event_requests(base_port, "/beeline/events/baseline")),
            "webhook": (web, app_port, event_requests(app_port, app_path)),
        }

        print(f"warming up; then {args.rounds} alternating closed-loop rounds of "
              f"{args.seconds:.0f} s, {args.connections} keep-alive connections, "
              f"{args.workers} gunicorn workers each ({machine_load()})", flush=True)  # fmt: skip
        for _name, (_proc, port, requests) in targets.items():
            closed_loop(port, requests, connections=args.connections, seconds=1.5)
        rates: dict[str, list[float]] = {name: [] for name in targets}
        cpu_ms: dict[str, list[float]] = {name: [] for name in targets}
        pg_ms: dict[str, list[float]] = {name: [] for name in targets}
        statuses: dict[str, dict[int, int]] = {name: {} for name in targets}
        for round_no in range(args.rounds):
            for name, (proc, port, requests) in targets.items():
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline passed")
                pids = process_tree(proc.pid)
                cpu_before = cpu_seconds(pids)
                pg_before = cpu_by_pid(postgres_backends(db))
                tally = closed_loop(port, requests, connections=args.connections,
                                    seconds=args.seconds)  # fmt: skip
                cpu = cpu_seconds(pids) - cpu_before
                pg_after = cpu_by_pid(postgres_backends(db))
                pg = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
                rates[name].append(tally.rate)
                cpu_ms[name].append(cpu * 1000 / tally.ok if tally.ok else float("nan"))
                pg_ms[name].append(pg * 1000 / tally.ok if tally.ok else float("nan"))
                for status, count in tally.statuses.items():
                    statuses[name][status] = statuses[name].get(status, 0) + count
                print(f"  round {round_no + 1} {name:<9} {tally.rate:8.0f} events/s  "
                      f"CPU ms/event: web {cpu_ms[name][-1]:.2f}, PostgreSQL "
                      f"{pg_ms[name][-1]:.2f}  p99 "
                      f"{percentile(tally.latencies_ms, 99):.1f} ms", flush=True)  # fmt: skip

        # Part 2: a real worker-events folds the webhook's events while we fire at 200/s.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE pbx_pbxevent")  # part 1's synthetic backlog: not processed
        redis.Redis.from_url(args.redis).flushdb()
        worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", "events",
             "-c", "2", "-l", "WARNING", "--without-heartbeat", "--without-gossip",
             "--without-mingle"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=(bench_dir / "worker.log").open("ab"),
        )  # fmt: skip
        processes.append(worker)
        time.sleep(4)  # the worker's boot
        print(f"\nfiring {args.rate:.0f} events/s at each (alternating 1 s blocks) for "
              f"{args.rate_seconds:.0f} s, worker-events running…", flush=True)  # fmt: skip
        fixed: dict[str, Tally] = {name: Tally() for name in targets}
        blocks = int(args.rate_seconds)
        for _block in range(blocks):
            for name, (_proc, port, requests) in targets.items():
                tally = open_loop(port, requests, rate=args.rate, seconds=1.0)
                fixed[name].ok += tally.ok
                fixed[name].sent += tally.sent
                fixed[name].latencies_ms += tally.latencies_ms
        settle_until = time.monotonic() + 30
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < settle_until:
                left = conn.execute(
                    "SELECT count(*) FROM pbx_pbxevent WHERE processed_at IS NULL"
                ).fetchone()
                if left and left[0] == 0:
                    break
                time.sleep(0.5)
            lag = conn.execute(
                "SELECT percentile_cont(array[0.5, 0.95]) WITHIN GROUP (ORDER BY "
                "extract(epoch FROM processed_at - received_at)), count(*), "
                "count(processed_at) FROM pbx_pbxevent"
            ).fetchone()
        web_rss = rss_mb(process_tree(web.pid))
        worker_rss = rss_mb(process_tree(worker.pid))

        base_rate, app_rate = (statistics.median(rates[n]) for n in ("baseline", "webhook"))
        ratio = app_rate / base_rate if base_rate else 0.0
        app_p99 = percentile(fixed["webhook"].latencies_ms, 99)
        print()
        print(f"{'target':<10}{'events/s (median)':>19}{'web CPU ms/ev':>15}{'PG CPU ms/ev':>14}"
              f"{'p50 @200/s':>12}{'p99 @200/s':>12}")  # fmt: skip
        for name in targets:
            lat = fixed[name].latencies_ms
            print(f"{name:<10}{statistics.median(rates[name]):>19.0f}"
                  f"{statistics.median(cpu_ms[name]):>15.2f}"
                  f"{statistics.median(pg_ms[name]):>14.2f}"
                  f"{percentile(lat, 50):>10.1f}ms{percentile(lat, 99):>10.1f}ms")  # fmt: skip
        print(f"\nthroughput ratio (webhook / baseline): {ratio:.2f}   target >= 0.70")
        print(f"webhook p99 at {args.rate:.0f}/s: {app_p99:.1f} ms   target < 50 ms")
        print(f"statuses: baseline {statuses['baseline']}, webhook {statuses['webhook']}")
        if lag:
            quantiles, stored, processed = lag
            p50, p95 = quantiles or (float("nan"), float("nan"))
            print(f"stored → processed by worker-events: p50 {p50 * 1000:.0f} ms, "
                  f"p95 {p95 * 1000:.0f} ms; processed {processed}/{stored}")  # fmt: skip
        print(f"resident memory: web (master + {args.workers} workers) {web_rss:.0f} MB, "
              f"worker-events (2 processes + parent) {worker_rss:.0f} MB")  # fmt: skip
        print(f"machine: {machine_load()}")
        errors = [line for line in web_log.read_text().splitlines() if '"level": "error"' in line]
        if errors:
            print(f"web errors logged: {len(errors)}; first: {errors[0][:300]}")
        ok = ratio >= 0.7 and app_p99 < 50
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
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
        if bench_dir is not None:
            shutil.rmtree(bench_dir, ignore_errors=True)
        redis.Redis.from_url(args.redis).flushdb()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
