from __future__ import annotations

import time

import jwt
import pytest
from django.test import Client

from core.models import Organization
from core.services import organization_set_status
from crm.tests import telephony_double
from crm.tests.telephony_double import CALLS, MAPPINGS, REFUSE_WITH, TOKEN_OK
from sandbox.amocrm.widget_host.views import disposable_token

STATUS = "/amocrm/widget/status"
CALL = "/amocrm/widget/call"
BACKEND = "crm.tests.telephony_double.RecordingTelephony"


@pytest.fixture(autouse=True)
def _telephony(settings):
    settings.WIDGET_TELEPHONY_BACKEND = BACKEND
    telephony_double.reset()
    yield
    telephony_double.reset()


def _token(org: Organization, user_id: int = 501, **overrides) -> str:
    return disposable_token(
        account_id=org.amo_account_id, user_id=user_id, subdomain=org.amo_subdomain, **overrides
    )


def _get(token: str | None):
    headers = {"HTTP_X_AUTH_TOKEN": token} if token else {}
    return Client().get(STATUS, **headers)


def test_status_shows_manager_and_work_phone(org, outsider):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)

    body = _get(_token(org)).json()

    assert body["ok"] is True
    assert body["organization"]["name"] == "Acme"
    assert body["user"] == {"id": 501, "name": "Из АТС"}
    assert body["telephony"]["abonent_phone"] == "9161110001"


def test_status_of_unmapped_user_explains(org, outsider):
    MAPPINGS[(outsider.pk, 501)] = ("9161110001", True)  # the outsider's mapping is not ours

    body = _get(_token(org)).json()

    assert body["ok"] is False
    assert body["code"] == "no_mapping"
    assert body["message"]


def test_status_without_beeline_token_explains(org, outsider):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)
    TOKEN_OK[0] = False

    body = _get(_token(org)).json()

    assert body["ok"] is False and body["code"] == "token_missing"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": int(time.time()) - 120}, "token_expired"),
        ({"aud": "https://evil.test"}, "token_audience"),
        ({"nbf": int(time.time()) + 600}, "token_not_yet_valid"),
        ({"client_uuid": "another-integration"}, "token_client"),
    ],
)
def test_bad_tokens_are_refused(org, outsider, overrides, code):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)

    response = _get(_token(org, **overrides))

    assert response.status_code == 401
    assert response.json()["code"] == code


def test_wrong_signature_and_missing_token_are_refused(org, outsider):
    claims = jwt.decode(_token(org), options={"verify_signature": False})
    forged = jwt.encode(claims, "not-our-secret", algorithm="HS256")

    assert _get(forged).status_code == 401
    assert _get(forged).json()["code"] == "token_invalid"
    assert _get(None).status_code == 401
    assert _get("garbage").status_code == 401


def test_unknown_and_disconnected_organizations(org, outsider):
    stranger = disposable_token(account_id=999_999, user_id=1, subdomain="nobody")
    assert _get(stranger).status_code == 404
    organization_set_status(organization=org, status=Organization.Status.DISCONNECTED)

    response = _get(_token(org))

    assert response.status_code == 403
    assert response.json()["code"] == "organization_disconnected"
    assert "заново" in response.json()["message"]


def test_call_dials_the_mapped_number(org, outsider):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)

    response = Client().post(
        CALL,
        {"phone": "8 (916) 555-44-33"},
        content_type="application/json",
        HTTP_X_AUTH_TOKEN=_token(org),
    )

    assert response.status_code == 200
    assert CALLS == [(org.pk, 501, "9165554433")]


@pytest.mark.parametrize(
    ("setup", "phone", "status"),
    [
        ("mapped", "not a number", 400),
        ("none", "+79165554433", 404),
        ("disabled", "+79165554433", 409),
        ("refused", "+79165554433", 502),
    ],
)
def test_call_errors(org, outsider, setup, phone, status):
    if setup in ("mapped", "refused"):
        MAPPINGS[(org.pk, 501)] = ("9161110001", True)
    if setup == "disabled":
        MAPPINGS[(org.pk, 501)] = ("9161110001", False)
    if setup == "refused":
        REFUSE_WITH.append("Абонент не найден")

    response = Client().post(
        CALL, {"phone": phone}, content_type="application/json", HTTP_X_AUTH_TOKEN=_token(org)
    )

    assert response.status_code == status
    assert response.json()["ok"] is False
    if setup == "refused":
        assert response.json()["message"] == "Абонент не найден"
    assert CALLS == []


def test_outsider_token_cannot_call_for_the_organization(org, outsider):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)

    response = Client().post(
        CALL,
        {"phone": "+79165554433"},
        content_type="application/json",
        HTTP_X_AUTH_TOKEN=_token(outsider),
    )

    assert response.status_code == 404  # the outsider's user 501 has no mapping there
    assert CALLS == []


def test_cors_preflight_allows_amocrm_origins_with_x_auth_token(db):
    ok = Client().options(
        STATUS,
        HTTP_ORIGIN="https://acme.amocrm.ru",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-auth-token",
    )
    assert ok["Access-Control-Allow-Origin"] == "https://acme.amocrm.ru"
    assert "x-auth-token" in ok["Access-Control-Allow-Headers"]
    for origin in ("https://evil.example", "https://acme.amocrm.ru.evil.example"):
        refused = Client().options(
            STATUS, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
        )
        assert "Access-Control-Allow-Origin" not in refused
    # nothing else on the site is opened to amoCRM origins
    other = Client().get("/healthz", HTTP_ORIGIN="https://acme.amocrm.ru")
    assert "Access-Control-Allow-Origin" not in other
    sandbox = Client().options(
        STATUS, HTTP_ORIGIN="https://amocrm.sandbox.test", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert sandbox["Access-Control-Allow-Origin"] == "https://amocrm.sandbox.test"


def test_missing_backend_is_a_clear_503(org, outsider, settings):
    settings.WIDGET_TELEPHONY_BACKEND = "nowhere.Backend"

    response = _get(_token(org))

    assert response.status_code == 503
    assert response.json()["code"] == "telephony_unavailable"


def test_a_token_is_refused_when_replayed_within_its_lifetime(org, outsider):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)
    token = _token(org)

    assert _get(token).status_code == 200
    replayed = _get(token)

    assert replayed.status_code == 401
    assert replayed.json()["code"] == "token_replayed"
    assert _get(_token(org)).status_code == 200  # a fresh token works


def test_the_replay_memory_lasts_as_long_as_the_token(org, outsider):
    import redis
    from django.conf import settings as django_settings

    token = _token(org, exp=int(time.time()) + 100)
    _get(token)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    (key,) = client.keys(f"*widget:jti:{jti}")
    assert 100 <= client.ttl(key) <= 100 + 30  # exp + leeway, not for ever


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://someone-else.amocrm.ru"},
        {"iss": "https://evil.example"},
        {"iss": ""},
        {"jti": ""},
    ],
)
def test_issuer_must_be_the_organizations_amocrm_host(org, outsider, overrides):
    MAPPINGS[(org.pk, 501)] = ("9161110001", True)

    response = _get(_token(org, **overrides))

    assert response.status_code == 401
    assert response.json()["code"] in ("token_issuer", "token_invalid")


def test_token_without_issuer_or_id_is_refused(org, outsider):
    from django.conf import settings as django_settings

    claims = jwt.decode(_token(org), options={"verify_signature": False})
    for name in ("iss", "jti"):
        incomplete = {k: v for k, v in claims.items() if k != name}
        token = jwt.encode(incomplete, django_settings.AMOCRM_CLIENT_SECRET, "HS256")
        assert _get(token).status_code == 401
