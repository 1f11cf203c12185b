from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from django.test import override_settings

from sandbox.amocrm import services
from sandbox.amocrm.models import HookCall
from sandbox.amocrm.services import account_create, install_run, tokens_issue, uninstall_run

API = settings.AMOCRM_API_BASE_URL
USERS = [{"name": "Админ", "email": "a@x.example", "phone": None, "is_admin": True}]


def test_install_calls_the_redirect_uri_once_with_code_referer_from_widget(
    hook_receiver, monkeypatch
):
    account = account_create(subdomain="acme", name="Acme", users=USERS)
    timeouts: list[object] = []
    real_get = requests.get

    def spy(*args, **kwargs):
        timeouts.append(kwargs.get("timeout"))
        return real_get(*args, **kwargs)

    monkeypatch.setattr(services.requests, "get", spy)

    result = install_run(account=account)

    assert len(hook_receiver) == 1
    url = urlsplit(hook_receiver[0].url)
    assert (
        f"{url.scheme}://{url.netloc}{url.path}" == f"{settings.PUBLIC_URL}/amocrm/oauth/callback"
    )
    query = parse_qs(url.query)
    assert set(query) == {"code", "referer", "from_widget"}
    assert query["referer"] == ["acme.amocrm.ru"]
    assert query["from_widget"] == ["1"]
    assert timeouts == [3]
    assert result.status_code == 200
    assert result.code == query["code"][0]
    # The code is a real, exchangeable authorization code.
    exchanged = requests.post(
        f"{API}/oauth2/access_token",
        json={
            "client_id": settings.AMOCRM_CLIENT_ID,
            "client_secret": settings.AMOCRM_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": result.code,
            "redirect_uri": f"{settings.PUBLIC_URL}/amocrm/oauth/callback",
        },
        timeout=5,
    )
    assert exchanged.status_code == 200
    hook = account.hook_calls.get()
    assert hook.kind == HookCall.Kind.INSTALL
    assert result.code not in hook.url  # what is shown never carries the secret


def test_install_ignores_an_unreachable_receiver_and_never_retries(hook_receiver):
    account = account_create(subdomain="acme", name="Acme", users=USERS)
    with override_settings(PUBLIC_URL="https://unreachable.test"):
        result = install_run(account=account)

    assert result.status_code is None
    assert result.error == "ConnectionError"
    assert account.hook_calls.get().error == "ConnectionError"
    assert hook_receiver == []


def test_uninstall_calls_the_disconnect_hook_with_a_valid_signature_and_revokes(hook_receiver):
    account = account_create(subdomain="acme", name="Acme", users=USERS)
    access, refresh = tokens_issue(account=account)

    uninstall_run(account=account)

    assert len(hook_receiver) == 1
    url = urlsplit(hook_receiver[0].url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{settings.PUBLIC_URL}/amocrm/disconnect"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["account_id"] == str(account.pk)
    assert query["client_uuid"] == settings.AMOCRM_CLIENT_ID
    expected = hmac.new(
        settings.AMOCRM_CLIENT_SECRET.encode(),
        f"{settings.AMOCRM_CLIENT_ID}|{account.pk}".encode(),
        hashlib.sha256,
    ).hexdigest()
    assert hmac.compare_digest(query["signature"], expected)
    api = requests.get(
        f"{API}/api/v4/account", headers={"Authorization": f"Bearer {access}"}, timeout=5
    )
    assert api.status_code == 401
    refreshed = requests.post(
        f"{API}/oauth2/access_token",
        json={
            "client_id": settings.AMOCRM_CLIENT_ID,
            "client_secret": settings.AMOCRM_CLIENT_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh,
        },
        timeout=5,
    )
    assert refreshed.status_code == 401
    assert refreshed.json()["hint"] == "Token has been revoked"
    assert not account.installations.get().is_active
