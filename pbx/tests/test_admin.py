from __future__ import annotations

import pytest
from django.urls import reverse

from core.tenancy import organization_scope
from pbx.connection import beeline_token_save
from pbx.models import BeelineCredentials, Subscription


@pytest.fixture
def connected(org, beeline_pbx, settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    beeline_token_save(organization=org, token=beeline_pbx.token)
    with organization_scope(org):
        return BeelineCredentials.objects.get()


@pytest.mark.parametrize(
    "model", ["beelinecredentials", "abonent", "pbxnumber", "subscription", "pbxevent", "pbxcall"]
)
def test_changelists_render(admin_client, connected, model):
    response = admin_client.get(reverse(f"admin:pbx_{model}_changelist") + "?q=9161")
    assert response.status_code == 200


def test_credentials_page_never_shows_the_token(admin_client, connected, beeline_pbx):
    url = reverse("admin:pbx_beelinecredentials_change", args=[connected.pk])
    page = admin_client.get(url).content.decode()
    assert beeline_pbx.token not in page
    assert connected.webhook_secret not in page
    assert beeline_pbx.token[:4] in page  # masked: enough to tell two tokens apart
    listing = admin_client.get(reverse("admin:pbx_beelinecredentials_changelist"))
    assert beeline_pbx.token not in listing.content.decode()


def test_resync_and_renew_actions(admin_client, connected, org):
    changelist = reverse("admin:pbx_beelinecredentials_changelist")
    with organization_scope(org):
        before = Subscription.objects.get(status="active")
    for action in ("resync_abonents", "renew_subscription"):
        response = admin_client.post(
            changelist, {"action": action, "_selected_action": [connected.pk]}, follow=True
        )
        assert response.status_code == 200
    with organization_scope(org):
        after = Subscription.objects.get(status="active")
    assert after.pk != before.pk
