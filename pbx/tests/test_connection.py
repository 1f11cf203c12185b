"""Saving the Beeline token and syncing abonents and numbers, against the Beeline emulator."""

from __future__ import annotations

import pytest
from django.db import connection

from core.models import AuditEntry
from core.tenancy import organization_scope, scopes_disabled
from pbx.connection import beeline_token_save, pbx_sync
from pbx.credentials import webhook_url
from pbx.errors import BeelineTokenRejected, BeelineUnavailable
from pbx.models import Abonent, BeelineCredentials, PbxNumber, Subscription
from pbx.selectors import abonents_for, numbers_for, pbx_health
from sandbox.beeline.models import Pbx
from sandbox.beeline.services import abonent_add, faults_set


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)


def test_bad_token_is_refused_with_beelines_reason_and_nothing_saved(org, beeline_pbx):
    with pytest.raises(BeelineTokenRejected) as exc:
        beeline_token_save(organization=org, token="11111111-2222-3333-4444-555555555555")
    assert exc.value.message == "Неверный или отсутствующий токен API"
    with scopes_disabled():
        assert not BeelineCredentials.objects.exists()
        assert not Abonent.objects.exists()


def test_empty_token_is_refused_in_russian(org, beeline_pbx):
    with pytest.raises(BeelineTokenRejected, match="Вставьте токен"):
        beeline_token_save(organization=org, token="   ")


def test_beeline_down_while_saving_saves_nothing(org, beeline_pbx):
    faults_set(pbx=beeline_pbx, down=True)
    with pytest.raises(BeelineUnavailable):
        beeline_token_save(organization=org, token=beeline_pbx.token)
    with scopes_disabled():
        assert not BeelineCredentials.objects.exists()


def test_good_token_is_stored_encrypted_synced_and_subscribed(org, outsider, beeline_pbx):
    result = beeline_token_save(organization=org, token=f"  {beeline_pbx.token}\n")
    assert (result.abonent_count, result.number_count) == (3, 2)
    assert result.subscription_id and result.subscription_error == ""
    with organization_scope(org):
        credentials = BeelineCredentials.objects.get()
        assert credentials.api_token == beeline_pbx.token
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT api_token FROM pbx_beelinecredentials WHERE id = %s", [credentials.pk]
        )
        raw = cursor.fetchone()[0]
    assert raw and beeline_pbx.token not in raw  # only ciphertext in the column
    assert [a.phone for a in abonents_for(organization=org)] == [
        "9161110001",
        "9161110002",
        "9161110003",
    ]
    assert sorted(n.phone for n in numbers_for(organization=org)) == ["4950000001", "4950000002"]
    assert list(abonents_for(organization=outsider)) == []
    # The emulator holds one group subscription pointing at this organization's secret URL.
    remote = beeline_pbx.subscriptions.get()
    assert remote.subscription_id == result.subscription_id
    assert remote.url == webhook_url(credentials=credentials)
    assert remote.pattern == "" and remote.subscription_type == "BASIC_CALL"
    with organization_scope(org):
        assert AuditEntry.objects.filter(kind="beeline.token_saved").exists()
    health = pbx_health(organization=org)
    assert health.token_saved and health.token_valid and health.subscription_active
    assert health.abonent_count == 3 and len(health.numbers) == 2


def test_a_new_token_replaces_the_old_subscription(org, beeline_pbx):
    first = beeline_token_save(organization=org, token=beeline_pbx.token)
    new_token = "99999999-8888-4777-8666-555555555555"
    # The customer creates a new token in the portal: the old one stops working at once.
    Pbx.objects.filter(pk=beeline_pbx.pk).update(token=new_token)
    second = beeline_token_save(organization=org, token=new_token)
    assert second.subscription_id != first.subscription_id
    old = beeline_pbx.subscriptions.get(subscription_id=first.subscription_id)
    assert old.deleted_at is not None  # deleted at Beeline, with whichever token works
    with organization_scope(org):
        assert Subscription.objects.get(status="active").subscription_id == second.subscription_id
        assert Subscription.objects.get(subscription_id=first.subscription_id).status == "replaced"
        assert BeelineCredentials.objects.get().api_token == new_token


def test_sync_adds_updates_and_retires_abonents_keeping_their_rows(org, beeline_pbx):
    beeline_token_save(organization=org, token=beeline_pbx.token)
    with organization_scope(org):
        kept = Abonent.objects.get(phone="9161110001")
    beeline_pbx.abonents.filter(phone="9161110003").delete()
    beeline_pbx.abonents.filter(phone="9161110001").update(last_name="Иванов")
    abonent_add(pbx=beeline_pbx, phone="9161110004", last_name="Новиков")
    beeline_pbx.numbers.filter(phone="4950000002").delete()
    assert pbx_sync(organization=org) == (3, 1)
    phones = [a.phone for a in abonents_for(organization=org)]
    assert phones == ["9161110001", "9161110002", "9161110004"]
    with organization_scope(org):
        renamed = Abonent.objects.get(phone="9161110001")
        assert renamed.pk == kept.pk and renamed.last_name == "Иванов"
        assert Abonent.objects.get(phone="9161110003").active is False
        assert [n.phone for n in PbxNumber.objects.all()] == ["4950000001"]


def test_sync_with_a_revoked_token_flags_the_connection(org, beeline_pbx):
    beeline_token_save(organization=org, token=beeline_pbx.token)
    Pbx.objects.filter(pk=beeline_pbx.pk).update(token="aaaaaaaa-0000-4000-8000-000000000000")
    with pytest.raises(BeelineTokenRejected):
        pbx_sync(organization=org)
    health = pbx_health(organization=org)
    assert not health.token_valid and health.last_error
    with organization_scope(org):
        assert AuditEntry.objects.filter(kind="beeline.sync_failed", level="error").exists()


def test_daily_sync_task_refreshes_every_connected_organization(org, beeline_pbx):
    from pbx.tasks import pbx_sync_all

    beeline_token_save(organization=org, token=beeline_pbx.token)
    abonent_add(pbx=beeline_pbx, phone="9161110009", last_name="Поздний")
    assert pbx_sync_all() == 1  # eager in tests: the fanned-out task ran
    assert "9161110009" in [a.phone for a in abonents_for(organization=org)]


@pytest.mark.parametrize(("status", "retried"), [(429, True), (503, True), (400, False)])
def test_sync_task_retries_transient_failures_only(org, beeline_pbx, status, retried):
    from celery.exceptions import Retry

    from pbx.tasks import pbx_sync_task

    beeline_token_save(organization=org, token=beeline_pbx.token)
    # More failures than the client's own read retries (two): the task decides.
    faults_set(pbx=beeline_pbx, fail_next=3, fail_status=status)
    if retried:
        with pytest.raises(Retry):  # (tests run tasks eagerly and propagate)
            pbx_sync_task.apply((org.pk,))
    else:
        pbx_sync_task.apply((org.pk,))  # refused for good: logged, not retried
