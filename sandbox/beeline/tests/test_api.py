"""Contract tests of the emulated portal API, through `requests` as a client would call it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from django.conf import settings

from sandbox.beeline import api, clock
from sandbox.beeline.models import ClickToCall, DeliveredEvent, Pbx
from sandbox.beeline.services import call_simulate, faults_set, subscription_create

CLIENT = "+79031234567"


@pytest.fixture
def portal(beeline_pbx):
    """A requests session for the PBX's API: ``portal.get("/abonents")``."""

    class Portal(requests.Session):
        def request(self, method, url, *args, **kwargs):  # type: ignore[override]
            kwargs.setdefault("timeout", 5)
            return super().request(method, settings.BEELINE_API_URL + url, *args, **kwargs)

    session = Portal()
    session.headers["X-MPBX-API-AUTH-TOKEN"] = beeline_pbx.token
    return session


def _error(response: requests.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"errorCode", "description"} and body["description"]
    return body


# --- Authentication and abonents -------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-MPBX-API-AUTH-TOKEN": "6b1c8a8e-0000-0000"}])
def test_unknown_or_missing_token_is_401(beeline_pbx, headers):
    response = requests.get(f"{settings.BEELINE_API_URL}/abonents", headers=headers, timeout=5)
    _error(response, 401)


def test_token_of_another_pbx_sees_only_its_own_abonents(portal, beeline_pbx):
    from sandbox.beeline.services import pbx_create

    other = pbx_create(
        name="Other", abonents=[{"phone": "9260000001", "last_name": "Чужой"}], numbers=[]
    )
    mine = portal.get("/abonents").json()
    theirs = requests.get(
        f"{settings.BEELINE_API_URL}/abonents",
        headers={"X-MPBX-API-AUTH-TOKEN": other.token},
        timeout=5,
    ).json()
    assert [a["phone"] for a in mine] == ["9161110001", "9161110002", "9161110003"]
    assert [a["phone"] for a in theirs] == ["9260000001"]
    _error(portal.get("/abonents/9260000001"), 404)


def test_abonents_have_the_documented_fields(portal):
    response = portal.get("/abonents")
    assert response.status_code == 200
    assert response.json()[0] == {
        "userId": "9161110001@ip.beeline.ru",
        "phone": "9161110001",
        "firstName": "Иван",
        "lastName": "Петров",
        "extension": "201",
    }


@pytest.mark.parametrize(
    "pattern", ["9161110002@ip.beeline.ru", "9161110002", "+79161110002", "202"]
)
def test_abonent_by_user_id_phone_or_extension(portal, pattern):
    response = portal.get(f"/abonents/{pattern}")
    assert response.status_code == 200
    assert response.json()["userId"] == "9161110002@ip.beeline.ru"


def test_unknown_abonent_is_404(portal):
    _error(portal.get("/abonents/9990000000"), 404)


def test_recording_service_state_is_a_bare_string(portal):
    assert portal.get("/abonents/201/recording").json() == "ON"


def test_numbers_list_incoming_numbers(portal):
    response = portal.get("/numbers")
    assert response.status_code == 200
    # numberId and phone are Beeline's confirmed fields; "multichannel" is the emulator's
    # GUESS of how the portal's «Многоканальные номера» would show (the product reads it when sent).
    assert response.json() == [
        {"numberId": "4950000001@mpbx.ip.beeline.ru", "phone": "4950000001", "multichannel": True},
        {"numberId": "4950000002@mpbx.ip.beeline.ru", "phone": "4950000002", "multichannel": False},
    ]
    assert portal.get("/numbers/4950000002").json()["phone"] == "4950000002"


def test_wrong_method_is_405_not_500(portal):
    _error(portal.post("/abonents"), 405)


# --- Subscriptions -----------------------------------------------------------------------------


def _subscribe(portal, **overrides):
    body = {
        "expires": 86400,
        "subscriptionType": "BASIC_CALL",
        "url": "https://beetel.test/beeline/events/s3cret",
    } | overrides
    return portal.put("/subscription", json=body)


def test_subscription_expiry_is_capped_and_the_response_says_so(portal, settings):
    settings.SANDBOX_BEELINE_MAX_SUBSCRIPTION = 3600
    response = _subscribe(portal, expires=86400)
    assert response.status_code == 200
    body = response.json()
    assert body["expires"] == 3600
    assert len(body["subscriptionId"]) == 36

    short = _subscribe(portal, expires=600).json()
    assert short["expires"] == 600


