from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.test import Client
from django.urls import reverse


def test_landing_explains_and_offers_install_and_login(client: Client, db):
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Установить в amoCRM" in page
    assert "Войти в личный кабинет" in page
    assert reverse("cabinet:install") in page
    assert reverse("cabinet:login") in page
    assert "Интеграция по API" in page  # the Beeline step of the journey
    assert settings.SESSION_COOKIE_NAME not in response.cookies  # viewing creates no session


def test_install_goes_to_amocrm_with_a_state_this_session_keeps(client: Client, db):
    from crm.selectors import amo_oauth_state_pop

    response = client.get(reverse("cabinet:install"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}" == settings.AMOCRM_API_BASE_URL
    query = parse_qs(target.query)
    assert query["client_id"] == [settings.AMOCRM_CLIENT_ID]
    session = client.session
    assert amo_oauth_state_pop(session=session, state=query["state"][0]) == "popup"
