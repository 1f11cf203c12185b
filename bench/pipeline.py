"""Call pipeline benchmark: finished calls into the amoCRM emulator over real HTTP.

Two parts, each against the sandbox amoCRM served by gunicorn on loopback (its real limit of
7 requests/second per account applies; our shared limiter paces at AMOCRM_RATE_LIMIT_PER_SECOND)
with real Celery workers on Redis:

1. Throughput: 1,000 finished calls for ONE account, 300 distinct numbers of which half are
   already contacts in amoCRM. Prints the wall time until the last call is logged, amoCRM
   requests per call, 429s received, and the theoretical minimum time for the limit and the
   batch size (the fewest requests that can do the work, at 7/s). Target: <= 1.5x, zero 429s.
2. Latency: calls played by the Beeline emulator through our webhook at 5 calls/second spread
   over 50 organizations; p50/p95 from the Released event to the call in amoCRM (includes the
   settle delay PBX_CALL_SETTLE_SECONDS). Target: p95 < 3 s.

    .venv/bin/python bench/pipeline.py [--calls 1000] [--numbers 300] [--latency-calls 100]

A throwaway database (migrated) and Redis db are used and cleaned up; everything stops by
itself (bounded counts, --deadline seconds at most); nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from harness import PG, free_port, percentile, wait_ready

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
AMO_LIMIT = 7  # amoCRM's documented requests/second (docs/amocrm-api.md §8), the emulator's too
BATCH = 50


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


def throughput(args: argparse.Namespace, deadline: float) -> bool:
    from django.utils import timezone

    from core.tenancy import organization_scope
    from pbx.models import PbxCall
    from pbx.signals import call_finished
    from sandbox.amocrm.models import ApiRequest, Call
    from sandbox.amocrm.services import contact_create

    org, account, _pbx, abonent, manager = org_make(0, with_pbx=False)
    numbers = [f"+7903{n:07d}" for n in random.sample(range(10**7), args.numbers)]
    known = numbers[: args.numbers // 2]
    for phone in known:
        contact_create(
            account=account, name="Клиент", responsible=manager, phones=[(phone, "WORK")]
        )
    rng = random.Random(7)
    now = timezone.now()
    calls, missed_in = [], 0
    for index in range(args.calls):
        phone = numbers[index % len(numbers)] if index < len(numbers) else rng.choice(numbers)
        kind = rng.random()
        inbound = kind < 0.85
        answered = not (0.65 <= kind < 0.85) and kind < 0.95
        missed_in += inbound and not answered
        started = now - timedelta(minutes=5, seconds=index)
        calls.append(
            PbxCall(
                organization=org,
                ext_tracking_id=str(uuid.uuid4()),
                direction=PbxCall.Direction.IN if inbound else PbxCall.Direction.OUT,
                external_phone=phone,
                external_phone_national=phone[2:],
                abonent=abonent,
                started_at=started,
                answered_at=started + timedelta(seconds=5) if answered else None,
                ended_at=started + timedelta(seconds=60),
                talk_seconds=55 if answered else 0,
                outcome=PbxCall.Outcome.ANSWERED if answered else PbxCall.Outcome.MISSED,
                status=PbxCall.Status.FINISHED,
                finished_at=now,
                handed_off_at=now,
                recording_user_id=abonent.user_id if answered else "",
            )
        )
    with organization_scope(org):
        PbxCall.objects.bulk_create(calls)
        ids = list(PbxCall.objects.order_by("pk").values_list("pk", flat=True))
    baseline_requests = ApiRequest.objects.filter(account=account).count()
    print(
        f"\n[1] throughput: {len(ids)} finished calls, {args.numbers} numbers "
        f"({len(known)} already contacts), {missed_in} missed inbound → tasks",
        flush=True,
    )
    started = time.monotonic()
    for call_id in ids:  # what pbx does once per finished call
        call_finished.send(sender=PbxCall, organization_id=org.pk, call_id=call_id)
    handed_off = time.monotonic() - started
    logged = 0
    while time.monotonic() < deadline:
        logged = Call.objects.filter(account=account).count()
        if logged >= len(ids):
            break
        time.sleep(0.25)
    wall = time.monotonic() - started
    requests_made = ApiRequest.objects.filter(account=account).count() - baseline_requests
    too_many = ApiRequest.objects.filter(account=account, status=429).count()
    stamps = list(
        ApiRequest.objects.filter(account=account)
        .order_by("id")
        .values_list("created_at", flat=True)[baseline_requests:]
    )
    busy = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0
    unknown = args.numbers - len(known)
    minimum_requests = (
        args.numbers  # one search per distinct number (then the index answers)
        + math.ceil(unknown / BATCH)  # contacts created in batches
        + math.ceil(len(ids) / BATCH)  # calls logged in batches
        + math.ceil(missed_in / BATCH)  # missed-call tasks in batches
    )
    minimum = minimum_requests / AMO_LIMIT
    ratio = wall / minimum
    print(f"    calls logged:             {logged}/{len(ids)}")
    print(f"    wall time:                {wall:.1f} s")
    print(
        f"    amoCRM requests:          {requests_made} ({requests_made / len(ids):.3f} per call)"
    )
    print(f"    429 received:             {too_many}")
    print(
        f"    (hand-off of all calls took {handed_off:.1f} s; first to last amoCRM request "
        f"{busy:.1f} s = {len(stamps) / busy if busy else 0:.2f} requests/s)"
    )
    print(
        f"    theoretical minimum:      {minimum:.1f} s ({minimum_requests} requests at "
        f"{AMO_LIMIT}/s, batches of {BATCH})"
    )
    print(f"    ratio:                    {ratio:.2f}x   target <= 1.5x, zero 429s")
    return logged >= len(ids) and ratio <= 1.5 and too_many == 0


def latency(args: argparse.Namespace, deadline: float) -> bool:
    from django.conf import settings

    from sandbox.amocrm.models import Call
    from sandbox.beeline.services import call_simulate

    print(f"\n[2] latency: building {args.orgs} organizations…", flush=True)
    orgs = [org_make(i + 1, with_pbx=True) for i in range(args.orgs)]
    rng = random.Random(11)
    released: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def play(index: int) -> None:
        _org, _account, pbx, _abonent, _manager = orgs[index % len(orgs)]
        scenario = rng.choice(["inbound_answered", "inbound_missed", "outbound_answered"])
        try:
            sim = call_simulate(
                pbx=pbx,
                scenario=scenario,
                abonent_phone="9161110001",
                external_phone=f"+7905{rng.randrange(10**7):07d}",
            )
        except Exception as exc:  # noqa: BLE001 (reported)
            errors.append(repr(exc))
            return
        # call_simulate returns right after POSTing the last (Released) event.
        with lock:
            released[sim.ext_tracking_id] = time.time()

    print(
        f"    playing {args.latency_calls} calls at {args.rate}/s over {args.orgs} organizations "
        f"(settle delay {settings.PBX_CALL_SETTLE_SECONDS} s)…",
        flush=True,
    )
    threads = []
    start = time.monotonic()
    for index in range(args.latency_calls):
        delay = start + index / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=play, args=(index,), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(30)
    logged: dict[str, float] = {}
    while time.monotonic() < deadline and len(logged) < len(released):
        for uniq, at in Call.objects.filter(uniq__in=list(released)).values_list(
            "uniq", "received_at"
        ):
            logged[uniq] = at.timestamp()
        time.sleep(0.5)
    delays = [logged[u] - released[u] for u in logged]
    p50, p95 = percentile(delays, 50), percentile(delays, 95)
    print(f"    calls logged:             {len(logged)}/{len(released)} (errors: {len(errors)})")
    print(f"    Released → call in amoCRM p50 {p50:.2f} s, p95 {p95:.2f} s   target p95 < 3 s")
    if errors:
        print(f"    first error: {errors[0]}")
    return len(logged) == len(released) == args.latency_calls and p95 < 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=300)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="calls/second in part 2")
    parser.add_argument("--settle", type=int, default=2, help="PBX_CALL_SETTLE_SECONDS")
    parser.add_argument("--workers", type=int, default=8, help="Celery worker processes")
    parser.add_argument("--deadline", type=float, default=600.0, help="hard stop, seconds")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8")
    parser.add_argument("--skip", choices=["throughput", "latency"], default=None)
    args = parser.parse_args()
    # A plain `kill` (or timeout) must still run the cleanup below, or workers are orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.calls = max(1, min(args.calls, 5000))
    args.numbers = max(2, min(args.numbers, args.calls))
    args.latency_calls = max(1, min(args.latency_calls, 1000))
    deadline = time.monotonic() + args.deadline

    db = f"beetel_bench_pipeline_{os.getpid()}"
    dsn = f"{PG}/{db}"
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": dsn,
        "REDIS_URL": args.redis,
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": public,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "PBX_CALL_SETTLE_SECONDS": str(args.settle),
        "SANDBOX_BEELINE_RECORD_DELAY": "1",
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
        processes.append(
            subprocess.Popen(
                [
                    GUNICORN,
                    "config.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "6",
                    "--log-level",
                    "warning",
                    "--timeout",
                    "30",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )  # fmt: skip
        )
        processes.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config.celery_app",
                    "worker",
                    "-Q",
                    "events,crm,default",
                    "-c",
                    str(args.workers),
                    "-l",
                    "WARNING",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
            )  # fmt: skip
        )
        wait_ready(f"{public}/healthz", deadline)
        os.environ.update(env)
        import django

        django.setup()
        ok = True
        if args.skip != "throughput":
            ok &= throughput(args, deadline)
        if args.skip != "latency":
            ok &= latency(args, deadline)
        print("\nRESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        from django.db import connections

        connections.close_all()
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
