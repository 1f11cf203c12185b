"""Record links and deletion, the recording switch, ICR, forwarding, and Beeline-format errors
for every path and method the emulated portal does not serve."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings
from django.test import Client

from sandbox.beeline import api
from sandbox.beeline.models import IcrRoute, Number
from sandbox.beeline.services import call_simulate, pbx_create

CLIENT = "+79031234567"
USER = "9161110001@ip.beeline.ru"


@pytest.fixture
def portal(beeline_pbx):
    class Portal(requests.Session):
        def request(self, method, url, *args, **kwargs):  # type: ignore[override]
            kwargs.setdefault("timeout", 5)
            return super().request(method, settings.BEELINE_API_URL + url, *args, **kwargs)

    session = Portal()
    session.headers["X-MPBX-API-AUTH-TOKEN"] = beeline_pbx.token
    return session


@pytest.fixture
def other_pbx(sandbox_http):
    """Another company: must never see or change the first one's state."""
    return pbx_create(
        name="Чужая АТС",
        abonents=[{"phone": "9262220001", "last_name": "Чужой", "extension": "201"}],
        numbers=[{"phone": "+74950000009"}],
    )


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"errorCode", "description"} and body["description"]
    return body


def answered(pbx):
    return call_simulate(
        pbx=pbx, scenario="inbound_answered", abonent_phone="9161110001", external_phone=CLIENT
    )


# --- errors in Beeline's format ----------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("with_token", [False, True])
def test_unknown_paths_answer_beeline_json(beeline_pbx, settings, debug, with_token):
    settings.DEBUG = debug
    headers = {"HTTP_X_MPBX_API_AUTH_TOKEN": beeline_pbx.token} if with_token else {}
    client = Client(**headers)
    for path in ("vc", "abonents/201/agent", "v3/records", "records/1/2/3/4", "icr"):
        response = client.get(f"/sandbox/beeline/{path}")
        body = error(response, 404)
        assert body["errorCode"] == "NotFound", path
    assert error(client.post("/sandbox/beeline/nope", {}, content_type="application/json"), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/icr/numbers"),
        ("patch", "/icr/route"),
        ("post", "/abonents/201/recording"),
        ("get", "/abonents/201/cfs/7300001"),
        ("put", "/records/1/reference"),
        ("post", "/v2/records/431700001"),
    ],
)
def test_wrong_methods_answer_405_json(portal, method, path):
    response = getattr(portal, method)(path)
    assert error(response, 405)["errorCode"] == "MethodNotAllowed"
    assert response.headers["Allow"]


# --- records: reference links and deletion ---------------------------------------------------


def test_reference_link_downloads_without_the_token_until_it_expires(
    portal, beeline_pbx, settings, monkeypatch
):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    call = answered(beeline_pbx)
    (record,) = portal.get("/records").json()

    by_id = portal.get(f"/records/{record['id']}/reference").json()
    by_tracking = portal.get(f"/records/{call.ext_tracking_id}/{USER}/reference").json()
    v2 = portal.get(f"/v2/records/{record['id']}/reference").json()

    audio = portal.get(f"/v2/records/{record['id']}/download").content
    for link in (by_id, by_tracking, v2):
        assert set(link) == {"url"}
        assert link["url"].startswith(settings.BEELINE_API_URL + "/")
        response = requests.get(link["url"], timeout=5)  # no token header
        assert response.status_code == 200 and response.content == audio
    ranged = requests.get(by_id["url"], headers={"Range": "bytes=0-9"}, timeout=5)
    assert (ranged.status_code, ranged.content) == (206, audio[:10])

    monkeypatch.setattr(api, "REFERENCE_LIFETIME_SECONDS", -1)
    assert error(requests.get(by_id["url"], timeout=5), 404)["errorCode"] == "RecordNotFound"
    assert error(requests.get(by_id["url"] + "x", timeout=5), 404)


def test_reference_of_a_record_not_ready_or_of_another_pbx(
    portal, beeline_pbx, other_pbx, settings
):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 60
    call = answered(beeline_pbx)
    body = error(portal.get(f"/records/{call.ext_tracking_id}/{USER}/reference"), 404)
    assert body["errorCode"] == "RecordNotFound"

    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    answered(beeline_pbx)
    (record,) = portal.get("/records").json()
    outsider = {"X-MPBX-API-AUTH-TOKEN": other_pbx.token}
    response = requests.get(
        f"{settings.BEELINE_API_URL}/records/{record['id']}/reference", headers=outsider, timeout=5
    )
    assert error(response, 404)["errorCode"] == "RecordNotFound"


