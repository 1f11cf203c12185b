"""Chaos run: the whole stack on loopback plays calls while its parts fail, then counts.

The processes are the Procfile's (gunicorn with config/gunicorn_conf.py, which also serves
the emulators; worker-events; worker; beat) against a private ``redis-server`` (no
persistence: killed means restarted EMPTY, as in production) and, where ``initdb`` is
available, a private PostgreSQL cluster (fsync and synchronous_commit on) in a temporary
folder; otherwise a throwaway database on the shared server, and the PostgreSQL restart is
skipped with a notice.

Calls are played as Beeline would: each is written to the Beeline emulator (records,
statistics: what reconciliation reads) and its XSI events are POSTed to the organization's
webhook, some twice, some in reverse order, a few never (reconciliation must recover those).
Every call has its own client number, so the amoCRM emulator's tables tell exactly what
became of it. Meanwhile the faults below are injected in turn, some overlapping; "10 minutes"
is scaled to ``--minute`` real seconds (the reconciliation's grace and period, the pipeline's
retry steps are shortened through their environment variables to match, see ``STACK_ENV``).

One row per fault: calls played during its window, their call logs / contacts / tasks in
amoCRM, lost (no call log), "no task" (a missed inbound call without its «Перезвонить»
task), duplicated (more than one call log, task or BeelineConnector contact for one call)
and the time from the fault's end until every call played before it was end was in amoCRM.
Exit status 1 on any loss or duplicate.

    .venv/bin/python bench/chaos.py [--calls 500] [--orgs 20] [--seed 1] [--short]

``--short`` is the variant run by the test suite (tests/test_chaos.py): 60 calls, 4
organizations, the same faults compressed into about 100 seconds.
"""

from __future__ import annotations

import argparse
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import redis
import requests
from harness import (
    PG,
    PYTHON,
    ROOT,
    free_port,
    org_make,
    process_start,
    process_stop,
    stack_commands,
    stack_env,
    wait_ready,
)

sys.path.insert(0, str(ROOT))  # this checkout's apps, whatever the virtualenv points at

T = TypeVar("T")

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ABONENT = "9161110001"  # the one abonent org_make gives every PBX
RINGING = ("CallReceivedEvent", "CallOriginatingEvent", "CallOriginatedEvent")
SCENARIOS = (("inbound_answered", 0.45), ("inbound_missed", 0.30), ("outbound_answered", 0.25))
# The simulator's own misbehaviour, all along: every event twice, events in reverse order,
# a call whose events never come (reconciliation from statistics must recover it).
DUPLICATE_SHARE, REORDER_SHARE, DROP_CALL_SHARE = 0.08, 0.08, 0.03


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())} UTC] {message}", flush=True)


