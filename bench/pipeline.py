"""Call pipeline benchmark: finished calls into the amoCRM emulator over real HTTP.

Two parts, each against the sandbox amoCRM served by gunicorn on loopback (its real limit of
7 requests/second per account applies; our shared limiter paces at AMOCRM_RATE_LIMIT_PER_SECOND)
with real Celery workers on Redis:

1. Throughput: 1,000 finished calls for ONE account, 300 distinct numbers of which half are
   already contacts in amoCRM. Prints the wall time until the last call is logged, amoCRM
   requests per call, 429s received, and the theoretical minimum time for the limit and the
   batch size (the fewest requests that can do the work, at 7/s). Target: <= 1.2x, zero 429s.
2. Latency, WHILE that backlog drains: calls delivered to our webhook over HTTP as Beeline
   would (ringing events, a few seconds of ringing, then the rest) at 5 calls/second spread
   over 50 other organizations; p50/p95 from the ringing event to the pop-up in amoCRM
   (target p95 < 1 s) and from the Released event to the call in amoCRM (includes the settle
   delay PBX_CALL_SETTLE_SECONDS; target p95 < 3 s).

The processes are the Procfile's: web (config/gunicorn_conf.py), worker-events (queue events),
worker (queues crm,default); their resident memory is printed at the end.

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

import psycopg
import redis
from harness import (
    PG,
    PYTHON,
    ROOT,
    free_port,
    machine_load,
    org_make,
    percentile,
    process_start,
    process_stop,
    process_tree,
    rss_mb,
    stack_commands,
    stack_env,
    wait_ready,
)

sys.path.insert(0, str(ROOT))  # this checkout's apps, whatever the virtualenv points at
AMO_LIMIT = 7  # amoCRM's documented requests/second (docs/amocrm-api.md §8), the emulator's too
BATCH = 50


def throughput(args: argparse.Namespace, deadline: float, seeded: threading.Event) -> bool:
    from django.utils import timezone

    from core.tenancy import organization_scope
    from integration.delivery.queue import drain_request
    from integration.models import CallDelivery
    from pbx.models import PbxCall
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
    seeded.set()
    started = time.monotonic()
    # The backlog: every call already handed off (what call_finished → delivery_enqueue
    # leaves behind, e.g. after an amoCRM outage), then one drain request.
    with organization_scope(org):
        CallDelivery.objects.bulk_create(
            [CallDelivery(organization=org, pbx_call_id=pk, next_attempt_at=timezone.now())
             for pk in ids]
        )  # fmt: skip
    drain_request(organization_id=org.pk)
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
    # Where the time above the pace went: gaps between consecutive requests longer than two
    # slots of the pace (the worker was doing something else than waiting for its next slot).
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    idle = sum(g for g in gaps if g > 0.32)
    kinds: dict[str, int] = {}
    sequence = []
    for method, path in (
        ApiRequest.objects.filter(account=account)
        .order_by("id")
        .values_list("method", "path")[baseline_requests:]
    ):
        kind = f"{method} " + path.split("?")[0].removeprefix("/sandbox/amocrm/api/v4/")
        kinds[kind] = kinds.get(kind, 0) + 1
        sequence.append(kind)
    largest = sorted(range(len(gaps)), key=lambda i: -gaps[i])[:6]
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
    print(f"    idle gaps (> 2 slots):    {idle:.1f} s in {sum(g > 0.32 for g in gaps)} gaps")
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"    requests by kind:         {by_kind}")
    print(
        "    largest gaps:             "
        + "; ".join(
            f"{gaps[i]:.2f} s at {(stamps[i] - stamps[0]).total_seconds():.0f} s "
            f"({sequence[i]} → {sequence[i + 1]})"
            for i in sorted(largest)
        )
    )
    print(
        f"    theoretical minimum:      {minimum:.1f} s ({minimum_requests} requests at "
        f"{AMO_LIMIT}/s, batches of {BATCH})"
    )
    print(f"    ratio:                    {ratio:.2f}x   target <= 1.2x, zero 429s")
    return logged >= len(ids) and ratio <= 1.2 and too_many == 0


RINGING_TYPES = {"CallReceivedEvent", "CallOriginatingEvent", "CallOriginatedEvent"}


def latency_orgs(args: argparse.Namespace) -> list[tuple]:
    print(f"\n[2] latency: building {args.orgs} organizations…", flush=True)
    return [org_make(i + 1, with_pbx=True) for i in range(args.orgs)]


def latency(args: argparse.Namespace, deadline: float, orgs: list[tuple]) -> bool:
    """Calls played over HTTP as Beeline would: the ringing events, ``--ring`` seconds of
    ringing, then the answer/release events. Measures ringing → pop-up in amoCRM and Released
    → call in amoCRM."""
    import requests
    from django.conf import settings

    from pbx.xsi import xsi_event_head
    from sandbox.amocrm.models import Call, Event
    from sandbox.beeline.selectors import subscriptions_active
    from sandbox.beeline.services import call_simulate

    rng = random.Random(11)
    rang: dict[str, tuple[int, float]] = {}  # external phone → (account id, ringing posted)
    released: dict[str, float] = {}  # extTrackingId → Released posted
    lock = threading.Lock()
    errors: list[str] = []

    # Each call is written to the emulator (records, statistics) and rendered first, in this
    # thread; the players below only deliver its events over HTTP, as Beeline would.
    planned = []
    for index in range(args.latency_calls):
        _org, account, pbx, _abonent, _manager = orgs[index % len(orgs)]
        scenario = rng.choice(["inbound_answered", "inbound_missed", "outbound_answered"])
        phone = f"+7905{rng.randrange(10**7):07d}"
        sim = call_simulate(pbx=pbx, scenario=scenario, abonent_phone="9161110001",
                            external_phone=phone, drop=True)  # fmt: skip
        url = subscriptions_active(pbx=pbx).first().url
        ringing = [d for d in sim.documents if xsi_event_head(d).event_type in RINGING_TYPES]
        rest = [d for d in sim.documents if d not in ringing]
        planned.append((account.pk, scenario, phone, sim.ext_tracking_id, url, ringing, rest))

    def play(account_id: int, scenario: str, phone: str, ext_tracking_id: str, url: str,
             ringing: list[str], rest: list[str]) -> None:  # fmt: skip
        try:
            with requests.Session() as http:
                http.headers["Content-Type"] = "application/xml"
                for body in ringing:
                    http.post(url, data=body.encode(), timeout=10).raise_for_status()
                if scenario.startswith("inbound"):
                    with lock:
                        rang[phone] = (account_id, time.time())
                time.sleep(args.ring)
                for body in rest:
                    http.post(url, data=body.encode(), timeout=10).raise_for_status()
            with lock:
                released[ext_tracking_id] = time.time()
        except Exception as exc:  # noqa: BLE001 (reported)
            errors.append(repr(exc))

    print(
        f"    playing {args.latency_calls} calls at {args.rate}/s over {args.orgs} organizations "
        f"(ringing {args.ring} s; settle delay {settings.PBX_CALL_SETTLE_SECONDS} s) while the "
        f"backlog drains…",
        flush=True,
    )
    threads = []
    start = time.monotonic()
    for index, plan in enumerate(planned):
        delay = start + index / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=play, args=plan, daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    logged: dict[str, float] = {}
    popped: dict[str, float] = {}
    # Every call is logged in the end; a pop-up may never come (if the ringing events were
    # folded only after the answer, the phone had stopped ringing): wait 10 s more for those.
    quiet_until = deadline
    while time.monotonic() < min(deadline, quiet_until) and (
        len(logged) < len(released) or len(popped) < len(rang)
    ):
        if len(logged) == len(released) and quiet_until == deadline:
            quiet_until = time.monotonic() + 10
        for uniq, at in Call.objects.filter(uniq__in=list(released)).values_list(
            "uniq", "received_at"
        ):
            logged[uniq] = at.timestamp()
        for phone, at in Event.objects.filter(phone_number__in=list(rang)).values_list(
            "phone_number", "received_at"
        ):
            popped[phone] = min(popped.get(phone, at.timestamp()), at.timestamp())
        time.sleep(0.5)
    delays = [logged[u] - released[u] for u in logged]
    pops = [popped[p] - rang[p][1] for p in popped]
    # Where a pop-up's time goes: stored → folded (worker-events) → sent (ring_notify).
    from core.tenancy import scopes_disabled
    from integration.models import RingNotice
    from pbx.models import PbxEvent

    with scopes_disabled():
        folded = [
            (processed - received).total_seconds()
            for received, processed in PbxEvent.objects.filter(
                event_type="CallReceivedEvent", processed_at__isnull=False,
                organization_id__in=[o[0].pk for o in orgs],
            ).values_list("received_at", "processed_at")
        ]  # fmt: skip
        notices = {
            n.pbx_call_id: n.sent_at
            for n in RingNotice.objects.filter(sent_at__isnull=False).select_related("pbx_call")
        }
        notified = [
            (sent - started).total_seconds()
            for sent, started in (
                (sent, received)
                for call_id, sent in notices.items()
                for received in PbxEvent.objects.filter(
                    event_type="CallReceivedEvent",
                    ext_tracking_id__in=RingNotice.objects.filter(pbx_call_id=call_id).values(
                        "pbx_call__ext_tracking_id"
                    ),
                ).values_list("received_at", flat=True)[:1]
            )
        ]
    print(f"    (ringing event stored → folded p50 {percentile(folded, 50):.2f} s, p95 "
          f"{percentile(folded, 95):.2f} s; stored → pop-up sent p50 "
          f"{percentile(notified, 50):.2f} s, p95 {percentile(notified, 95):.2f} s)")  # fmt: skip
    p50, p95 = percentile(delays, 50), percentile(delays, 95)
    r50, r95 = percentile(pops, 50), percentile(pops, 95)
    print(f"    pop-ups shown:            {len(popped)}/{len(rang)} ringing inbound calls")
    print(f"    ringing → pop-up in amoCRM p50 {r50:.2f} s, p95 {r95:.2f} s   target p95 < 1 s")
    print(f"    calls logged:             {len(logged)}/{len(released)} (errors: {len(errors)})")
    print(f"    Released → call in amoCRM p50 {p50:.2f} s, p95 {p95:.2f} s   target p95 < 3 s")
    if errors:
        print(f"    first error: {errors[0]}")
    return (
        len(logged) == len(released) == args.latency_calls
        and len(popped) == len(rang)
        and p95 < 3.0
        and r95 < 1.0
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=300)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0, help="calls/second in part 2")
    parser.add_argument("--settle", type=int, default=2, help="PBX_CALL_SETTLE_SECONDS")
    parser.add_argument("--workers", type=int, default=4, help="`worker` processes")
    parser.add_argument("--events-workers", type=int, default=4, help="`worker-events` processes")
    parser.add_argument("--ring", type=float, default=3.0, help="seconds a call rings")
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
    env = stack_env(
        dsn=dsn,
        redis_url=args.redis,
        public=public,
        PBX_CALL_SETTLE_SECONDS=str(args.settle),
        SANDBOX_BEELINE_RECORD_DELAY="1",
    )
    processes: list[subprocess.Popen[bytes]] = []
    redis.Redis.from_url(args.redis).flushdb()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        print(f"database {db}: migrating…", flush=True)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        commands = stack_commands(
            port=port, workers=args.workers, events_workers=args.events_workers
        )
        for command in commands.values():
            processes.append(process_start(command, env))
        wait_ready(f"{public}/healthz", deadline)
        os.environ.update(env)
        import django

        django.setup()
        ok = True
        orgs = latency_orgs(args) if args.skip != "latency" else []
        seeded = threading.Event()
        backlog_ok: list[bool] = []
        backlog = threading.Thread(
            target=lambda: backlog_ok.append(throughput(args, deadline, seeded)), daemon=True
        )
        if args.skip != "throughput":
            backlog.start()
            seeded.wait(300)  # the backlog is seeded and handed off: play calls meanwhile
        if args.skip != "latency":
            ok &= latency(args, deadline, orgs)
        if args.skip != "throughput":
            backlog.join(max(1.0, deadline - time.monotonic()))
            ok &= bool(backlog_ok and backlog_ok[0])
        for name, process in zip(commands, processes, strict=True):
            print(f"    resident memory {name}: {rss_mb(process_tree(process.pid)):.0f} MB")
        print(f"    machine: {machine_load()}")
        print("\nRESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        from django.db import connections

        connections.close_all()
        for process in processes:
            process_stop(process)
        redis.Redis.from_url(args.redis).flushdb()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
