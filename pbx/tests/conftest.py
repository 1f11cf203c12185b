from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from core.models import Organization
from core.tenancy import organization_scope
from pbx.models import Abonent, BeelineCredentials, PbxNumber
from pbx.testing import A, B, C, credentials_make
from pbx.tests.xsi_fixtures import fixture_body


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
