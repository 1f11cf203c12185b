from __future__ import annotations

import gc
import time

import pytest

from core.models import Organization
from core.testing import in_parallel
from crm import services
from crm.client import CallDraft, PhoneCallEvent, TaskDraft
from crm.errors import AmoBanned, AmoUnpaid
from crm.models import AmoAccountState
from crm.selectors import amo_health, amo_users_for
from crm.testing import amo_account_make, install
from sandbox.amocrm.services import account_ban, account_unban, contact_create, faults_set


def test_users_cache_holds_profile_phones_normalized(installed):
    users = services.amo_users_refresh(organization=installed.organization)

    by_name = {u.name: u for u in users}
    assert by_name["Анна Петрова"].phone_national == "9161110001"
    assert by_name["Борис Сидоров"].phone_raw == "+7 (916) 111-00-02"
    assert by_name["Борис Сидоров"].phone_national == "9161110002"
    assert by_name["Админ Админов"].is_admin and by_name["Админ Админов"].phone_national == ""
    assert [u.name for u in amo_users_for(organization=installed.organization)] == sorted(by_name)
    # the outsider sees none of them
    outsider = Organization.objects.exclude(pk=installed.organization.pk).first()
    assert amo_users_for(organization=outsider) == []


def test_calls_are_batched_with_a_result_per_item(installed):
    manager = installed.managers[0]
    contact_create(
        account=installed.account,
        name="Иван",
        responsible=manager,
        phones=[("+79165554433", "WORK")],
    )
    client = services.amo_client(organization=installed.organization)
    drafts = [
        CallDraft(
            direction="inbound",
            duration=30 + i,
            phone="+79165554433",
            uniq=f"track-{i}",
            call_status=4,
            responsible_user_id=manager.pk,
        )
        for i in range(60)
    ]
    drafts.append(CallDraft(direction="outbound", duration=5, phone="+79990001122"))

    results = client.calls_add(drafts)

    assert len(results) == 61
    assert all(r.ok for r in results[:60])
    assert not results[60].ok and "Entity not found" in (results[60].error or "")
    assert installed.account.calls.count() == 60


def test_tasks_notifications_and_unsorted(installed):
    manager = installed.managers[0]
    contact = contact_create(
        account=installed.account,
        name="Иван",
        responsible=manager,
        phones=[("+79165554433", "WORK")],
    )
    client = services.amo_client(organization=installed.organization)

    task_ids = client.tasks_add(
        [
            TaskDraft(
                text="Перезвонить: пропущенный +79165554433",
                complete_till=int(time.time()) + 3600,
                entity_id=contact.pk,
                entity_type="contacts",
                responsible_user_id=manager.pk,
            )
        ]
    )
    client.events_phone_call([PhoneCallEvent(phone_number="+79165554433", users=[manager.pk])])
    uids = client.unsorted_sip_add(
        [
            {
                "source_uid": "beetel",
                "source_name": "Звонок Beeline",
                "created_at": int(time.time()),
                "metadata": {
                    "uniq": "track-x",
                    "duration": 0,
                    "service_code": "beetel_beeline_call",
                    "link": "https://beetel.test/recordings/x",
                    "called_at": int(time.time()),
                    "from": "+79990001122",
                    "phone": "9161110001",
                    "is_call_event_needed": True,
                },
                "_embedded": {"contacts": [{"name": "+79990001122"}]},
            }
        ]
    )

    assert len(task_ids) == 1 and installed.account.tasks.get().pk == task_ids[0]
    event = installed.account.events.get()
    assert event.users == [manager.pk]
    assert len(uids) == 1 and installed.account.unsorted.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_100_requests_gets_no_429(sandbox_http):
    org = install(amo_account_make())
    # As in a web or worker process, whose start-up objects are frozen (config/celery_app.py,
    # config/gunicorn_conf.py): a full garbage collection over this test process's heap would
    # stall one request ~100 ms after it took its slot — a pause no paced client survives.
    gc.freeze()
    sent_before = len(sandbox_http.calls)

    def requests() -> None:
        client = services.amo_client(organization=org)
        for _ in range(25):
            client.account()

    try:
        in_parallel(requests, threads=4, timeout=120)
    finally:
        gc.unfreeze()

    burst = sandbox_http.calls[sent_before:]
    statuses = [c.response.status_code for c in burst if "/api/v4/account" in c.request.url]
    assert len(statuses) >= 100
    assert 429 not in [c.response.status_code for c in burst]
    assert amo_health(organization=org).rate_limited_24h == 0


def test_unpaid_account_stops_traffic_and_raises_an_alert(installed, sandbox_http):
    org = installed.organization
    faults_set(account=installed.account, unpaid=True)

    with pytest.raises(AmoUnpaid):
        services.amo_client(organization=org).account()

    sent = len(sandbox_http.calls)
    with pytest.raises(AmoUnpaid):
        services.amo_client(organization=org)
    assert len(sandbox_http.calls) == sent  # nothing was sent while paused
    health = amo_health(organization=org)
    assert health.paused_reason == AmoAccountState.PauseReason.UNPAID
    assert health.banned_24h == 1

    faults_set(account=installed.account, unpaid=False)
    assert services.amo_resume(organization=org)
    assert services.amo_client(organization=org).account().id == installed.account.pk


def test_banned_account_stops_traffic_and_raises_an_alert(installed, sandbox_http):
    org = installed.organization
    account_ban(account=installed.account)

    with pytest.raises(AmoBanned):
        services.amo_client(organization=org).account()

    sent = len(sandbox_http.calls)
    with pytest.raises(AmoBanned):
        services.amo_client(organization=org)
    assert len(sandbox_http.calls) == sent  # nothing was sent while paused
    health = amo_health(organization=org)
    assert health.paused_reason == AmoAccountState.PauseReason.BANNED
    assert health.banned_24h == 1

    account_unban(account=installed.account)
    assert services.amo_resume(organization=org)
    assert services.amo_client(organization=org).account().id == installed.account.pk


def test_rate_limited_answers_are_retried_and_counted(installed):
    faults_set(account=installed.account, fail_next=2, fail_status=429)
    sleeps: list[float] = []
    client = services.amo_client(organization=installed.organization)
    client._sleep = sleeps.append

    assert client.account().id == installed.account.pk
    assert len(sleeps) == 2
    assert amo_health(organization=installed.organization).rate_limited_24h == 2