def test_subscription_get_then_delete(portal, monkeypatch):
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    created = _subscribe(portal, pattern="9161110001").json()
    sid = created["subscriptionId"]

    got = portal.get("/subscription", params={"subscriptionId": sid})
    assert got.status_code == 200
    assert got.json() == {
        "subscriptionId": sid,
        "targetType": "ABONENT",
        "targetId": "9161110001@ip.beeline.ru",
        "subscriptionType": "BASIC_CALL",
        "expires": 3600,
        "url": "https://beetel.test/beeline/events/s3cret",
    }
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(seconds=600))
    assert portal.get("/subscription", params={"subscriptionId": sid}).json()["expires"] == 3000

    assert portal.delete("/subscription", params={"subscriptionId": sid}).status_code == 200
    _error(portal.get("/subscription", params={"subscriptionId": sid}), 404)
    _error(portal.delete("/subscription", params={"subscriptionId": sid}), 404)


def test_expired_subscription_is_gone(portal, monkeypatch):
    sid = _subscribe(portal, expires=60).json()["subscriptionId"]
    later = clock.now() + timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    _error(portal.get("/subscription", params={"subscriptionId": sid}), 404)


def test_group_and_number_targets(portal):
    group = _subscribe(portal).json()["subscriptionId"]
    number = _subscribe(portal, pattern="4950000001").json()["subscriptionId"]
    assert portal.get("/subscription", params={"subscriptionId": group}).json()["targetType"] == (
        "GROUP"
    )
    assert portal.get("/subscription", params={"subscriptionId": number}).json()["targetType"] == (
        "NUMBER"
    )


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"url": None}, 400),
        ({"url": "ftp://x"}, 400),
        ({"subscriptionType": "EVERYTHING"}, 400),
        ({"expires": -5}, 400),
        ({"expires": "3600"}, 400),
        ({"pattern": "nobody"}, 404),
    ],
)
def test_bad_subscription_requests_are_4xx(portal, overrides, status):
    _error(_subscribe(portal, **overrides), status)


def test_subscription_body_must_be_json(portal):
    _error(portal.put("/subscription", data=b"<xml/>"), 400)
    _error(portal.get("/subscription"), 400)


# --- Click-to-call -------------------------------------------------------------------------


def test_click_to_call_logs_the_request_and_rings_the_abonent_first(
    portal, beeline_pbx, sandbox_http
):
    sent = []
    sandbox_http.add_callback(
        "POST",
        "https://hooks.sandbox.test/events",
        callback=lambda request: sent.append(request.body) or (200, {}, b""),
    )
    _subscribe(portal, url="https://hooks.sandbox.test/events")

    response = portal.post("/abonents/9161110001@ip.beeline.ru/call?phoneNumber=9031234567")

    assert response.status_code == 200
    ext_tracking_id = response.json()
    request = ClickToCall.objects.get(pbx=beeline_pbx)
    assert (request.phone_number, request.status_code) == ("9031234567", 200)
    assert request.ext_tracking_id == ext_tracking_id
    kinds = list(
        DeliveredEvent.objects.filter(ext_tracking_id=ext_tracking_id)
        .order_by("id")
        .values_list("event_type", flat=True)
    )
    assert kinds[0] == "CallOriginatedEvent"
    assert kinds.index("CallUpdatedEvent") < kinds.index("CallAnsweredEvent")
    assert len(sent) == len(kinds)
    assert b"Click-to-Dial" in sent[0] and b"tel:+79031234567" in sent[0]


def test_click_to_call_form_body_and_v2_path(portal, beeline_pbx):
    response = portal.post("/v2/abonents/202/call", data={"phoneNumber": "89031234567"})
    assert response.status_code == 200
    assert ClickToCall.objects.get().abonent.phone == "9161110002"


def test_click_to_call_errors_are_logged_too(portal, beeline_pbx):
    _error(portal.post("/abonents/202/call"), 400)
    _error(portal.post("/abonents/999/call?phoneNumber=9031234567"), 404)
    assert sorted(ClickToCall.objects.values_list("status_code", flat=True)) == [400, 404]


# --- Records ---------------------------------------------------------------------------------


def _answered_call(pbx, **kwargs):
    return call_simulate(
        pbx=pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        **kwargs,
    )


