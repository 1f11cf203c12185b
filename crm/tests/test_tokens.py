from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from core.testing import in_parallel
from crm import services, tasks
from crm.errors import AmoAuthError
from crm.models import AmoCredentials
from crm.selectors import amo_health
from crm.testing import amo_account_make, install
from sandbox.amocrm.models import TokenPair
from sandbox.amocrm.services import access_token_expire, tokens_revoke


def _creds(org: Organization) -> AmoCredentials:
    with organization_scope(org):
        return AmoCredentials.objects.get(organization=org)


def test_expired_access_token_is_refreshed_once_and_the_request_succeeds(installed):
    org = installed.organization
    before = _creds(org)
    access_token_expire(account=installed.account)

    account = services.amo_client(organization=org).account()

    assert account.id == installed.account.pk
    after = _creds(org)
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    assert after.refreshed_at > before.refreshed_at
    assert TokenPair.objects.filter(account=installed.account).count() == 2


def test_token_close_to_expiry_is_refreshed_before_use(installed):
    org = installed.organization
    with organization_scope(org):
        AmoCredentials.objects.filter(organization=org).update(
            expires_at=timezone.now() + timedelta(minutes=1)
        )
    services.amo_client(organization=org).account()

    assert _creds(org).expires_at > timezone.now() + timedelta(hours=23)


@pytest.mark.django_db(transaction=True)
def test_ten_workers_meeting_an_expired_token_cause_exactly_one_refresh(sandbox_http):
    account = amo_account_make()
    org = install(account)
    pairs_before = TokenPair.objects.filter(account=account).count()
    access_token_expire(account=account)

    def account_id() -> int:
        client = services.amo_client(organization=Organization.objects.get(pk=org.pk))
        return client.account().id

    results = in_parallel(account_id, threads=10)

    assert results == [account.pk] * 10
    assert TokenPair.objects.filter(account=account).count() == pairs_before + 1
    assert _creds(org).status == AmoCredentials.Status.OK


def test_revoked_refresh_token_marks_needs_reauthorization_without_looping(installed, sandbox_http):
    org = installed.organization
    tokens_revoke(account=installed.account)

    with pytest.raises(AmoAuthError):
        services.amo_client(organization=org).account()

    org.refresh_from_db()
    assert org.status == Organization.Status.NEEDS_REAUTH
    assert _creds(org).status == AmoCredentials.Status.NEEDS_REAUTH
    health = amo_health(organization=org, reauthorize_url="https://x/oauth")
    assert health.needs_reauth and not health.token_valid
    assert health.reauthorize_url == "https://x/oauth"
    # later calls fail fast, without another refresh attempt
    sent = len(sandbox_http.calls)
    with pytest.raises(AmoAuthError):
        services.amo_client(organization=org).account()
    assert len(sandbox_http.calls) == sent


def test_reinstall_after_revocation_makes_the_organization_active_again(installed):
    org = installed.organization
    tokens_revoke(account=installed.account)
    with pytest.raises(AmoAuthError):
        services.amo_tokens_refresh(organization=org, force=True)

    install(installed.account)

    org.refresh_from_db()
    assert org.status == Organization.Status.ACTIVE
    assert services.amo_client(organization=org).account().id == installed.account.pk


def test_beat_refreshes_tokens_due_soon_and_leaves_fresh_ones(installed, outsider):
    other = install(amo_account_make("Второй аккаунт"))
    org = installed.organization
    with organization_scope(org):
        AmoCredentials.objects.filter(organization=org).update(
            expires_at=timezone.now() + timedelta(hours=2)
        )
    fresh_token = _creds(other).refresh_token
    old_token = _creds(org).refresh_token

    queued = tasks.amo_tokens_refresh_due.delay().get()

    assert queued == 1
    assert _creds(org).refresh_token != old_token
    assert _creds(org).expires_at > timezone.now() + timedelta(hours=23)
    assert _creds(other).refresh_token == fresh_token


def test_beat_schedule_runs_the_refresh(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["amo-tokens-refresh-due"]
    assert entry["task"] == "crm.tasks.amo_tokens_refresh_due"
