from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.conf import settings

from sandbox.amocrm.models import Account
from sandbox.amocrm.services import access_token_expire, oauth_code_issue, tokens_issue

API = settings.AMOCRM_API_BASE_URL
REDIRECT_URI = f"{settings.PUBLIC_URL}/amocrm/oauth/callback"


def exchange(the_code: str, **overrides: str) -> requests.Response:
    body = {
        "client_id": settings.AMOCRM_CLIENT_ID,
        "client_secret": settings.AMOCRM_CLIENT_SECRET,
        "grant_type": "authorization_code",
        "code": the_code,
        "redirect_uri": REDIRECT_URI,
        **overrides,
    }
    return requests.post(f"{API}/oauth2/access_token", json=body, timeout=5)


def refresh(refresh_token: str) -> requests.Response:
    body = {
        "client_id": settings.AMOCRM_CLIENT_ID,
        "client_secret": settings.AMOCRM_CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "redirect_uri": REDIRECT_URI,
    }
    return requests.post(f"{API}/oauth2/access_token", json=body, timeout=5)


def account_get(access: str) -> requests.Response:
    return requests.get(
        f"{API}/api/v4/account", headers={"Authorization": f"Bearer {access}"}, timeout=5
    )


def test_code_exchange_returns_a_24h_bearer_jwt_for_the_account(amocrm_account, admin):
    response = exchange(oauth_code_issue(account=amocrm_account))

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert body["refresh_token"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["account_id"] == amocrm_account.pk
    assert claims["sub"] == str(admin.pk)
    assert claims["base_domain"] == "amocrm.ru"
    assert claims["api_domain"]
    assert "crm" in claims["scopes"]
    assert claims["exp"] - body["server_time"] == 86400
    assert account_get(body["access_token"]).json()["id"] == amocrm_account.pk


def test_code_exchange_accepts_form_encoding(amocrm_account):
    response = requests.post(
        f"{API}/oauth2/access_token",
        data={
            "client_id": settings.AMOCRM_CLIENT_ID,
            "client_secret": settings.AMOCRM_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": oauth_code_issue(account=amocrm_account),
            "redirect_uri": REDIRECT_URI,
        },
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_code_is_single_use(amocrm_account):
    code = oauth_code_issue(account=amocrm_account)
    assert exchange(code).status_code == 200

    again = exchange(code)

    assert again.status_code == 400
    assert again.headers["Content-Type"] == "application/problem+json"
    assert again.json()["hint"] == "Authorization code has been revoked"


def test_code_lives_20_minutes(amocrm_account, fake_clock):
    fresh = oauth_code_issue(account=amocrm_account)
    stale = oauth_code_issue(account=amocrm_account)
    fake_clock.advance(minutes=19, seconds=59)
    assert exchange(fresh).status_code == 200

    fake_clock.advance(seconds=2)
    response = exchange(stale)

    assert response.status_code == 400
    assert response.json()["hint"] == "Authorization code has expired"


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"client_secret": "wrong"}, 401),
        ({"client_id": "someone-else"}, 401),
        ({"redirect_uri": "https://evil.test/cb"}, 400),
        ({"code": "def50200bogus"}, 400),
        ({"grant_type": "password"}, 400),
    ],
)
def test_bad_exchanges_are_problem_json(amocrm_account, override, status):
    response = exchange(oauth_code_issue(account=amocrm_account), **override)

    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert body["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
    assert body["title"] and body["detail"] and body["hint"]


def test_refresh_gives_a_new_pair_and_the_old_refresh_token_dies(amocrm_account):
    access, refresh_token = tokens_issue(account=amocrm_account)

    first = refresh(refresh_token)
    assert first.status_code == 200
    pair = first.json()
    assert pair["access_token"] != access
    assert pair["refresh_token"] != refresh_token
    assert pair["expires_in"] == 86400

    reused = refresh(refresh_token)
    assert reused.status_code == 401
    body = reused.json()
    assert body["hint"] == "Token has been revoked"
    assert body["title"] == "Некорректный запрос"
    assert body["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
    assert body["status"] == 401

    second = refresh(pair["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] not in (refresh_token, pair["refresh_token"])
    assert account_get(second.json()["access_token"]).status_code == 200


def test_access_token_expires_after_24_hours(amocrm_account, fake_clock):
    access, refresh_token = tokens_issue(account=amocrm_account)
    fake_clock.advance(hours=23, minutes=59)
    assert account_get(access).status_code == 200

    fake_clock.advance(minutes=2)
    expired = account_get(access)

    assert expired.status_code == 401
    assert expired.headers["Content-Type"] == "application/problem+json"
    assert expired.json()["status"] == 401
    renewed = refresh(refresh_token).json()["access_token"]
    assert account_get(renewed).status_code == 200


def test_access_token_expire_service(amocrm_account):
    access, _ = tokens_issue(account=amocrm_account)
    access_token_expire(account=amocrm_account)
    assert account_get(access).status_code == 401


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer not-a-jwt", "Basic abc"])
def test_missing_or_unknown_tokens_are_401(amocrm_account, header):
    response = requests.get(f"{API}/api/v4/account", headers={"Authorization": header}, timeout=5)
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


def test_token_signed_by_someone_else_is_401(amocrm_account):
    forged = jwt.encode(
        {"account_id": amocrm_account.pk, "jti": "x"},
        "someone-elses-key-0123456789abcdef",
        algorithm="HS256",
    )
    assert account_get(forged).status_code == 401


# --- the authorize page ---------------------------------------------------------------------


def authorize_url(mode: str = "popup", client_id: str | None = None) -> str:
    client_id = client_id or settings.AMOCRM_CLIENT_ID
    return f"/sandbox/amocrm/oauth?client_id={client_id}&state=st-123&mode={mode}"


def test_authorize_page_asks_for_consent_and_account(client, amocrm_account):
    response = client.get(authorize_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert "Подтвердите согласие на передачу данных аккаунта на сторонний сервер" in html
    assert "Разрешить" in html
    assert amocrm_account.host in html


def test_authorize_without_consent_issues_nothing(client, amocrm_account, admin):
    response = client.post(authorize_url(), {"grant": f"{amocrm_account.pk}:{admin.pk}"})

    assert response.status_code == 200
    assert "Подтвердите согласие" in response.content.decode()
    assert not amocrm_account.codes.exists()


def test_authorize_popup_redirects_with_code_referer_state(client, amocrm_account, admin):
    response = client.post(
        authorize_url(), {"grant": f"{amocrm_account.pk}:{admin.pk}", "consent": "on"}
    )

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT_URI
    query = parse_qs(target.query)
    assert query["referer"] == [amocrm_account.host]
    assert query["state"] == ["st-123"]
    assert exchange(query["code"][0]).status_code == 200


def test_authorize_post_message_posts_to_the_opener(client, amocrm_account, admin):
    response = client.post(
        authorize_url("post_message"), {"grant": f"{amocrm_account.pk}:{admin.pk}", "consent": "on"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "window.opener.postMessage" in html
    assert '"referer": "acme.amocrm.ru"' in html
    assert '"state": "st-123"' in html


def test_authorize_deny_redirects_with_error(client, amocrm_account, admin):
    response = client.post(
        authorize_url(), {"grant": f"{amocrm_account.pk}:{admin.pk}", "deny": "1"}
    )
    assert response.status_code == 302
    assert "error=access_denied" in response["Location"]
    assert not amocrm_account.codes.exists()


def test_authorize_unknown_client_is_400(client, amocrm_account):
    assert client.get(authorize_url(client_id="nope")).status_code == 400


def test_account_has_no_tokens_for_other_accounts(amocrm_account):
    other = Account.objects.create(subdomain="other", name="Other")
    assert not other.token_pairs.exists()
