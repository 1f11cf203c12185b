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


def test_quarantined_events_have_their_filter(admin_client, org, client):
    from pbx.events import events_process
    from pbx.models import PbxEvent
    from pbx.testing import credentials_make
    from pbx.tests.xsi_fixtures import fixture_body

    secret = credentials_make(org).webhook_secret
    good = fixture_body("inbound_missed/01_received")
    bad = fixture_body("inbound_missed/02_released").replace(
        "<xsi:releaseTime>", "<xsi:releaseTime>9999999"
    )
    for body in (good, bad):
        client.generic(
            "POST", f"/beeline/events/{secret}", data=body, content_type="application/xml"
        )
    with organization_scope(org):
        pks = list(PbxEvent.objects.values_list("pk", flat=True))
        events_process(event_pks=pks)
        bad_event = PbxEvent.objects.get(quarantined_at__isnull=False)
        good_event = PbxEvent.objects.get(quarantined_at__isnull=True)
    changelist = reverse("admin:pbx_pbxevent_changelist")
    page = admin_client.get(changelist + "?quarantined=yes").content.decode()
    assert f"/{bad_event.pk}/change/" in page and f"/{good_event.pk}/change/" not in page
    page = admin_client.get(changelist + "?quarantined=no").content.decode()
    assert f"/{good_event.pk}/change/" in page and f"/{bad_event.pk}/change/" not in page
