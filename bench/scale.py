"""10,000 organizations: one cycle of each periodic (beat) job.

Seeds --orgs connected, subscribed organizations with bulk inserts (no API): amoCRM tokens
expiring evenly over the next 24 h, Beeline subscriptions to renew evenly over the next 24 h,
a few organizations with deliveries due, raw events (half of them past retention) and audit
entries. Then runs each beat job once, in-process, exactly as beat would start it, and prints
wall time, SQL queries, peak Python memory (tracemalloc) and the tasks it queued. Each job's
work should follow what is due, not the number of organizations: the same jobs are run again
with 10× fewer organizations to compare. Finally, the arithmetic of a day at that scale
against Beeline's and amoCRM's limits.

    .venv/bin/python bench/scale.py [--orgs 10000]

A throwaway database (migrated) and Redis db are used and dropped; nothing listens anywhere;
no task is executed (only queued, then discarded).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import psycopg
import redis
from cryptography.fernet import Fernet
from harness import PG, machine_load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's apps, whatever the virtualenv points at
PYTHON = sys.executable

LABELS = {  # beat task → what it does (every entry of CELERY_BEAT_SCHEDULE is run)
    "pbx.tasks.subscription_renew_due": "subscription renewals",
    "crm.tasks.amo_tokens_refresh_due": "amoCRM token refresh",
    "pbx.tasks.statistics_reconcile_all": "statistics reconciliation",
    "integration.tasks.pipeline_drain_due": "due deliveries dispatch",
    "integration.tasks.pipeline_resume_paused": "paused deliveries resume",
    "pbx.tasks.pbx_calls_finalize_due": "calls finalize (safety net)",
    "pbx.tasks.pbx_events_sweep": "unprocessed events sweep",
    "pbx.tasks.pbx_events_prune": "raw events pruning",
    "core.tasks.audit_prune": "audit pruning",
    "pbx.tasks.pbx_sync_all": "abonents/numbers daily sync",
}


def seed(orgs: int, events_per_org: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from core.access_keys import access_key_generate, access_key_hash
    from core.models import AuditEntry, Organization
    from core.tenancy import scopes_disabled
    from crm.models import AmoCredentials
    from integration.models import CallDelivery
    from pbx.credentials import webhook_secret_hash
    from pbx.models import BeelineCredentials, PbxCall, PbxEvent, Subscription

    now = timezone.now()
    day = 86400
    with scopes_disabled():
        first = Organization.objects.count()
        batch = []
        for n in range(first, first + orgs):
            key = access_key_generate()
            batch.append(
                Organization(
                    amo_account_id=10_000_000 + n, amo_subdomain=f"org{n}",
                    amo_host=f"org{n}.amocrm.ru", name=f"Org {n}", installed_at=now,
                    access_key_hash=access_key_hash(key), access_key_encrypted=key,
                )
            )  # fmt: skip
        created = Organization.objects.bulk_create(batch, batch_size=2000)
        amo, beeline, subs, calls, events, audit = [], [], [], [], [], []
        for i, org in enumerate(created):
            spread = timedelta(seconds=day * i / len(created))  # evenly over the next day
            amo.append(
                AmoCredentials(
                    organization=org, access_token="a" * 40, refresh_token="r" * 40,
                    # steady state: refreshed 6 h before expiry, so due ones trickle in
                    expires_at=now + timedelta(hours=6, minutes=-20) + spread * (1100 / 1440),
                    refreshed_at=now,
                )
            )  # fmt: skip
            secret = uuid.uuid4().hex
            beeline.append(
                BeelineCredentials(
                    organization=org, api_token=str(uuid.uuid4()), webhook_secret=secret,
                    webhook_secret_hash=webhook_secret_hash(secret), verified_at=now,
                )
            )  # fmt: skip
            subs.append(
                Subscription(
                    organization=org, subscription_id=uuid.uuid4().hex, requested_seconds=day,
                    granted_seconds=day, expires_at=now + spread + timedelta(hours=3),
                    renew_at=now + spread - timedelta(seconds=30),
                    created_at=now - timedelta(hours=20),
                )
            )  # fmt: skip
            if i % 200 == 0:  # a few organizations with a delivery due
                calls.append(
                    PbxCall(
                        organization=org, ext_tracking_id=uuid.uuid4().hex, direction="in",
                        status="finished", outcome="missed", started_at=now - timedelta(minutes=5),
                        finished_at=now - timedelta(minutes=4),
                        handed_off_at=now - timedelta(minutes=4),
                    )
                )  # fmt: skip
            for e in range(events_per_org):
                age = timedelta(days=45 if e % 2 else 1)  # half past the 30-day retention
                events.append(
                    PbxEvent(
                        organization=org, event_id=f"{org.pk}-{e}", event_type="CallReleasedEvent",
                        ext_tracking_id=f"{org.pk}-{e // 4}", body="<Event/>",
                        received_at=now - age, processed_at=now - age,
                    )
                )  # fmt: skip
            audit.append(AuditEntry(organization=org, kind="bench", message="old"))
        AmoCredentials.objects.bulk_create(amo, batch_size=2000)
        BeelineCredentials.objects.bulk_create(beeline, batch_size=2000)
        Subscription.objects.bulk_create(subs, batch_size=2000)
        made = PbxCall.objects.bulk_create(calls)
        CallDelivery.objects.bulk_create(
            [CallDelivery(organization_id=c.organization_id, pbx_call=c, next_attempt_at=now)
             for c in made]
        )  # fmt: skip
        PbxEvent.objects.bulk_create(events, batch_size=5000)
        AuditEntry.objects.bulk_create(audit, batch_size=5000)
        AuditEntry.objects.update(created_at=now - timedelta(days=200))


def run_jobs(broker: redis.Redis) -> list[tuple[str, float, int, float, int]]:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils.module_loading import import_string

    results = []
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        dotted = str(entry["task"])
        label = LABELS.get(dotted, dotted)
        task = import_string(dotted)
        before = sum(broker.llen(q) for q in ("events", "crm", "default"))
        tracemalloc.start()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            task.run()
            wall = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        queued = sum(broker.llen(q) for q in ("events", "crm", "default")) - before
        results.append((label, wall * 1000, len(queries), peak / 1024 / 1024, queued))
    broker.flushdb()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20, help="raw events per organization")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.orgs = max(100, min(args.orgs, 50_000))

    db = f"beetel_bench_scale_{os.getpid()}"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": f"{PG}/{db}",
        "REDIS_URL": args.redis,
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    broker = redis.Redis.from_url(args.redis)
    broker.flushdb()
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        print(f"database {db}: migrating…", flush=True)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env={**os.environ, **env}, check=True)  # fmt: skip
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        tables: dict[int, list] = {}
        seeded = 0
        for size in (args.orgs // 10, args.orgs):
            started = time.monotonic()
            seed(size - seeded, args.events)
            seeded = size
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"\n{size:,} organizations seeded in {time.monotonic() - started:.0f} s "
                  f"({machine_load()})", flush=True)  # fmt: skip
            tables[size] = run_jobs(broker)
            # Pruning deleted the old rows: seed them again for the next size.
        small, large = args.orgs // 10, args.orgs
        print(
            f"\n{'beat job (one cycle)':<30}{'wall ms':>9}{'queries':>9}{'peak MB':>9}"
            f"{'queued':>8}   | at {small:,} orgs: {'wall ms':>8}{'queries':>9}{'queued':>8}"
        )
        for big, little in zip(tables[large], tables[small], strict=True):
            label, wall, queries, peak, queued = big
            _, wall_s, queries_s, _peak_s, queued_s = little
            print(f"{label:<30}{wall:>9.0f}{queries:>9}{peak:>9.1f}{queued:>8}   |"
                  f"{'':>10}{wall_s:>8.0f}{queries_s:>9}{queued_s:>8}")  # fmt: skip

        n = args.orgs
        granted_h = settings.PBX_SUBSCRIPTION_SECONDS / 3600
        renewals = n * 24 / granted_h
        recon_period_min = 10
        recon_per_day = n * 24 * 60 / recon_period_min
        rate = settings.AMOCRM_RATE_LIMIT_PER_SECOND
        from core.task_queue import task_fanout_countdown

        chunk = settings.PBX_FANOUT_CHUNK
        fanout_span = task_fanout_countdown(
            index=n - 1, total=n, spacing=settings.PBX_FANOUT_SPACING_SECONDS, chunk=chunk
        )
        fanout_step = fanout_span / max(1, (n - 1) // chunk)
        cap = settings.CELERY_COUNTDOWN_MAX_SECONDS
        print(f"""
