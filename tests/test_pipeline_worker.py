"""The pipeline with a REAL Celery worker on Redis: events queued by the webhook, processed and
delivered by a separate worker process that talks to the amoCRM emulator over HTTP (the test's
live server). The worker is SIGKILLed while its POST /api/v4/calls is in flight (amoCRM does
the work, the answer is lost); a fresh worker takes the call up again — still exactly one
contact, one call and one task in amoCRM. The same for call-back tracking: one overdue
notification, one task completion, a worker killed while the completion is in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery_app import app as celery_app
from core.tenancy import scopes_disabled
from integration.callbacks import callback_settings_update, callbacks_due_dispatch
from integration.delivery.queue import deliveries_due_dispatch
from integration.models import CallDelivery, MissedCall, RingNotice
from integration.testing import world_make
from pbx.models import PbxCall
from sandbox.amocrm.services import faults_set

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
CLIENT = "+79031112233"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def start_worker(live_server) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "WORKER_DATABASE_NAME": connection.settings_dict["NAME"],
        "WORKER_AMOCRM_API_BASE_URL": f"{live_server.url}/sandbox/amocrm",
        "WORKER_BEELINE_API_URL": f"{live_server.url}/sandbox/beeline",
        "REDIS_URL": settings.REDIS_URL,
    }
    # DATABASE_URL passes through from our environment when set; an empty one would break the
    # worker's settings (CI runs with none: the test settings' default applies).
    log = ROOT / "test-artifacts"
    log.mkdir(exist_ok=True)

    def start() -> subprocess.Popen[bytes]:
        with open(log / "pipeline-worker.log", "ab") as out:
            process = subprocess.Popen(  # noqa: S603 (our own worker, fixed arguments)
                [
                    sys.executable, "-m", "celery", "-A", "config.celery_app", "worker",
                    "-Q", "events,crm,default", "-c", "2", "--without-heartbeat",
                    "--without-gossip", "--without-mingle", "-l", "INFO",
                ],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture
def queued_for_real() -> Iterator[None]:
    """This process publishes tasks to Redis instead of running them in line."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def delivery_of(ext_tracking_id: str) -> CallDelivery | None:
    with scopes_disabled():
        return CallDelivery.objects.filter(pbx_call__ext_tracking_id=ext_tracking_id).first()


def test_worker_killed_mid_post_then_restarted_still_exactly_one(
    beeline_pbx, outsider, start_worker, queued_for_real
):
    world = world_make(pbx=beeline_pbx)
    worker = start_worker()
    # Every amoCRM request takes a while: the kill lands while POST /calls is in flight.
    faults_set(account=world.account, latency_ms=1500)

    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT, finalize=False)

    def posting() -> bool:
        delivery = delivery_of(sim.ext_tracking_id)
        return delivery is not None and delivery.call_state == CallDelivery.Step.POSTING

    wait_for("the worker to start posting the call", posting)
    time.sleep(0.3)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_for("amoCRM to finish the orphaned POST", lambda: world.account.calls.exists(), 10)
    assert delivery_of(sim.ext_tracking_id).status == CallDelivery.Status.IN_PROGRESS

    start_worker()

    def done() -> bool:
        deliveries_due_dispatch()  # what the beat does every 30 s
        delivery = delivery_of(sim.ext_tracking_id)
        return delivery is not None and delivery.status == CallDelivery.Status.DONE

    wait_for("the restarted worker to finish the call", done, 90)
    assert world.account.contacts.count() == 1
    assert world.account.calls.count() == 1
    assert world.account.tasks.count() == 1
    # The pop-up depends on the worker seeing the call while it still rang (it may lag).
    assert world.account.events.count() <= 1
    delivery = delivery_of(sim.ext_tracking_id)
    assert delivery.amo_call_id == world.account.calls.get().pk


def missed_of(phone_national: str) -> MissedCall | None:
    with scopes_disabled():
        return MissedCall.objects.filter(phone_national=phone_national).first()


def test_call_back_with_a_worker_killed_mid_completion_one_notification_one_completion(
    beeline_pbx, outsider, start_worker, queued_for_real
):
    """Missed → task; past the SLA the beat's check notifies once, however often it runs; the
    call back completes the task, and a worker SIGKILLed while its PATCH is in flight (amoCRM
    completes the task, the answer is lost) leaves it to the next worker, which reads the task,
    recognises its own result and completes nothing twice (docs/callbacks.md)."""
    world = world_make(pbx=beeline_pbx)
    callback_settings_update(organization=world.organization, values={"working_hours": [None] * 7})
    worker = start_worker()

    ended = timezone.now() - timedelta(minutes=30)  # past the 15-minute target already
    world.simulate(scenario="inbound_missed", external_phone=CLIENT, ended_at=ended, finalize=False)
    wait_for("the missed call's task", lambda: world.account.tasks.exists())
    task = world.account.tasks.get()

    def only_one_overdue_notice() -> bool:
        # amoCRM's events: the ringing pop-ups we sent (they may lag behind), and one notice.
        with scopes_disabled():
            pop_ups = RingNotice.objects.filter(sent_at__isnull=False).count()
        return world.account.events.count() == pop_ups + 1

    def notified() -> bool:
        callbacks_due_dispatch()  # what the beat does every minute
        missed = missed_of("9031112233")
        return missed is not None and missed.sla_notified_users == [world.anna.pk]

    wait_for("the overdue notification", notified)
    for _ in range(3):
        callbacks_due_dispatch()
    time.sleep(1)
    wait_for("the pop-ups and exactly one notice in amoCRM", only_one_overdue_notice, 10)
    notified_at = missed_of("9031112233").sla_notified_at

    # Every amoCRM request takes a while: the kill lands while PATCH /tasks/{id} is in flight.
    faults_set(account=world.account, latency_ms=1500)
    back = world.simulate(
        scenario="outbound_answered", external_phone=CLIENT, talk_seconds=151, finalize=False
    )

    def completing() -> bool:
        missed = missed_of("9031112233")
        return missed is not None and missed.task_state == MissedCall.TaskState.COMPLETING

    wait_for("the worker to start completing the task", completing)
    time.sleep(0.3)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    task.refresh_from_db()
    wait_for("amoCRM to finish the orphaned PATCH", lambda: world.account.tasks.get().is_completed)
    assert missed_of("9031112233").task_state == MissedCall.TaskState.COMPLETING
    faults_set(account=world.account)

    start_worker()

    def completed() -> bool:
        callbacks_due_dispatch()
        return missed_of("9031112233").task_state == MissedCall.TaskState.COMPLETED

    wait_for("the restarted worker to settle the task", completed, 90)
    missed = missed_of("9031112233")
    with scopes_disabled():
        returning = PbxCall.objects.get(ext_tracking_id=back.ext_tracking_id)
    assert missed.returning_call_id == returning.pk
    wait = max(1, round((returning.answered_at - missed.missed_at).total_seconds() / 60))
    task = world.account.tasks.get()  # still the one task
    assert task.result_text == f"Перезвонили: Анна Петрова через {wait} мин, разговор 2:31"
    patches = world.account.api_requests.filter(method="PATCH", path__endswith=f"/tasks/{task.pk}")
    assert patches.count() == 1  # the restarted worker read the task and sent nothing again
    for _ in range(3):
        callbacks_due_dispatch()
    time.sleep(1)
    wait_for("still exactly one notice", only_one_overdue_notice, 10)
    assert missed_of("9031112233").sla_notified_at == notified_at