# --- Private servers -----------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of our own (``initdb``/``pg_ctl``) in a temporary folder, owned by
    the ``postgres`` OS user when we run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="beetel-chaos-pg-"))
        self.data = self.folder / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    @staticmethod
    def available() -> str:
        """Empty when a private cluster can be made, else why not."""
        if not (PG_BIN / "initdb").exists():
            return f"{PG_BIN / 'initdb'} not found"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres OS user to run initdb as"
            if not shutil.which("runuser"):
                return "running as root and runuser is not available"
        return ""

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, stdout=subprocess.DEVNULL)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on "
            "-c synchronous_commit=on -c max_connections=300"
        )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` without persistence on a free port: a kill loses everything."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="beetel-chaos-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=open(self.folder / "log", "ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def remove(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Stack:
    """The Procfile's processes; any of them can be killed and started again. Like a process
    supervisor (``restart: always``), a process that exits by itself is started again, and the
    crash is recorded (it is a finding of its own)."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], logs: Path) -> None:
        self.commands, self.env, self.logs = commands, env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.down: set[str] = set()  # killed on purpose, until started again
        self.crashes: list[tuple[float, str, int]] = []  # (monotonic, name, exit status)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        threading.Thread(target=self._supervise, daemon=True).start()

    def start(self, name: str) -> None:
        out = open(self.logs / f"{name}.log", "ab")
        with self.lock:
            self.processes[name] = process_start(
                self.commands[name], self.env, stdout=out, stderr=subprocess.STDOUT
            )
            self.down.discard(name)

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group (the main process and its pool)."""
        with self.lock:
            self.down.add(name)
            process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def _supervise(self) -> None:
        while not self.stopping.wait(0.5):
            with self.lock:
                exited = [(n, p.returncode) for n, p in self.processes.items()
                          if n not in self.down and p.poll() is not None]  # fmt: skip
            for name, status in exited:
                self.crashes.append((time.monotonic(), name, status))
                log(f"CRASH: {name} exited by itself (status {status}); restarting it")
                time.sleep(1.0)
                if not self.stopping.is_set():
                    self.start(name)

    def stop_all(self) -> None:
        self.stopping.set()
        for process in self.processes.values():
            process_stop(process)


# --- What is played and what amoCRM got ------------------------------------------------------


@dataclass
class Played:
    index: int
    org: int
    account_id: int
    scenario: str
    phone: str  # +7 and ten digits: one number per call
    mode: str = "normal"  # normal | duplicate | reorder | dropped | late
    played_at: float = 0.0  # monotonic
    events_posted: int = 0
    events_dropped: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def digits(self) -> str:
        return self.phone[-10:]

    @property
    def missed_inbound(self) -> bool:
        return self.scenario == "inbound_missed"


@dataclass
class Fault:
    name: str
    start: float  # seconds from the start of play
    duration: float  # its window; for a kill, until the process is back
    begin: Callable[[], None]
    end: Callable[[], None] = lambda: None
    notice: str = ""  # non-empty: skipped, and why
    started_at: float | None = None  # monotonic, when injected
    ended_at: float | None = None

    def covers(self, moment: float) -> bool:
        return (
            self.started_at is not None
            and self.started_at <= moment
            and (self.ended_at is None or moment <= self.ended_at)
        )


def db_retry(fn: Callable[[], T], *, seconds: float = 90) -> T:
    """Run ``fn`` (our own ORM work), again after a lost database connection (PG restart)."""
    from django.db import DatabaseError, connection

    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except DatabaseError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Monitor(threading.Thread):
    """Polls the amoCRM emulator's call logs: when each call's first log appeared."""

    def __init__(self, account_ids: list[int]) -> None:
        super().__init__(daemon=True)
        self.account_ids = account_ids
        self.first_seen: dict[tuple[int, str], float] = {}
        self.last_id = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def poll(self) -> None:
        from sandbox.amocrm.models import Call

        with self.lock:
            self._poll(Call)

    def _poll(self, Call: Any) -> None:  # noqa: N803 (the model)
        rows = list(
            Call.objects.filter(account_id__in=self.account_ids, id__gt=self.last_id)
            .order_by("id")
            .values_list("id", "account_id", "phone")
        )
        now = time.monotonic()
        for pk, account_id, phone in rows:
            self.first_seen.setdefault((account_id, re.sub(r"\D", "", phone)[-10:]), now)
            self.last_id = pk

    def run(self) -> None:
        from django.db import DatabaseError, connection

        while not self.stopping.wait(1.0):
            try:
                self.poll()
            except DatabaseError:
                connection.close()
        connection.close()


# --- Playing calls -------------------------------------------------------------------------


class Player:
    def __init__(self, args: argparse.Namespace, orgs: list[tuple], faults: list[Fault]) -> None:
        self.args, self.orgs, self.faults = args, orgs, faults
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.played: list[Played] = []
        self.late_timers: list[threading.Timer] = []
        self.webhook_status: Counter[str] = Counter()
        base = self.rng.randrange(10**6) * 10
        self.plan = [
            Played(
                index=i,
                org=i % len(orgs),
                account_id=orgs[i % len(orgs)][1].pk,
                scenario=self.rng.choices([s for s, _ in SCENARIOS], [w for _, w in SCENARIOS])[0],
                phone=f"+7906{(base + i) % 10**7:07d}",
            )
            for i in range(args.calls)
        ]

    def active(self, name: str) -> bool:
        """Whether a fault whose name starts with ``name`` is on now."""
        now = time.monotonic()
        return any(f.name.startswith(name) and f.covers(now) for f in self.faults)

    def _post(self, url: str, body: str, call: Played) -> None:
        try:
            response = requests.post(
                url, data=body.encode(), timeout=10,
                headers={"Content-Type": "application/xml; charset=UTF-8"},
            )  # fmt: skip
            key = str(response.status_code)
        except requests.RequestException as exc:
            key = type(exc).__name__
        with self.lock:
            self.webhook_status[key] += 1
        call.events_posted += 1
        if not key.startswith("2"):
            call.errors.append(key)

    def _deliver(self, call: Played, url: str, documents: list[str]) -> None:
        from pbx.xsi import xsi_event_head

        if call.mode == "reorder":
            documents = documents[::-1]
        ringing = [d for d in documents if xsi_event_head(d).event_type in RINGING]
        for body in documents:
            if self.active("beeline-drop-5%") and self.rng.random() < 0.05:
                call.events_dropped += 1
                continue
            for _ in range(2 if call.mode == "duplicate" else 1):
                self._post(url, body, call)
            if body in ringing:
                time.sleep(self.args.ring)

    def play_one(self, call: Played) -> None:
        from django.db import connection, transaction

        from sandbox.beeline.selectors import subscriptions_active
        from sandbox.beeline.simulator import call_simulate

        _org, _account, pbx, _abonent, _manager = self.orgs[call.org]
        call.played_at = time.monotonic()
        roll = self.rng.random()
        if self.active("late-events") and roll < 0.3:
            call.mode = "late"
        elif roll < DROP_CALL_SHARE:
            call.mode = "dropped"
        elif roll < DROP_CALL_SHARE + DUPLICATE_SHARE:
            call.mode = "duplicate"
        elif roll < DROP_CALL_SHARE + DUPLICATE_SHARE + REORDER_SHARE:
            call.mode = "reorder"

        def simulate() -> tuple[str, list[str]]:
            with transaction.atomic():  # all or nothing: a retry must not add a second row
                sim = call_simulate(pbx=pbx, scenario=call.scenario, abonent_phone=ABONENT,
                                    external_phone=call.phone, drop=True,
                                    talk_seconds=self.rng.randint(5, 120))  # fmt: skip
                return subscriptions_active(pbx=pbx).first().url, sim.documents

        try:
            url, documents = db_retry(simulate)
        finally:
            connection.close()
        with self.lock:
            self.played.append(call)
        if call.mode == "dropped":
            call.events_dropped = len(documents)
        elif call.mode == "late":
            timer = threading.Timer(self.args.late, self._deliver, (call, url, documents))
            timer.daemon = True
            timer.start()
            with self.lock:
                self.late_timers.append(timer)
        else:
            self._deliver(call, url, documents)

    def run(self, started: float, duration: float) -> None:
        rate = len(self.plan) / duration
        with ThreadPoolExecutor(max_workers=8) as pool:
            for call in self.plan:
                delay = started + call.index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self.play_one, call).add_done_callback(_report_failure)


def _report_failure(future: Any) -> None:
    if future.exception() is not None:
        log(f"playing a call failed: {future.exception()!r}")


# --- Faults --------------------------------------------------------------------------------


def faults_make(
    args: argparse.Namespace,
    stack: Stack,
    redis_server: PrivateRedis | None,
    postgres: PrivatePostgres | None,
    orgs: list[tuple],
) -> list[Fault]:
    from sandbox.amocrm.models import Account

    account_ids = [o[1].pk for o in orgs]
    ten_minutes = 10 * args.minute

    def accounts(**values: object) -> Callable[[], None]:
        return lambda: db_retry(lambda: Account.objects.filter(pk__in=account_ids).update(**values))

    def banned(on: bool) -> Callable[[], None]:
        from django.utils import timezone

        return lambda: db_retry(
            lambda: Account.objects.filter(pk=account_ids[0]).update(
                banned_at=timezone.now() if on else None
            )
        )

    def unbanned() -> None:
        """amoCRM lifts the ban; support then resumes the organization's traffic (the admin
        action «resume», crm.services.amo_resume): a ban stops our requests until a person
        says so. The beat's pipeline-resume-paused then queues its paused calls again."""
        from crm.services import amo_resume

        banned(False)()
        db_retry(lambda: amo_resume(organization=orgs[0][0]))

    def killed(name: str) -> Callable[[], None]:
        return lambda: stack.kill(name)

    def started(name: str) -> Callable[[], None]:
        return lambda: stack.start(name)

    def redis_restart() -> None:
        assert redis_server is not None
        redis_server.start()

    def pg_crash() -> None:
        assert postgres is not None
        postgres.stop("immediate")

    def pg_start() -> None:
        assert postgres is not None
        postgres.start()

    no_redis = "" if redis_server else "no private redis-server: Redis faults skipped"
    no_pg = "" if postgres else "no private PostgreSQL cluster: restart skipped"

    def at(short: float, full: float) -> float:
        return short if args.short else full

    kill_gap, kill_down, first_kill = at(8, 15), at(2, 3), at(3, 80)
    faults = [
        Fault(f"worker-kill #{n + 1} ({name})", first_kill + n * kill_gap, kill_down,
              killed(name), started(name))
        for n, name in enumerate(["worker", "worker-events", "worker"])
    ]  # fmt: skip
    faults += [
        Fault("amo-429-storm", first_kill + 5, at(20, 40),
              accounts(error_rate=0.6, fail_status=429), accounts(error_rate=0.0)),
        Fault("amo-403-one-account", at(14, 260), at(12, 40), banned(True), unbanned),
        Fault("redis-kill", at(30, 15), at(3, 5),
              lambda: redis_server.kill() if redis_server else None, redis_restart,
              notice=no_redis),
        Fault("redis-freeze", at(36, 35), at(8, 30),
              lambda: redis_server.signal(signal.SIGSTOP) if redis_server else None,
              lambda: redis_server.signal(signal.SIGCONT) if redis_server else None,
              notice=no_redis),
        Fault("beat-kill", at(46, 140), at(10, 30), killed("beat"), started("beat")),
        Fault("amo-500 (10 min)", at(48, 150), ten_minutes,
              accounts(error_rate=1.0, fail_status=500), accounts(error_rate=0.0)),
        Fault("amo-lost-answers-20%", at(66, 190), at(20, 60),
              accounts(lost_answer_rate=0.2), accounts(lost_answer_rate=0.0)),
        Fault("beeline-drop-5%", at(80, 310), at(20, 60), lambda: None),
        Fault("late-events (10 min)", at(56, 330), at(10, 30), lambda: None),
        Fault("pg-restart", at(100, 385), 3, pg_crash, pg_start, notice=no_pg),
    ]  # fmt: skip
    return sorted(faults, key=lambda f: f.start)


def faults_run(faults: list[Fault], started: float) -> None:
    """Begin and end each fault on time (one thread per fault: they overlap)."""

    def one(fault: Fault) -> None:
        time.sleep(max(0.0, started + fault.start - time.monotonic()))
        if fault.notice:
            log(f"fault {fault.name}: SKIPPED — {fault.notice}")
            return
        log(f"fault {fault.name}: begins")
        fault.started_at = time.monotonic()
        fault.begin()
        time.sleep(max(0.0, started + fault.start + fault.duration - time.monotonic()))
        fault.end()
        fault.ended_at = time.monotonic()
        log(f"fault {fault.name}: ends")

    threads = [threading.Thread(target=one, args=(f,), daemon=True) for f in faults]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Accounting ----------------------------------------------------------------------------


def quiescence(player: Player, monitor: Monitor, account_ids: list[int], args: argparse.Namespace
               ) -> bool:  # fmt: skip
    """Wait until every played call has a call log and nothing moves for ``--quiet`` seconds
    (no unprocessed event, no open delivery, no new call, contact or task), or the deadline."""
    from core.tenancy import scopes_disabled
    from integration.models import CallDelivery
    from pbx.models import PbxEvent
    from sandbox.amocrm.models import Call, Contact, Task

    open_states = [CallDelivery.Status.PENDING, CallDelivery.Status.IN_PROGRESS,
                   CallDelivery.Status.PAUSED]  # fmt: skip
    deadline = time.monotonic() + args.deadline
    for timer in player.late_timers:
        timer.join(max(0.0, deadline - time.monotonic()))
    last, still_since = None, time.monotonic()
    while time.monotonic() < deadline:

        def snapshot() -> tuple[int, ...]:
            monitor.poll()
            with scopes_disabled():
                return (
                    Call.objects.filter(account_id__in=account_ids).count(),
                    Contact.objects.filter(account_id__in=account_ids).count(),
                    Task.objects.filter(account_id__in=account_ids).count(),
                    PbxEvent.objects.filter(processed_at__isnull=True).count(),
                    CallDelivery.objects.filter(status__in=open_states).count(),
                )

        state = db_retry(snapshot)
        delivered = all((c.account_id, c.digits) in monitor.first_seen for c in player.played)
        if state != last:
            last, still_since = state, time.monotonic()
        elif (
            delivered and state[3] == state[4] == 0 and time.monotonic() - still_since >= args.quiet
        ):
            return True
        time.sleep(1.0)
    log(f"quiescence not reached by the deadline (calls/contacts/tasks/events open/"
        f"deliveries open: {last})")  # fmt: skip
    return False


@dataclass
class Outcome:
    calls: int
    contacts: int
    tasks: int

    def lost(self) -> bool:
        return self.calls == 0

    def duplicated(self) -> bool:
        return self.calls > 1 or self.contacts > 1 or self.tasks > 1


def outcomes(played: list[Played], account_ids: list[int]) -> dict[int, Outcome]:
    """What amoCRM holds for each played call (by its client number, unique to the call)."""
    from sandbox.amocrm.models import Call, ContactPhone, Task

    calls: Counter[tuple[int, str]] = Counter()
    for account_id, phone in Call.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "phone"
    ):
        calls[account_id, re.sub(r"\D", "", phone)[-10:]] += 1
    contacts: Counter[tuple[int, str]] = Counter()
    for account_id, digits in ContactPhone.objects.filter(
        contact__account_id__in=account_ids, contact__tags__name="BeelineConnector"
    ).values_list("contact__account_id", "digits"):
        contacts[account_id, digits[-10:]] += 1
    tasks: Counter[tuple[int, str]] = Counter()
    for account_id, text in Task.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "text"
    ):
        for match in re.findall(r"\+7\d{10}", text):
            tasks[account_id, match[-10:]] += 1
    return {
        c.index: Outcome(
            calls[c.account_id, c.digits],
            contacts[c.account_id, c.digits],
            tasks[c.account_id, c.digits],
        )
        for c in played
    }


def table(player: Player, faults: list[Fault], monitor: Monitor, results: dict[int, Outcome],
          play_started: float) -> tuple[int, int, int]:  # fmt: skip
    header = (f"{'fault':<26} {'window, s':>11} {'played':>6} {'calls':>5} {'contacts':>8} "
              f"{'tasks':>5} {'lost':>4} {'no task':>7} {'dup':>4} {'recover, s':>10}")  # fmt: skip
    print("\n" + header)
    print("-" * len(header))

    def row(name: str, window: str, calls: list[Played], recover: str) -> tuple[int, int, int]:
        got = [results[c.index] for c in calls]
        lost = sum(o.lost() for o in got)
        no_task = sum(c.missed_inbound and results[c.index].tasks == 0 for c in calls)
        dup = sum(o.duplicated() for o in got)
        print(f"{name:<26} {window:>11} {len(calls):>6} {sum(o.calls for o in got):>5} "
              f"{sum(o.contacts for o in got):>8} {sum(o.tasks for o in got):>5} {lost:>4} "
              f"{no_task:>7} {dup:>4} {recover:>10}")  # fmt: skip
        return lost, no_task, dup

    for fault in faults:
        if fault.started_at is None or fault.ended_at is None:
            print(f"{fault.name:<26} {'skipped':>11}   {fault.notice}")
            continue
        during = [c for c in player.played if fault.covers(c.played_at)]
        before = [c for c in player.played if c.played_at <= fault.ended_at]
        seen = [monitor.first_seen.get((c.account_id, c.digits)) for c in before]
        delivered = [at - fault.ended_at for at in seen if at is not None]
        # Over the calls that did arrive; "*": some played by then never did (see "lost").
        recover = f"{max([0.0, *delivered]):.1f}" + ("*" if None in seen else "")
        window = f"{fault.started_at - play_started:.0f}–{fault.ended_at - play_started:.0f}"
        row(fault.name, window, during, recover)
    print("-" * len(header))
    quiet = [c for c in player.played if not any(f.covers(c.played_at) for f in faults)]
    row("(no fault at play time)", "", quiet, "")
    return row("TOTAL", "", player.played, "")


def product_state(call: Played, org_id: int) -> str:
    """Our side of one call: its PbxCall rows (recovered or not) and their deliveries."""
    from core.tenancy import scopes_disabled
    from integration.models import CallDelivery
    from pbx.models import PbxCall, PbxEvent

    with scopes_disabled():
        rows = list(PbxCall.objects.filter(organization_id=org_id,
                                           external_phone_national=call.digits))  # fmt: skip
        parts = []
        for row in rows:
            delivery = CallDelivery.objects.filter(pbx_call=row).first()
            state = (f"{delivery.status}/call {delivery.call_state or '-'}/task "
                     f"{delivery.task_state or '-'} attempts {delivery.attempts} "
                     f"{delivery.last_error[:80]!r}" if delivery else "no delivery")  # fmt: skip
            recovered = " recovered" if row.recovered else ""
            handed = "yes" if row.handed_off_at else "no"
            parts.append(f"PbxCall {row.pk} {row.status}{recovered} handed off {handed}: {state}")
        pending = PbxEvent.objects.filter(
            organization_id=org_id, processed_at__isnull=True,
            ext_tracking_id__in=[r.ext_tracking_id for r in rows],
        ).count()  # fmt: skip
    unprocessed = f"; {pending} events unprocessed" if pending else ""
    return ("; ".join(parts) or "no PbxCall") + unprocessed


def details(player: Player, faults: list[Fault], results: dict[int, Outcome],
            orgs: list[tuple]) -> None:  # fmt: skip
    """Each call lost, duplicated or without its task, with what was special about it and
    what our side holds of it, for diagnosis."""
    bad = [c for c in player.played if results[c.index].lost() or results[c.index].duplicated()
           or (c.missed_inbound and results[c.index].tasks == 0)]  # fmt: skip
    if not bad:
        return
    print("\nCalls lost, duplicated or without their task:")
    for c in bad[:60]:
        o = results[c.index]
        active = ", ".join(f.name for f in faults if f.covers(c.played_at)) or "-"
        print(f"  #{c.index} org {c.org} {c.scenario:<17} {c.phone} mode={c.mode:<9} "
              f"calls={o.calls} contacts={o.contacts} tasks={o.tasks} "
              f"events posted={c.events_posted} dropped={c.events_dropped} "
              f"webhook errors={','.join(c.errors) or '-'}; faults: {active}")  # fmt: skip
        print(f"      ours: {db_retry(lambda c=c: product_state(c, orgs[c.org][0].pk))}")
    if len(bad) > 60:
        print(f"  … and {len(bad) - 60} more")


# --- Main ----------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=None, help="default 500 (--short: 60)")
    parser.add_argument("--orgs", type=int, default=None, help="default 20 (--short: 4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--short", action="store_true", help="the in-suite variant")
    parser.add_argument(
        "--minute",
        type=float,
        default=None,
        help="real seconds per emulated minute (default 6; --short: 3)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds to wait for quiescence after play (default 600; --short: 60)",
    )
    parser.add_argument("--quiet", type=float, default=None,
                        help="seconds with nothing moving that count as quiescence (default 30; "
                        "--short: 8)")  # fmt: skip
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    short = args.short
    defaults = {"calls": (60, 500), "orgs": (4, 20), "minute": (3.0, 6.0),
                "deadline": (60.0, 600.0), "quiet": (8.0, 30.0)}  # fmt: skip
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if short else full)
    args.calls = max(1, min(args.calls, 5000))
    args.orgs = max(1, min(args.orgs, args.calls, 200))
    # Reconciliation's grace: in production 120 s, above the event sweeper's worst case (an
    # event stored while Redis was away is queued again 30-60 s later); the full run keeps
    # that order (75 s). The short one cannot wait that long: 20 s, so there a Redis loss also
    # makes events come after their call was recovered from statistics.
    args.grace = 20 if short else 75
    args.period = max(5, int(args.minute * 3))
    # "10 minutes late", and in any case after reconciliation has recovered the call.
    args.late = max(10 * args.minute, args.grace + 2 * args.period + 5)
    args.ring = 0.5
    args.play_seconds = 110.0 if short else 400.0
    return args


def stack_extra(args: argparse.Namespace) -> dict[str, str]:
    """Time compressed (production values in config/settings/base.py): reconciliation looks
    every ``args.period`` s at statistics rows over ``args.grace`` s old; retries are 2 s,
    4 s … at most 30 s (production 10 s … 15 min); the lease equals the hard task time limit,
    so a live claim is never taken twice."""
    return {
        "PBX_CALL_SETTLE_SECONDS": "2",
        "SANDBOX_BEELINE_RECORD_DELAY": "1",
        "PBX_RECONCILE_PERIOD_SECONDS": str(args.period),
        "PBX_RECONCILE_GRACE_SECONDS": str(args.grace),
        "PIPELINE_RETRY_BASE_SECONDS": "2",
        "PIPELINE_RETRY_MAX_SECONDS": "30",
        "PIPELINE_LEASE_SECONDS": "90",
    }


def main() -> int:
    args = arguments()
    # A plain `kill` (or a timeout) must still run the cleanup below, or processes are orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logs = Path(tempfile.mkdtemp(prefix="beetel-chaos-logs-"))
    postgres: PrivatePostgres | None = None
    redis_server: PrivateRedis | None = None
    db = f"beetel_chaos_{os.getpid()}"
    shared_db = False
    stack: Stack | None = None
    monitor: Monitor | None = None
    try:
        why = PrivatePostgres.available()
        if why:
            print(f"NOTICE: no private PostgreSQL cluster ({why}); using a throwaway database "
                  f"on {PG} and SKIPPING the PostgreSQL restart fault.")  # fmt: skip
            server = PG
            shared_db = True
        else:
            postgres = PrivatePostgres()
            postgres.init()
            server = postgres.url
            log(f"private PostgreSQL on port {postgres.port} ({postgres.folder})")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{db}"')
        if shutil.which("redis-server"):
            redis_server = PrivateRedis()
            redis_server.start()
            redis_url = redis_server.url
            log(f"private redis-server on port {redis_server.port}")
        else:
            redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
            print(f"NOTICE: redis-server not found; using {redis_url} (flushed) and SKIPPING "
                  "the Redis kill and freeze faults.")  # fmt: skip
            redis.Redis.from_url(redis_url).flushdb()
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        env = stack_env(dsn=f"{server}/{db}", redis_url=redis_url, public=public,
                        **stack_extra(args))  # fmt: skip
        log(f"database {db}: migrating…")
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT,
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        schedule = str(logs / "celerybeat-schedule")
        commands = stack_commands(
            port=port, workers=3, events_workers=3, beat_schedule=schedule, lean=False
        )
        stack = Stack(commands, env, logs)
        for name in commands:
            stack.start(name)
        wait_ready(f"{public}/healthz", time.monotonic() + 60)
        os.environ.update(env)
        import django

        django.setup()
        log(f"building {args.orgs} organizations…")
        orgs = [org_make(i + 1, with_pbx=True) for i in range(args.orgs)]
        account_ids = [o[1].pk for o in orgs]
        faults = faults_make(args, stack, redis_server, postgres, orgs)
        player = Player(args, orgs, faults)
        monitor = Monitor(account_ids)
        monitor.start()
        log(
            f"playing {args.calls} calls over {args.orgs} organizations in "
            f"{args.play_seconds:.0f} s; 10 emulated minutes = {10 * args.minute:.0f} s"
        )
        started = time.monotonic()
        injector = threading.Thread(target=faults_run, args=(faults, started), daemon=True)
        injector.start()
        player.run(started, args.play_seconds)
        injector.join()
        log("all calls played; waiting for quiescence…")
        quiet = quiescence(player, monitor, account_ids, args)
        results = db_retry(lambda: outcomes(player.played, account_ids))
        lost, no_task, dup = table(player, faults, monitor, results, started)
        details(player, faults, results, orgs)
        print(f"\nwebhook answers: {dict(player.webhook_status)}; calls by mode: "
              f"{dict(Counter(c.mode for c in player.played))}")  # fmt: skip
        for at, name, status in stack.crashes:
            print(f"CRASH at {at - started:.0f} s: {name} exited by itself (status {status}) "
                  "and was restarted")  # fmt: skip
        missing = args.calls - len(player.played)
        ok = quiet and lost == no_task == dup == missing == 0
        if missing:
            print(f"{missing} calls could not be played (see the errors above)")
        print(f"logs: {logs}" if args.keep_logs else "")
        print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if monitor is not None:
            monitor.stopping.set()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 (Django may never have been set up)
            pass
        if redis_server is not None and redis_server.process is not None:
            redis_server.signal(signal.SIGCONT)  # a frozen server would hang the shutdown
        if stack is not None:
            stack.stop_all()
        if redis_server is not None:
            redis_server.remove()
        if postgres is not None:
            postgres.remove()
        elif shared_db:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if not args.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
