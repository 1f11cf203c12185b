from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory
from django.urls import reverse

from crm.oauth_state import OAuthStateCookie


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


def test_install_goes_to_amocrm_with_a_state_this_browser_keeps(client: Client, db):
    from crm.oauth_state import COOKIE
    from crm.selectors import amo_oauth_state_pop

    response = client.get(reverse("cabinet:install"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}" == settings.AMOCRM_API_BASE_URL
    query = parse_qs(target.query)
    assert query["client_id"] == [settings.AMOCRM_CLIENT_ID]
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    request = RequestFactory().get("/", HTTP_COOKIE=f"{COOKIE}={cookie.value}")
    pending = OAuthStateCookie.read(request)
    assert amo_oauth_state_pop(session=pending, state=query["state"][0]) == "popup"


def test_anonymous_visitors_create_no_session_rows(client: Client, org, sandbox_http):
    """Landing, install button, login page, a wrong key: none of them writes a session."""
    client.get("/")
    client.get(reverse("cabinet:install"))
    client.get(reverse("cabinet:install"))
    client.get(reverse("cabinet:login"))
    client.post(reverse("cabinet:login"), {"key": "wrong"})
    assert Session.objects.count() == 0
    # The install flow still recognises its state when amoCRM sends the browser back.
    from sandbox.amocrm.services import account_create, oauth_code_issue

    account = account_create(
        subdomain="anonymousvisitor", name="Anon", users=[{"name": "A", "is_admin": True}]
    )
    state = parse_qs(urlsplit(client.get(reverse("cabinet:install"))["Location"]).query)["state"]
    done = client.get(
        "/amocrm/oauth/callback",
        {"code": oauth_code_issue(account=account), "referer": account.host, "state": state[0]},
    )
    assert done.status_code == 200, done.content.decode()[:300]
    assert Session.objects.count() == 0


def test_expired_sessions_are_cleared_by_the_beat_task(client: Client, org):
    from datetime import timedelta

    from django.utils import timezone

    from cabinet.tasks import sessions_clear_expired

    client.post(reverse("cabinet:login"), {"key": org.access_key})
    live = Session.objects.get()
    Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(minutes=1)
    )

    sessions_clear_expired.delay()

    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "cabinet.tasks.sessions_clear_expired" in scheduled