A day at {n:,} organizations:
  Beeline (its limits are not published, docs/beeline-api.md; per-token load is what a single
  integrator's polling already does):
    subscription renewals: {n:,} × 24 h / {granted_h:.0f} h granted = {renewals:,.0f} PUT + as many
      DELETE of the replaced one per day = {2 * renewals / 86400:.2f} requests/s in all,
      {2 * 24 / granted_h:.0f} per organization per day
    (if Beeline grants only 1 h: {n * 48:,} per day = {n * 48 / 86400:.1f} requests/s)
    statistics reconciliation every {recon_period_min} min: {n:,} × {24 * 60 // recon_period_min}
      = {recon_per_day:,.0f} GET /v2/statistics per day = {recon_per_day / 86400:.1f} requests/s
      in all, one per organization every {recon_period_min} min (integrators poll every 5)
    in {n // settings.PBX_RECONCILE_CHUNK:,} tasks of {settings.PBX_RECONCILE_CHUNK} organizations
      spread evenly over the {recon_period_min} min; renewals and the daily sync are released in
      chunks of {chunk} every {fanout_step:.1f} s: the sync's {n:,} tasks within
      {fanout_span / 60:.0f} min (countdowns stay under the {cap} s cap)
  amoCRM (7 requests/s per account; every organization is its own account):
    token refresh: access tokens live 24 h, so {n:,} refreshes per day = {n / 86400:.2f}/s in
      all and 1 request per account per day, paced with its other traffic at {rate}/s
      ({rate / 7:.0%} of the limit); refresh tokens (3 months) are renewed daily with them
    reconciliation sends nothing to amoCRM beyond the calls it recovers (the same path as
      any call: batched, paced per account)
""")
        print(f"machine: {machine_load()}")
        return 0
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110 (django may not be set up yet)
            pass
        broker.flushdb()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
