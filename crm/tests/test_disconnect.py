from __future__ import annotations

import pytest
from django.test import Client

from core.models import AuditEntry, Organization
from core.tenancy import organization_scope
from crm.models import AmoCredentials
from crm.services import amo_disconnect_signature
from crm.signals import amo_disconnected
from sandbox.amocrm.services import faults_set, tokens_revoke, uninstall_run


def _creds_exist(org: Organization) -> bool:
    with organization_scope(org):
        return AmoCredentials.objects.filter(organization=org).exists()


def test_uninstall_from_amocrm_disconnects_and_drops_tokens(
    installed, django_capture_on_commit_callbacks
):
    org = installed.organization
    received: list[int] = []

    def on_disconnect(sender, organization_id, **kwargs):
        received.append(organization_id)

    amo_disconnected.connect(on_disconnect)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            uninstall_run(account=installed.account)
    finally:
        amo_disconnected.disconnect(on_disconnect)

    org.refresh_from_db()
    assert org.status == Organization.Status.DISCONNECTED
    assert org.disconnected_at is not None
    assert not _creds_exist(org)
    assert received == [org.pk]
    # the outsider is untouched
    outsider = Organization.objects.exclude(pk=org.pk).get()
    assert outsider.status == Organization.Status.ACTIVE


@pytest.mark.parametrize("method", ["get", "post"])
def test_disconnect_with_good_signature(installed, method, settings):
    org = installed.organization
    tokens_revoke(account=installed.account)  # what amoCRM does before it calls the hook
    params = {
        "account_id": str(installed.account.pk),
        "client_uuid": settings.AMOCRM_CLIENT_ID,
        "signature": amo_disconnect_signature(
            client_uuid=settings.AMOCRM_CLIENT_ID, account_id=installed.account.pk
        ),
    }

    response = getattr(Client(), method)("/amocrm/disconnect", params)

    assert response.status_code == 200
    org.refresh_from_db()
    assert org.status == Organization.Status.DISCONNECTED
    assert not _creds_exist(org)


@pytest.mark.parametrize(
    "tamper",
    [
        {"signature": "0" * 64},
        {"signature": ""},
        {"client_uuid": "someone-else"},
        {"account_id": "999"},
    ],
)
def test_disconnect_with_bad_signature_is_403_and_changes_nothing(installed, settings, tamper):
    org = installed.organization
    params = {
        "account_id": str(installed.account.pk),
        "client_uuid": settings.AMOCRM_CLIENT_ID,
        "signature": amo_disconnect_signature(
            client_uuid=settings.AMOCRM_CLIENT_ID, account_id=installed.account.pk
        ),
    }
    params.update(tamper)

    response = Client().get("/amocrm/disconnect", params)

    assert response.status_code == 403
    org.refresh_from_db()
    assert org.status == Organization.Status.ACTIVE
    assert _creds_exist(org)


def test_disconnect_as_json_post(installed, settings):
    tokens_revoke(account=installed.account)
    body = {
        "account_id": installed.account.pk,
        "client_uuid": settings.AMOCRM_CLIENT_ID,
        "signature": amo_disconnect_signature(
            client_uuid=settings.AMOCRM_CLIENT_ID, account_id=installed.account.pk
        ),
    }
    response = Client().post("/amocrm/disconnect", body, content_type="application/json")

    assert response.status_code == 200
    installed.organization.refresh_from_db()
    assert installed.organization.status == Organization.Status.DISCONNECTED


def _hook(installed, settings) -> dict[str, str]:
    return {
        "account_id": str(installed.account.pk),
        "client_uuid": settings.AMOCRM_CLIENT_ID,
        "signature": amo_disconnect_signature(
            client_uuid=settings.AMOCRM_CLIENT_ID, account_id=installed.account.pk
        ),
    }


def test_a_replayed_hook_does_not_disconnect_while_amocrm_still_accepts_us(installed, settings):
    """The hook's signature never changes: a disconnect URL seen once could be replayed for
    ever. amoCRM's word on our tokens decides, not the signature."""
    org = installed.organization

    response = Client().get("/amocrm/disconnect", _hook(installed, settings))

    assert response.status_code == 200
    assert response.content == b"refused"
    org.refresh_from_db()
    assert org.status == Organization.Status.ACTIVE
    assert _creds_exist(org)
    with organization_scope(org):
        assert AuditEntry.objects.filter(kind="amo.disconnect_refused").exists()


def test_a_hook_amocrm_cannot_confirm_yet_is_kept_pending_then_completed(installed, settings):
    from crm.services import amo_disconnects_confirm_due

    org = installed.organization
    tokens_revoke(account=installed.account)
    faults_set(account=installed.account, down=True)

    response = Client().get("/amocrm/disconnect", _hook(installed, settings))

    assert response.content == b"pending"
    org.refresh_from_db()
    assert org.status == Organization.Status.ACTIVE
    assert _creds_exist(org)  # tokens are kept until amoCRM confirms
    assert amo_disconnects_confirm_due() == []  # still unreachable: still pending

    faults_set(account=installed.account)  # amoCRM is back
    assert amo_disconnects_confirm_due() == [org.pk]

    org.refresh_from_db()
    assert org.status == Organization.Status.DISCONNECTED
    assert not _creds_exist(org)
    outsider = Organization.objects.exclude(pk=org.pk).get()
    assert outsider.status == Organization.Status.ACTIVE


def test_pending_disconnect_is_dropped_when_amocrm_says_access_still_works(installed, settings):
    from crm.services import amo_disconnects_confirm_due

    org = installed.organization
    faults_set(account=installed.account, down=True)
    Client().get("/amocrm/disconnect", _hook(installed, settings))
    faults_set(account=installed.account)

    assert amo_disconnects_confirm_due() == []

    org.refresh_from_db()
    assert org.status == Organization.Status.ACTIVE
    with organization_scope(org):
        assert AmoCredentials.objects.get().disconnect_requested_at is None
