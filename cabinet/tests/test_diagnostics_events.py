"""«Диагностика» shows the malformed Beeline events set aside (quarantined), with the reason,
to their own organization only."""

from __future__ import annotations

import re

from django.test import Client
from django.urls import reverse

from cabinet.testing import login_with_key
from core.tenancy import scopes_disabled
from pbx.events import events_process
from pbx.models import PbxEvent
from pbx.testing import credentials_make
from pbx.tests.xsi_fixtures import fixture_body

BAD_TIME = "99999999999999999"


def _post(client: Client, secret: str, body: str) -> None:
    response = client.generic(
        "POST", f"/beeline/events/{secret}", data=body, content_type="application/xml"
    )
    assert response.status_code == 200


def _spoiled_release() -> str:
    body = fixture_body("inbound_missed/02_released")
    release = re.search(r"releaseTime>(\d+)<", body)
    assert release is not None
    return body.replace(release.group(0), f"releaseTime>{BAD_TIME}<")


def _check(page: str, key: str) -> str:
    match = re.search(
        rf'<li class="check[^"]*" data-check="{key}".*?</li>\s*(?=<li|</ul>)', page, re.S
    )
    assert match is not None
    return match.group(0)


def test_quarantined_events_are_listed_with_the_reason_for_their_organization_only(
    client: Client, org, outsider, monkeypatch
):
    monkeypatch.setattr("pbx.events.event_publisher.event_stored", lambda pk: None)
    ours, theirs = credentials_make(org), credentials_make(outsider)
    _post(client, ours.webhook_secret, fixture_body("inbound_missed/01_received"))
    _post(client, ours.webhook_secret, _spoiled_release())
    _post(client, theirs.webhook_secret, fixture_body("inbound_answered/01_received"))
    with scopes_disabled():
        events_process(event_pks=list(PbxEvent.objects.values_list("pk", flat=True)))
        tracking_id = PbxEvent.objects.get(
            organization=org, quarantined_at__isnull=False
        ).ext_tracking_id

    login_with_key(client, org)
    page = client.get(reverse("cabinet:diagnostics", args=[org.pk])).content.decode()
    check = _check(page, "beeline_events")
    assert 'data-status="warning"' in check
    assert "Отложены как ошибочные" in check
    assert "CallReleasedEvent" in check and tracking_id in check
    assert f"releaseTime is not a time in epoch milliseconds: {BAD_TIME}" in check

    # The other organization, with its own key, sees nothing of it.
    other = Client()
    login_with_key(other, outsider)
    page = other.get(reverse("cabinet:diagnostics", args=[outsider.pk])).content.decode()
    check = _check(page, "beeline_events")
    assert 'data-status="ok"' in check
    assert BAD_TIME not in page and tracking_id not in page
    # … nor can it open the first organization's page.
    assert other.get(reverse("cabinet:diagnostics", args=[org.pk])).status_code in (403, 404)
