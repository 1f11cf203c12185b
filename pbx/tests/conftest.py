from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from django.test import Client

from integration.models import Organization
from integration.tenancy import organization_scope
from pbx.models import Abonent, BeelineCredentials, PbxNumber
from pbx.services import webhook_secret_hash
from pbx.tests.xsi_fixtures import fixture_body

A = "9610387977@ufa.vo.ims.mnc099.mcc250.3gppnetwork.org"
B = "SIP00SLQU00A0J@ip.beeline.ru"
C = "9215453939@vol.nw.ims.mnc099.mcc250.3gppnetwork.org"


def credentials_make(organization: Organization, *, token: str = "") -> BeelineCredentials:
    """Credentials written directly (no Beeline call): for tests of the webhook alone."""
    secret = secrets.token_urlsafe(32)
    with organization_scope(organization):
        return BeelineCredentials.objects.create(
            organization=organization,
            api_token=token or "00000000-0000-4000-8000-000000000000",
            webhook_secret=secret,
            webhook_secret_hash=webhook_secret_hash(secret),
        )


@pytest.fixture
def creds(org: Organization) -> BeelineCredentials:
    credentials = credentials_make(org)
    with organization_scope(org):
        for user_id, phone, name in ((A, "9610387977", "Анна"), (B, "9031234567", "Борис"),
                                     (C, "9215453939", "Вера")):  # fmt: skip
            Abonent.objects.create(organization=org, user_id=user_id, phone=phone, first_name=name)
        PbxNumber.objects.create(
            organization=org, number_id="4951234567@mpbx", phone="4951234567", name="Продажи"
        )
    return credentials


XML = "application/xml; charset=UTF-8"


@pytest.fixture
def post_event(client: Client) -> Callable[..., object]:
    def post(
        secret: str, body: str | bytes, *, content_type: str = XML, suffix: str = ""
    ) -> object:
        return client.generic(
            "POST", f"/beeline/events/{secret}{suffix}", data=body, content_type=content_type
        )

    return post


@pytest.fixture
def post_fixture(post_event: Callable[..., object]) -> Callable[[str, str], object]:
    def post(secret: str, name: str) -> object:
        return post_event(secret, fixture_body(name))

    return post
