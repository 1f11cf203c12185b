from __future__ import annotations

from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from cabinet.access import SESSION_ORGANIZATIONS
from core.access_keys import access_key_generate

LOGIN = "/cabinet/login"


def test_login_page_asks_for_the_key(client: Client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert "Вход в личный кабинет" in response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_right_key_opens_the_organization_and_rotates_the_session(client: Client, org):
    # A session id fixed before the login (e.g. planted by an attacker) must not survive it.
    planted = client.session
    planted["probe"] = 1
    planted.save()
    before_key = planted.session_key

    # Typed carelessly: lower case, spaces instead of dashes.
    typed = org.access_key.lower().replace("-", " ")
    response = client.post(LOGIN, {"key": typed})

    assert response.status_code == 302
    assert response["Location"] == reverse("cabinet:dashboard", args=[org.pk])
    assert client.session[SESSION_ORGANIZATIONS] == [org.pk]
    after = client.cookies[settings.SESSION_COOKIE_NAME]
    assert after.value and after.value != before_key
    assert client.session["probe"] == 1  # the data moves to the new id
    assert after["httponly"]
    assert after["samesite"] == "Lax"


def test_wrong_and_malformed_keys_get_the_same_answer(client: Client, org):
    unknown = client.post(LOGIN, {"key": access_key_generate()})
    malformed = client.post(LOGIN, {"key": "d9c0c839"})
    empty = client.post(LOGIN, {"key": ""})
    for response in (unknown, malformed, empty):
        assert response.status_code == 200
        assert "Неверный ключ доступа" in response.content.decode()
    assert SESSION_ORGANIZATIONS not in client.session


def test_login_form_requires_csrf(org):
    client = Client(enforce_csrf_checks=True)
    response = client.post(LOGIN, {"key": org.access_key})
    assert response.status_code == 403
    assert SESSION_ORGANIZATIONS not in client.session


@override_settings(CABINET_LOGIN_ATTEMPTS_PER_IP=10, CABINET_LOGIN_ATTEMPTS_GLOBAL=1000)
def test_login_is_throttled_per_address(org):
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(10):
        assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 200
    blocked = guesser.post(LOGIN, {"key": org.access_key})  # even the right key now waits
    assert blocked.status_code == 429
    assert "Слишком много попыток входа" in blocked.content.decode()
    assert SESSION_ORGANIZATIONS not in guesser.session

    # Someone else is not punished for it.
    other = Client(REMOTE_ADDR="198.51.100.1")
    assert other.post(LOGIN, {"key": org.access_key}).status_code == 302


@override_settings(CABINET_LOGIN_ATTEMPTS_PER_IP=100, CABINET_LOGIN_ATTEMPTS_GLOBAL=5)
def test_login_has_a_global_cap_across_addresses(org):
    for n in range(5):
        Client(REMOTE_ADDR=f"192.0.2.{n}").post(LOGIN, {"key": access_key_generate()})
    response = Client(REMOTE_ADDR="192.0.2.99").post(LOGIN, {"key": org.access_key})
    assert response.status_code == 429


def test_logout_forgets_everything(cabinet: Client, org):
    response = cabinet.post(reverse("cabinet:logout"))
    assert response.status_code == 302
    assert SESSION_ORGANIZATIONS not in cabinet.session
    page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk]))
    assert page.status_code == 302 and page["Location"] == LOGIN


def test_logout_is_post_only(cabinet: Client, org):
    assert cabinet.get(reverse("cabinet:logout")).status_code == 405
    assert cabinet.session[SESSION_ORGANIZATIONS] == [org.pk]
