from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from core.models import Organization
from core.tenancy import organization_scope
from crm.errors import AmoInstallError
from crm.models import AmoCredentials, AmoUser
from crm.selectors import amo_authorize_url
from crm.services import amo_referer_validate
from crm.testing import install
from sandbox.amocrm.models import AuthorizationCode
from sandbox.amocrm.services import install_run, oauth_code_issue

CALLBACK = "/amocrm/oauth/callback"


def test_install_shows_the_access_key_and_stores_the_account(
    amo_account, outsider, django_capture_on_commit_callbacks
):
    code = oauth_code_issue(account=amo_account)

    with django_capture_on_commit_callbacks(execute=True):
        response = Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    assert response.status_code == 200
    org = Organization.objects.get(amo_account_id=amo_account.pk)
    page = response.content.decode()
    assert "Ваш ключ доступа:" in page
    assert re.search(rf'data-testid="access-key">{org.access_key}</strong>', page)
    assert 'data-copy="#access-key"' in page  # «Копировать»
    assert "Ключ необходим для входа в личный кабинет" in page
    assert reverse("cabinet:login") in page
    assert org.name == "Рога и копыта"
    assert org.amo_host == amo_account.host
    assert org.status == Organization.Status.ACTIVE
    with organization_scope(org):
        creds = AmoCredentials.objects.get(organization=org)
        # users are fetched (with their profile phones) right after the install
        phones = dict(AmoUser.objects.values_list("name", "phone_national"))
    assert creds.access_token and creds.refresh_token and creds.expires_at
    assert phones["Анна Петрова"] == "9161110001"
    assert phones["Борис Сидоров"] == "9161110002"
    # tokens are encrypted at rest
    with connection.cursor() as cursor:
        cursor.execute("SELECT refresh_token FROM crm_amocredentials WHERE id = %s", [creds.pk])
        raw = cursor.fetchone()[0]
    assert creds.refresh_token not in raw


def test_marketplace_install_webhook_connects_the_account(amo_account, outsider):
    result = install_run(account=amo_account)

    assert result.status_code == 200
    org = Organization.objects.get(amo_account_id=amo_account.pk)
    assert org.status == Organization.Status.ACTIVE


def test_reinstall_keeps_organization_and_key(amo_account, outsider):
    org = install(amo_account)
    key = org.access_key

    again = install(amo_account)

    assert again.pk == org.pk
    assert again.access_key == key
    assert Organization.objects.filter(amo_account_id=amo_account.pk).count() == 1


def test_used_code_gets_an_explanatory_page(amo_account, outsider):
    code = oauth_code_issue(account=amo_account)
    Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    response = Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    assert response.status_code == 400
    assert "уже был использован" in response.content.decode()


def test_expired_code_gets_an_explanatory_page(amo_account, outsider):
    code = oauth_code_issue(account=amo_account)
    AuthorizationCode.objects.update(expires_at="2000-01-01T00:00:00Z")

    response = Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    assert response.status_code == 400
    assert "устарел" in response.content.decode()
    assert not Organization.objects.filter(amo_account_id=amo_account.pk).exists()


@pytest.mark.parametrize(
    "referer", ["evil.example.com", "acme.amocrm.ru.evil.com", "", "https://x.amocrm.ru/a/b"]
)
def test_foreign_referer_is_refused_without_sending_our_secret(referer, sandbox_http, db):
    response = Client().get(CALLBACK, {"code": "abc", "referer": referer})

    assert response.status_code == 400
    assert "не от amoCRM" in response.content.decode()
    assert not any("access_token" in call.request.url for call in sandbox_http.calls)


@pytest.mark.parametrize(
    ("referer", "host"),
    [
        ("acme.amocrm.ru", "acme.amocrm.ru"),
        ("https://Acme.amocrm.com/", "acme.amocrm.com"),
        ("acme-2.kommo.com", "acme-2.kommo.com"),
    ],
)
def test_amocrm_and_kommo_account_hosts_are_accepted(referer, host, settings):
    settings.AMOCRM_API_BASE_URL = ""

    assert amo_referer_validate(referer) == host


def test_sandbox_host_is_accepted_only_while_amocrm_traffic_is_redirected(settings):
    sandbox_host = urlsplit(settings.AMOCRM_API_BASE_URL).netloc
    assert amo_referer_validate(sandbox_host) == sandbox_host

    settings.AMOCRM_API_BASE_URL = ""
    with pytest.raises(AmoInstallError):
        amo_referer_validate(sandbox_host)


def test_slow_amocrm_gets_a_page_saying_what_to_do(amo_account, outsider):
    code = oauth_code_issue(account=amo_account)
    from unittest import mock

    import requests

    with mock.patch("crm.client._session.request", side_effect=requests.Timeout):
        response = Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    assert response.status_code == 400
    assert "не ответил вовремя" in response.content.decode()


def test_account_endpoint_timing_out_still_installs_from_the_token(
    amo_account, outsider, django_capture_on_commit_callbacks
):
    from unittest import mock

    import requests

    from crm import client as client_module

    real = client_module._session.request
    account_calls = []

    def slow_account(method, url, **kwargs):
        if url.endswith("/api/v4/account") and not account_calls:
            account_calls.append(kwargs["timeout"])
            raise requests.Timeout
        return real(method, url, **kwargs)

    code = oauth_code_issue(account=amo_account)
    with mock.patch.object(client_module._session, "request", side_effect=slow_account):
        with django_capture_on_commit_callbacks(execute=True):
            response = Client().get(CALLBACK, {"code": code, "referer": amo_account.host})

    assert response.status_code == 200
    # the account call only got what was left of the 3-second budget
    connect, read = account_calls[0]
    assert read <= 2.5
    org = Organization.objects.get(amo_account_id=amo_account.pk)
    # the name arrived later, from the deferred account sync
    assert org.name == "Рога и копыта"


def test_reauthorize_url_carries_state_checked_on_return(amo_account, outsider):
    client = Client()
    session = client.session
    url = amo_authorize_url(session=session, mode="post_message")
    session.save()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{settings.AMOCRM_API_BASE_URL}/oauth?")
    assert query["client_id"] == [settings.AMOCRM_CLIENT_ID]
    assert query["mode"] == ["post_message"]
    state = query["state"][0]

    code = oauth_code_issue(account=amo_account)
    bad = client.get(CALLBACK, {"code": code, "referer": amo_account.host, "state": "forged"})
    assert bad.status_code == 400
    assert "устарела" in bad.content.decode()

    good = client.get(CALLBACK, {"code": code, "referer": amo_account.host, "state": state})
    assert good.status_code == 200
    assert "postMessage" in good.content.decode()
    # a state works once
    again = client.get(CALLBACK, {"code": code, "referer": amo_account.host, "state": state})
    assert again.status_code == 400


def test_authorize_url_in_production_goes_to_www_amocrm(settings):
    settings.AMOCRM_API_BASE_URL = ""
    session: dict[str, object] = {}

    url = amo_authorize_url(session=session, mode="popup")

    assert url.startswith("https://www.amocrm.ru/oauth?client_id=test-client-id&state=")
    assert url.endswith("&mode=popup")
    with pytest.raises(ValueError):
        amo_authorize_url(session=session, mode="post")