def test_record_delete_is_204_then_gone(portal, beeline_pbx, other_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    answered(beeline_pbx)
    (record,) = portal.get("/records").json()
    outsider = {"X-MPBX-API-AUTH-TOKEN": other_pbx.token}
    foreign = requests.delete(
        f"{settings.BEELINE_API_URL}/v2/records/{record['id']}", headers=outsider, timeout=5
    )
    error(foreign, 404)

    response = portal.delete(f"/v2/records/{record['id']}")

    assert (response.status_code, response.content) == (204, b"")
    error(portal.get(f"/v2/records/{record['id']}"), 404)
    error(portal.delete(f"/v2/records/{record['id']}"), 404)
    assert portal.get("/records").json() == []


# --- recording switch --------------------------------------------------------------------------


def test_recording_switch_decides_whether_calls_are_recorded(portal, beeline_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    assert portal.delete("/abonents/201/recording").status_code == 200
    assert portal.get("/abonents/9161110001/recording").json() == "OFF"
    answered(beeline_pbx)
    assert portal.get("/records").json() == []

    assert portal.put(f"/abonents/{USER}/recording").status_code == 200
    assert portal.get("/abonents/201/recording").json() == "ON"
    answered(beeline_pbx)
    assert len(portal.get("/records").json()) == 1
    assert error(portal.put("/abonents/999/recording"), 404)["errorCode"] == "AbonentNotFound"


# --- ICR --------------------------------------------------------------------------------------


def test_icr_numbers_per_item_results(portal, beeline_pbx, other_pbx):
    results = portal.put("/icr/numbers", json=["84950000001", "+74950000009", "abc"]).json()
    assert [(r["phoneNumber"], r["status"]) for r in results] == [
        ("84950000001", "SUCCESS"),
        ("+74950000009", "FAULT"),  # the other company's number
        ("abc", "FAULT"),
    ]
    assert results[1]["error"]["errorCode"] == "NumberNotFound"
    assert portal.get("/icr/numbers").json() == [
        {"numberId": "4950000001@mpbx.ip.beeline.ru", "phone": "4950000001"}
    ]
    assert not Number.objects.get(pbx=other_pbx).icr_enabled
    assert portal.delete("/icr/numbers", json=["+74950000001"]).json()[0]["status"] == "SUCCESS"
    assert portal.get("/icr/numbers").json() == []
    for bad in ({"phones": []}, [], "x"):
        error(portal.put("/icr/numbers", json=bad), 400)
    error(portal.put("/icr/numbers", data=b"[nope"), 400)


def test_icr_rules_add_update_delete_with_per_rule_results(portal, beeline_pbx, other_pbx):
    added = portal.post(
        "/icr/route",
        json=[
            {"inboundNumber": CLIENT, "extension": "201"},
            {"inboundNumber": "89031234567", "extension": "202"},  # the same client number
            {"inboundNumber": "+79035550000", "extension": "999"},
            {"inboundNumber": "12", "extension": "201"},
            "junk",
        ],
    ).json()

    assert [r["status"] for r in added] == ["SUCCESS", "FAULT", "FAULT", "FAULT", "FAULT"]
    assert [r["error"]["errorCode"] for r in added[1:]] == [
        "RuleAlreadyExists",
        "ExtensionNotFound",
        "BadRequest",
        "BadRequest",
    ]
    assert added[0]["rule"] == {"inboundNumber": CLIENT, "extension": "201"}
    assert portal.get("/icr/route").json() == [{"inboundNumber": CLIENT, "extension": "201"}]

    updated = portal.put(
        "/icr/route",
        json=[
            {"inboundNumber": "9031234567", "extension": "203"},
            {"inboundNumber": "+79035550000", "extension": "201"},
        ],
    ).json()
    assert [r["status"] for r in updated] == ["SUCCESS", "FAULT"]
    assert updated[1]["error"]["errorCode"] == "RuleNotFound"
    assert portal.get("/icr/route").json() == [{"inboundNumber": CLIENT, "extension": "203"}]

    wrong_ext = portal.delete("/icr/route", json=[{"inboundNumber": CLIENT, "extension": "201"}])
    assert wrong_ext.json()[0]["status"] == "FAULT"
    gone = portal.delete("/icr/route", json=[{"inboundNumber": CLIENT}]).json()
    assert gone[0]["status"] == "SUCCESS" and portal.get("/icr/route").json() == []
    assert not IcrRoute.objects.filter(pbx=other_pbx).exists()
    error(portal.post("/icr/route", json={"inboundNumber": CLIENT}), 400)


# --- forwarding -------------------------------------------------------------------------------


def test_cfb_validation(portal):
    assert portal.get("/abonents/201/cfb").json() == {"status": "OFF", "cfb": {}}
    for bad in (
        {},
        {"forwardBusyPhone": "call me"},
        {"forwardNotAnswerTimeout": "600"},
        {"forwardEverything": "9031234567"},
    ):
        error(portal.put("/abonents/201/cfb", json=bad), 400)
    assert portal.put("/abonents/201/cfb", json={"forwardAllCallsPhone": CLIENT}).ok
    assert portal.get("/abonents/201/cfb").json() == {
        "status": "ON",
        "cfb": {"forwardAllCallsPhone": CLIENT},
    }


def test_cfs_rules_validation_and_isolation(portal, other_pbx):
    rule = {
        "name": "VIP",
        "forwardToPhone": "9035550003",
        "schedule": "ROUND_THE_CLOCK",
        "phoneList": [CLIENT],
    }
    for key, value in (("schedule", "ALWAYS"), ("phoneList", []), ("forwardToPhone", "x")):
        error(portal.post("/abonents/201/cfs", json={**rule, key: value}), 400)
    rule_id = portal.post("/abonents/201/cfs", json=rule).json()
    assert rule_id.isdigit()
    assert portal.get("/abonents/202/cfs").json() == {"isCfsServiceEnabled": False, "ruleList": []}
    error(portal.put(f"/abonents/202/cfs/{rule_id}", json=rule), 404)
    error(portal.put("/abonents/201/cfs", json={"on": True}), 400)
    outsider = {"X-MPBX-API-AUTH-TOKEN": other_pbx.token}
    foreign = requests.get(
        f"{settings.BEELINE_API_URL}/abonents/201/cfs", headers=outsider, timeout=5
    )
    assert foreign.json()["ruleList"] == []
