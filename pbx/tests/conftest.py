from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from core.models import Organization
from core.tenancy import organization_scope
from pbx import signals
from pbx.connection import beeline_token_save
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


@pytest.fixture
def connected(org: Organization, beeline_pbx: Any, settings: Any) -> Organization:
    """``org`` with its token saved on the Beeline emulator (abonents, numbers, subscription)."""
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    beeline_token_save(organization=org, token=beeline_pbx.token)
    return org


@pytest.fixture
def received(db: None) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Collects what pbx tells the pipeline."""
    got: dict[str, list[dict[str, Any]]] = {"ringing": [], "finished": []}

    def on_ringing(sender: object, **kwargs: Any) -> None:
        got["ringing"].append(kwargs)

    def on_finished(sender: object, **kwargs: Any) -> None:
        got["finished"].append(kwargs)

    signals.call_ringing.connect(on_ringing, weak=False)
    signals.call_finished.connect(on_finished, weak=False)
    yield got
    signals.call_ringing.disconnect(on_ringing)
    signals.call_finished.disconnect(on_finished)