def test_record_is_not_ready_then_ready(portal, beeline_pbx, settings, monkeypatch):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 30
    call = _answered_call(beeline_pbx, talk_seconds=12)
    path = f"/v2/records/{call.ext_tracking_id}/9161110001@ip.beeline.ru/download"

    body = _error(portal.get(path), 404)
    assert body["errorCode"] == "RecordNotFound"

    later = clock.now() + timedelta(seconds=31)
    monkeypatch.setattr(clock, "now", lambda: later)
    response = portal.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content[:2] == b"\xff\xfb"
    assert len(response.content) > 40_000


def test_record_of_another_abonent_or_call_is_not_found(portal, beeline_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    call = _answered_call(beeline_pbx)
    _error(portal.get(f"/v2/records/{call.ext_tracking_id}/9161110002@ip.beeline.ru/download"), 404)
    _error(portal.get("/v2/records/00000000-0000-0000-0000-000000000000/x@y/download"), 404)


def test_range_requests_get_206(portal, beeline_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    call = _answered_call(beeline_pbx)
    path = f"/v2/records/{call.ext_tracking_id}/9161110001@ip.beeline.ru/download"
    whole = portal.get(path).content
    size = len(whole)

    part = portal.get(path, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{size}"

    tail = portal.get(path, headers={"Range": "bytes=-144"})
    assert (tail.status_code, tail.content) == (206, whole[-144:])
    rest = portal.get(path, headers={"Range": f"bytes={size - 10}-"})
    assert rest.content == whole[-10:]

    beyond = portal.get(path, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"


def test_records_list_filters_and_pages_by_id(portal, beeline_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    calls = [_answered_call(beeline_pbx) for _ in range(3)]
    call_simulate(
        pbx=beeline_pbx, scenario="outbound_answered", abonent_phone="202", external_phone=CLIENT
    )

    records = portal.get("/records").json()
    assert [r["externalId"] for r in records[:3]] == [c.ext_tracking_id for c in calls]
    first = records[0]
    assert first["phone"] == "9031234567"
    assert first["direction"] == "INBOUND"
    assert first["duration"] == 30_246
    assert first["abonent"]["userId"] == "9161110001@ip.beeline.ru"
    assert first["id"].isdigit() and first["fileSize"] > 0
    assert isinstance(first["date"], int) and first["date"] > 10**12

    after = portal.get("/records", params={"id": first["id"]}).json()
    assert [r["id"] for r in after] == [r["id"] for r in records[1:]]
    mine = portal.get("/records", params={"userId": "9161110002@ip.beeline.ru"}).json()
    assert [r["direction"] for r in mine] == ["OUTBOUND"]
    assert portal.get(f"/v2/records/{first['id']}").json() == first
    assert portal.get(f"/v2/records/{first['id']}/download").status_code == 200
    future = (clock.now() + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    assert portal.get("/records", params={"dateFrom": future}).json() == []
    _error(portal.get("/records", params={"dateFrom": "yesterday"}), 400)


# --- Statistics --------------------------------------------------------------------------------


def test_statistics_pages_and_row_shape(portal, beeline_pbx):
    for scenario in ("inbound_answered", "inbound_missed", "outbound_answered", "outbound_busy"):
        call_simulate(
            pbx=beeline_pbx, scenario=scenario, abonent_phone="201", external_phone=CLIENT
        )
    call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_group_missed",
        abonent_phone="202",
        external_phone=CLIENT,
    )

    page0 = portal.get("/v2/statistics", params={"page": 0, "pageSize": 2}).json()
    page1 = portal.get("/v2/statistics", params={"page": 1, "pageSize": 2}).json()
    page2 = portal.get("/v2/statistics", params={"page": 2, "pageSize": 2}).json()
    rows = page0 + page1 + page2
    assert [len(page0), len(page1), len(page2)] == [2, 2, 1]
    # Rows come in startDate order (calls that rang longer started earlier).
    assert [r["startDate"] for r in rows] == sorted(r["startDate"] for r in rows)
    assert sorted((r["direction"], r["status"], r["duration"]) for r in rows) == [
        ("INBOUND", "MISSED", 0),
        ("INBOUND", "MISSED", 0),
        ("INBOUND", "RECIEVED", 30_246),
        ("OUTBOUND", "PLACED", 0),
        ("OUTBOUND", "PLACED", 30_246),
    ]
    received = next(r for r in rows if r["status"] == "RECIEVED")
    assert (received["phone_from"], received["phone_to"]) == (CLIENT, "+79161110001")
    placed = next(r for r in rows if r["status"] == "PLACED")
    assert (placed["phone_from"], placed["phone_to"]) == ("+79161110001", CLIENT)
    group = next(r for r in rows if r["abonent"]["phone"] == "9161110002")
    assert (group["status"], group["phone_to"]) == ("MISSED", "+74950000001")
    assert all(isinstance(r["startDate"], int) for r in rows)
    assert set(received) == {
        "startDate",
        "abonent",
        "direction",
        "status",
        "duration",
        "phone_from",
        "phone_to",
    }

    v1 = portal.get("/statistics").json()
    assert {r["phone"] for r in v1} == {"9031234567"}
    assert all("phone_from" not in r for r in v1)


def test_statistics_date_window_and_user(portal, beeline_pbx):
    call_simulate(
        pbx=beeline_pbx, scenario="inbound_missed", abonent_phone="201", external_phone=CLIENT
    )
    now = clock.now()
    hour_ago = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    in_hour = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        len(portal.get("/v2/statistics", params={"dateFrom": hour_ago, "dateTo": in_hour}).json())
        == 1
    )
    assert portal.get("/v2/statistics", params={"dateTo": hour_ago}).json() == []
    assert portal.get("/v2/statistics", params={"userId": "9161110002@ip.beeline.ru"}).json() == []
    _error(portal.get("/v2/statistics", params={"pageSize": 0}), 400)
    _error(portal.get("/v2/statistics", params={"page": "x"}), 400)


# --- Fault knobs ---------------------------------------------------------------------------


def test_down_answers_503(portal, beeline_pbx):
    faults_set(pbx=beeline_pbx, down=True)
    _error(portal.get("/abonents"), 503)
    faults_set(pbx=beeline_pbx)
    assert portal.get("/abonents").status_code == 200


def test_fail_next_fails_exactly_n_requests_with_the_status(portal, beeline_pbx):
    faults_set(pbx=beeline_pbx, fail_next=2, fail_status=502)
    assert [portal.get("/numbers").status_code for _ in range(3)] == [502, 502, 200]
    assert Pbx.objects.get(pk=beeline_pbx.pk).fail_next == 0


def test_error_rate_one_always_fails(portal, beeline_pbx):
    faults_set(pbx=beeline_pbx, error_rate=1.0)
    assert {portal.get("/abonents").status_code for _ in range(3)} == {500}


def test_latency_is_added(portal, beeline_pbx):
    faults_set(pbx=beeline_pbx, latency_ms=300)
    started = time.monotonic()
    assert portal.get("/abonents").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_fault_reaches_the_client_as_a_read_timeout(portal, beeline_pbx):
    faults_set(pbx=beeline_pbx, timeout=True)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        portal.get("/abonents")
    # Routed in-process, the emulator skips its hang: the test does not wait for it.
    assert time.monotonic() - started < 5


def test_timeout_fault_hangs_then_answers_504_over_real_http(beeline_pbx, monkeypatch):
    from django.test import Client

    monkeypatch.setattr(api, "TIMEOUT_SLEEP_SECONDS", 0.2)
    faults_set(pbx=beeline_pbx, timeout=True)
    started = time.monotonic()
    response = Client().get(
        "/sandbox/beeline/abonents", HTTP_X_MPBX_API_AUTH_TOKEN=beeline_pbx.token
    )
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504
    assert response.headers["X-Sandbox-Fault"] == "timeout"


def test_unknown_token_is_rejected_before_faults(beeline_pbx):
    faults_set(pbx=beeline_pbx, down=True)
    response = requests.get(
        f"{settings.BEELINE_API_URL}/abonents",
        headers={"X-MPBX-API-AUTH-TOKEN": "nope"},
        timeout=5,
    )
    assert response.status_code == 401


def test_bad_knobs_are_refused(beeline_pbx):
    with pytest.raises(ValueError):
        faults_set(pbx=beeline_pbx, error_rate=2)
    with pytest.raises(ValueError):
        faults_set(pbx=beeline_pbx, fail_status=200)


def test_subscription_via_service_and_api_agree(beeline_pbx, portal):
    created = subscription_create(
        pbx=beeline_pbx,
        pattern="202",
        expires=100,
        subscription_type="ADVANCED_CALL",
        url="https://beetel.test/hook",
    )
    got = portal.get("/subscription", params={"subscriptionId": created.subscription_id}).json()
    assert got["subscriptionType"] == "ADVANCED_CALL"
    assert got["targetId"] == "9161110002@ip.beeline.ru"
