"""Large histories: the cabinet of an organization with 1,000,000 calls.

Seeds (server-side, ``generate_series``) one organization with --calls finished calls spread
over two years, each with its delivery, plus an outsider with a share of that; then renders,
through Django's full stack with a logged-in session, the Dashboard (counters, chart and the
journal's first page), the journal's first page alone (the HTMX redraw) and filtered pages.
Prints the median of several renders and the SQL queries of each. Target: < 300 ms each.

    .venv/bin/python bench/history.py [--calls 1000000]

A throwaway database (migrated) is used and dropped; nothing listens anywhere.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from cryptography.fernet import Fernet
from harness import PG, machine_load

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's apps, whatever the virtualenv points at
PYTHON = sys.executable

SEED_CALLS = """
INSERT INTO pbx_pbxcall (organization_id, ext_tracking_id, direction, external_phone,
    external_phone_national, line_phone, number_id, abonent_id, started_at, answered_at,
    ended_at, talk_seconds, outcome, status, finished_at, handed_off_at, recovered,
    recording_user_id, created_at, updated_at)
SELECT %(org)s, %(prefix)s || g, CASE WHEN g %% 5 = 0 THEN 'out' ELSE 'in' END,
    '+7903' || lpad((g %% 9999991)::text, 7, '0'), '903' || lpad((g %% 9999991)::text, 7, '0'),
    '4951234567', %(number)s, %(abonent)s, t, CASE WHEN g %% 4 <> 0 THEN t + interval '5 s' END,
    t + interval '60 s', CASE WHEN g %% 4 <> 0 THEN 55 ELSE 0 END,
    CASE WHEN g %% 4 <> 0 THEN 'answered' ELSE 'missed' END, 'finished', t + interval '61 s',
    t + interval '63 s', false, %(user_id)s, t, t
FROM generate_series(1, %(calls)s) AS g,
     LATERAL (SELECT now() - (%(span)s::bigint * g / %(calls)s) * interval '1 second' AS t) AS s
"""

SEED_DELIVERIES = """
INSERT INTO integration_calldelivery (organization_id, pbx_call_id, status, contact_created,
    call_state, task_state, attempts, next_attempt_at, flags, skip_reason, last_error,
    responsible_user_id, created_at, updated_at, call_entity_type, unsorted_state, unsorted_uid,
    lead_state)
SELECT organization_id, id,
    CASE WHEN id %% 50 = 0 THEN 'failed' WHEN id %% 20 = 0 THEN 'skipped_by_setting'
         ELSE 'done' END,
    false, 'posted', '', 1, started_at, '[]'::jsonb, '', '', %(amo_user)s, started_at, started_at,
    'contacts', '', '', ''
FROM pbx_pbxcall WHERE organization_id = %(org)s
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.calls = max(1000, min(args.calls, 5_000_000))

    db = f"beetel_bench_history_{os.getpid()}"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "False",
        "DATABASE_URL": f"{PG}/{db}",
        "REDIS_URL": "redis://127.0.0.1:6379/6",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        print(f"database {db}: migrating…", flush=True)
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env={**os.environ, **env}, check=True)  # fmt: skip
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from core.tenancy import organization_scope
        from core.testing import organization_make
        from crm.models import AmoUser
        from pbx.models import Abonent, PbxNumber

        def seed(org, calls: int) -> None:  # noqa: ANN001
            with organization_scope(org):
                abonent = Abonent.objects.create(
                    organization=org, user_id=f"a{org.pk}@ip.beeline.ru", phone="9161110001"
                )
                number = PbxNumber.objects.create(
                    organization=org, number_id=f"n{org.pk}", phone="4951234567", name="Продажи"
                )
                AmoUser.objects.create(
                    organization=org,
                    amo_id=1000 + org.pk,
                    name="Менеджер",
                    fetched_at=timezone.now(),
                )
            params = {"org": org.pk, "prefix": f"{org.pk}-", "number": number.pk,
                      "abonent": abonent.pk, "user_id": abonent.user_id, "calls": calls,
                      "span": 2 * 365 * 86400, "amo_user": 1000 + org.pk}  # fmt: skip
            with connection.cursor() as cursor:
                cursor.execute(SEED_CALLS, params)
                cursor.execute(SEED_DELIVERIES, params)

        started = time.monotonic()
        org = organization_make(name="History")
        outsider = organization_make(name="Outsider")
        seed(org, args.calls)
        seed(outsider, args.calls // 10)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE pbx_pbxcall")
            cursor.execute("VACUUM ANALYZE integration_calldelivery")
        print(f"seeded {args.calls:,} calls (+ {args.calls // 10:,} of an outsider) with their "
              f"deliveries in {time.monotonic() - started:.0f} s ({machine_load()})",
              flush=True)  # fmt: skip

        client = Client()
        response = client.post("/cabinet/login", {"key": org.access_key})
        assert response.status_code == 302, response.status_code
        base = f"/cabinet/{org.pk}/"
        journal = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "journal"}
        today = time.strftime("%Y-%m-%d")
        month_ago = time.strftime("%Y-%m-%d", time.localtime(time.time() - 30 * 86400))
        pages = [
            ("Dashboard (counters, chart, journal page 1)", base, {}),
            ("journal, first page", base, journal),
            ("journal, missed inbound calls", f"{base}?direction=in&outcome=missed", journal),
            ("journal, last 30 days, answered, page 3",
             f"{base}?date_from={month_ago}&date_to={today}&outcome=answered&page=3", journal),
            ("journal, by client number", f"{base}?number=9030001234", journal),
        ]  # fmt: skip
        print(f"\n{'page':<46}{'median ms':>10}{'max ms':>9}{'queries':>9}")
        ok = True
        for label, url, headers in pages:
            timings = []
            for _ in range(args.repeat + 1):
                with CaptureQueriesContext(connection) as queries:
                    begin = time.perf_counter()
                    response = client.get(url, **headers)
                    timings.append((time.perf_counter() - begin) * 1000)
                assert response.status_code == 200, (url, response.status_code)
                assert b"Outsider" not in response.content
            timings = timings[1:]  # the first render warms caches
            median = statistics.median(timings)
            ok &= median < 300
            print(f"{label:<46}{median:>10.0f}{max(timings):>9.0f}{len(queries):>9}")
        print("\ntarget: each < 300 ms")
        print(f"machine: {machine_load()}")
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001, S110 (django may not be set up yet)
            pass
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
