from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from cabinet.access import SESSION_ORGANIZATIONS
from core.access_keys import access_key_generate

LOGIN = "/cabinet/login"


@pytest.fixture(autouse=True)
def _one_throttle_window(monkeypatch):
    """Every attempt of a test falls in the same one-minute window."""
    monkeypatch.setattr("cabinet.throttling._now", lambda: 1_800_000_030.0)


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
    assert client.session[SESSION_ORGANIZATIONS] == {str(org.pk): org.access_key_generation}
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


@override_settings(
    CABINET_LOGIN_ATTEMPTS_PER_IP=100,
    CABINET_LOGIN_ATTEMPTS_GLOBAL=5,
    CABINET_LOGIN_ATTEMPTS_PER_IP_UNDER_PRESSURE=2,
)
def test_over_the_global_level_guessing_slows_down_but_customers_still_get_in(org):
    for n in range(5):
        Client(REMOTE_ADDR=f"192.0.2.{n}").post(LOGIN, {"key": access_key_generate()})
    # Many addresses guess together: each is now held to 2 attempts a minute…
    guesser = Client(REMOTE_ADDR="192.0.2.50")
    assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 200
    assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 200
    assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 429
    # …while a customer typing the key is not locked out.
    response = Client(REMOTE_ADDR="192.0.2.99").post(LOGIN, {"key": org.access_key})
    assert response.status_code == 302


@override_settings(CABINET_LOGIN_ATTEMPTS_PER_IP=10, CABINET_LOGIN_ATTEMPTS_GLOBAL=20)
def test_attempts_refused_for_one_address_do_not_count_towards_the_global_level(org):
    hammer = Client(REMOTE_ADDR="203.0.113.66")
    statuses = [hammer.post(LOGIN, {"key": access_key_generate()}).status_code for _ in range(60)]
    assert statuses.count(429) == 50

    # 60 attempts from one address used 10 of the global 20: nobody else is slowed down.
    for n in range(9):
        assert (
            Client(REMOTE_ADDR=f"198.51.100.{n}")
            .post(LOGIN, {"key": access_key_generate()})
            .status_code
            == 200
        )
    customer = Client(REMOTE_ADDR="198.51.100.200")
    assert customer.post(LOGIN, {"key": org.access_key}).status_code == 302


@override_settings(
    CABINET_LOGIN_ATTEMPTS_PER_IP=3, CABINET_LOGIN_ATTEMPTS_GLOBAL=1000, TRUSTED_PROXY_COUNT=1
)
def test_behind_a_trusted_proxy_each_client_has_its_own_budget(org):
    """Every request comes from the load balancer's address; the client is the address the
    load balancer appended to X-Forwarded-For. What the client itself put there is ignored."""

    def via_proxy(client_ip: str, claimed: str = "") -> Client:
        forwarded = f"{claimed}, {client_ip}" if claimed else client_ip
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    guesser = via_proxy("203.0.113.7")
    for _ in range(3):
        assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 200
    assert guesser.post(LOGIN, {"key": access_key_generate()}).status_code == 429
    # Claiming another address in the header does not buy a fresh budget.
    spoofer = via_proxy("203.0.113.7", claimed="192.0.2.123")
    assert spoofer.post(LOGIN, {"key": access_key_generate()}).status_code == 429
    # Another customer behind the same load balancer is not affected.
    assert via_proxy("198.51.100.20").post(LOGIN, {"key": org.access_key}).status_code == 302


@override_settings(CABINET_LOGIN_ATTEMPTS_PER_IP=3, CABINET_LOGIN_ATTEMPTS_GLOBAL=1000)
def test_without_trusted_proxies_x_forwarded_for_is_ignored(org):
    for n in range(3):
        Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(
            LOGIN, {"key": access_key_generate()}
        )
    refused = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="192.0.2.77").post(
        LOGIN, {"key": org.access_key}
    )
    assert refused.status_code == 429


def test_logout_forgets_everything(cabinet: Client, org):
    response = cabinet.post(reverse("cabinet:logout"))
    assert response.status_code == 302
    assert SESSION_ORGANIZATIONS not in cabinet.session
    page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk]))
    assert page.status_code == 302 and page["Location"].startswith(LOGIN + "?next=")
    assert "expired" not in page["Location"]  # logging out is not an expiry
    # ... and the login page says so.
    login_page = cabinet.get(LOGIN).content.decode()
    assert "Вы вышли из личного кабинета." in login_page


def test_logout_is_post_only(cabinet: Client, org):
    assert cabinet.get(reverse("cabinet:logout")).status_code == 405
    assert cabinet.session[SESSION_ORGANIZATIONS] == {str(org.pk): org.access_key_generation}
