"""ICR in the emulated PBX: per-rule results are kept, and the call simulator rings the rule's
extension first for a routed client calling a number with ICR on."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from django.test import Client

from sandbox.beeline.models import IcrResult, Number
from sandbox.beeline.services import call_simulate

CLIENT = "+79031234567"
MARIA = "9161110002@ip.beeline.ru"  # extension 202 in the test PBX


@pytest.fixture
def portal(beeline_pbx):
    session = requests.Session()
    session.headers["X-MPBX-API-AUTH-TOKEN"] = beeline_pbx.token

    def call(method: str, path: str, **kwargs):
        return session.request(method, settings.BEELINE_API_URL + path, timeout=5, **kwargs)

    return call


@pytest.fixture
def routed(portal):
    assert portal("PUT", "/icr/numbers", json=["+74950000001"]).json()[0]["status"] == "SUCCESS"
    rule = {"inboundNumber": CLIENT, "extension": "202"}
    assert portal("POST", "/icr/route", json=[rule]).json()[0]["status"] == "SUCCESS"


def test_every_rule_result_is_kept_with_beelines_reason(portal, beeline_pbx):
    portal(
        "POST",
        "/icr/route",
        json=[
            {"inboundNumber": CLIENT, "extension": "201"},
            {"inboundNumber": "+79035550000", "extension": "999"},
        ],
    )
    portal("DELETE", "/icr/numbers", json=["+74950000077"])

    rows = list(IcrResult.objects.filter(pbx=beeline_pbx).order_by("id"))
    assert [(r.action, r.inbound_number, r.extension, r.status) for r in rows] == [
        ("route add", CLIENT, "201", "SUCCESS"),
        ("route add", "+79035550000", "999", "FAULT"),
        ("numbers disable", "+74950000077", "", "FAULT"),
    ]
    assert rows[1].error_code == "ExtensionNotFound" and "999" in rows[1].description
    page = Client().get(f"/sandbox/beeline/pbx/{beeline_pbx.pk}/").content.decode()
    assert "ExtensionNotFound" in page and "Маршрутизация ICR" in page


@pytest.mark.parametrize("scenario", ["inbound_answered", "inbound_group_answered"])
def test_a_routed_client_rings_the_rules_extension_first(beeline_pbx, routed, scenario):
    call = call_simulate(
        pbx=beeline_pbx,
        scenario=scenario,
        abonent_phone="9161110001",  # would ring first without the rule
        external_phone="89031234567",  # the rule's number, written another way
        via_number="4950000001",
    )

    assert call.routed_extension == "202"
    assert call.ringing_order[0] == MARIA
    (record,) = call.records  # she is the one who answered
    assert record.abonent.user_id == MARIA


def test_no_rule_no_icr_number_or_outbound_means_normal_ringing(beeline_pbx, routed, portal):
    other_client = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone="+79030000000",
        via_number="4950000001",
    )
    other_number = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        via_number="4950000002",  # ICR is off on this number
    )
    outbound = call_simulate(
        pbx=beeline_pbx,
        scenario="outbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
    )
    for call in (other_client, other_number, outbound):
        assert call.routed_extension == ""
        assert call.ringing_order[0] == "9161110001@ip.beeline.ru"
    portal("DELETE", "/icr/numbers", json=["4950000001"])
    assert not Number.objects.get(pbx=beeline_pbx, phone="4950000001").icr_enabled
    after = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        via_number="4950000001",
    )
    assert after.routed_extension == ""
