"""What a newcomer met in their first hour (issue «A newcomer's first hour»), one test per
finding: expired sessions inside HTMX forms, time zones and formats, failed saves, the key
page, the delete form, adding an organization, the token field, the journal's dates."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from cabinet.testing import login_with_key
from core.models import Organization
from core.tenancy import organization_scope

LOGIN = reverse("cabinet:login")


# --- Item 3: an expired session inside an HTMX form ------------------------------------------


def test_expired_session_in_an_htmx_form_sends_the_page_to_login_and_back(
    client: Client, org, outsider
):
    login_with_key(client, org)
    page = reverse("cabinet:call_settings", args=[org.pk])
    client.session.flush()  # the session expires while the page is open (its cookie stays)

    response = client.post(
        page,
        {"notify_incoming": "on"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )

    # Not the login page drawn inside the form: the whole page goes to the login page.
    assert response.status_code == 200
    assert response.content == b""
    target = urlsplit(response["HX-Redirect"])
    assert target.path == LOGIN
    assert parse_qs(target.query) == {"next": [page], "expired": ["1"]}
    login_page = client.get(response["HX-Redirect"]).content.decode()
    assert "Сессия истекла" in login_page
    assert f'name="next" value="{page}"' in login_page

    # Logging in again lands on the page the admin was on, not on Dashboard.
    back = client.post(LOGIN, {"key": org.access_key, "next": page})
    assert back.status_code == 302 and back["Location"] == page


def test_next_never_leads_off_site_or_into_another_organization(client: Client, org, outsider):
    for unsafe in (
        "https://evil.example/cabinet/1/",
        "//evil.example/cabinet/",
        reverse("cabinet:dashboard", args=[outsider.pk]),  # this key does not open it
        "/admin/",
    ):
        response = client.post(LOGIN, {"key": org.access_key, "next": unsafe})
        assert response["Location"] == reverse("cabinet:dashboard", args=[org.pk]), unsafe
    page = client.get(LOGIN, {"next": "https://evil.example/"}).content.decode()
    assert 'name="next" value="https://evil' not in page  # not carried through the form


def test_a_form_sent_without_javascript_after_expiry_returns_to_its_page(client: Client, org):
    page = reverse("cabinet:managers", args=[org.pk])
    client.cookies["sessionid"] = "expired-session-id"
    response = client.post(page, {}, HTTP_REFERER=f"http://testserver{page}")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {"next": [page], "expired": ["1"]}


# --- Item 5: one time zone per organization, one format per language -------------------------


def test_every_date_is_in_the_organizations_time_zone_and_one_format(cabinet: Client, org):

    moment = datetime(2026, 11, 30, 21, 33, tzinfo=UTC)
    Organization.objects.filter(pk=org.pk).update(installed_at=moment)
    assert Organization.objects.get(pk=org.pk).time_zone == "Europe/Moscow"  # the default

    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert "01.12.2026 00:33" in page  # Moscow, UTC+3
    assert "декабря" not in page  # no second format beside the first
    assert 'value="Europe/Moscow" selected' in page  # shown, and changeable

    response = cabinet.post(
        reverse("cabinet:time_zone", args=[org.pk]), {"time_zone": "Asia/Yekaterinburg"}
    )
    assert response.status_code == 302
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert "01.12.2026 02:33" in page  # UTC+5
    assert (
        cabinet.post(
            reverse("cabinet:time_zone", args=[org.pk]), {"time_zone": "Mars/Olympus"}
        ).status_code
        == 400
    )

    with translation.override("en"):
        cabinet.cookies["django_language"] = "en"
        page = cabinet.get(
            reverse("cabinet:organization", args=[org.pk]), HTTP_ACCEPT_LANGUAGE="en"
        ).content.decode()
    assert "1 Dec 2026, 02:33" in page
    assert "p.m." not in page and "a.m." not in page


def test_diagnostics_details_use_the_same_zone_as_the_rest(cabinet: Client, org, settings):
    from crm.models import AmoCredentials

    moment = datetime(2026, 11, 30, 21, 30, tzinfo=UTC)
    with organization_scope(org):
        AmoCredentials.objects.create(
            organization=org,
            access_token="a",
            refresh_token="r",
            expires_at=datetime(2026, 12, 31, tzinfo=UTC),
            refreshed_at=moment,
        )
    page = cabinet.get(reverse("cabinet:diagnostics", args=[org.pk])).content.decode()
    assert "обновлён 01.12.2026 00:30" in page  # not the UTC «30.11.2026 21:30»


def test_the_date_filter_refuses_an_end_before_the_start(cabinet: Client, org):
    response = cabinet.get(
        reverse("cabinet:dashboard", args=[org.pk]),
        {"date_from": "2026-11-20", "date_to": "2026-11-10"},
    )
    page = response.content.decode()
    assert "Дата «По» раньше даты «С»." in page
    assert 'value="2026-11-20"' in page  # ISO, as a date input needs it


# --- Item 6: «Менеджеры» after a failed save ----------------------------------------------------


def test_a_refused_managers_save_says_so_in_a_toast(installed_cabinet: Client, connected_org):
    from crm.models import AmoUser
    from pbx.models import Abonent

    with organization_scope(connected_org):
        ivan = AmoUser.objects.get(name="Иван Петров").amo_id
        first = Abonent.objects.get(phone="9161110001")
        second = Abonent.objects.get(phone="9161110002")
    response = installed_cabinet.post(
        reverse("cabinet:managers", args=[connected_org.pk]),
        {
            f"enabled_{first.pk}": "on",
            f"amo_user_{first.pk}": str(ivan),
            f"enabled_{second.pk}": "on",
            f"amo_user_{second.pk}": str(ivan),
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    toast = json.loads(response["HX-Trigger"])["toast"]
    assert toast["level"] == "error" and toast["message"].startswith("Не сохранено")


def test_unsaved_suggestions_make_the_page_warn_before_leaving(
    installed_cabinet: Client, installed_org, beeline_pbx
):
    from pbx.connection import beeline_token_save

    beeline_token_save(organization=installed_org, token=beeline_pbx.token)
    url = reverse("cabinet:managers", args=[installed_org.pk])
    installed_cabinet.post(reverse("cabinet:managers_refresh", args=[installed_org.pk]))
    page = installed_cabinet.get(url).content.decode()
    # Preselected by profile phone, not saved: the form is "unsaved" from the start.
    assert "data-unsaved-on-load" in page
    assert "ещё не сохранены" in page
    assert page.count("data-suggested=") == 2

    rows = re.findall(r'<select name="(amo_user_\d+)"', page)
    data = {}
    for name in rows:
        block = page.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
        chosen = re.search(r'<option value="(\d+)"\s+selected', block)
        data[name] = chosen.group(1) if chosen else ""
        data[name.replace("amo_user_", "enabled_")] = "on"
    installed_cabinet.post(url, data)
    assert "data-unsaved-on-load" not in installed_cabinet.get(url).content.decode()


# --- Item 8: deleting with a wrong name, adding an organization ------------------------------


def test_wrong_delete_confirmation_answers_in_place(cabinet: Client, org):
    url = reverse("cabinet:organization_delete", args=[org.pk])
    page_url = reverse("cabinet:organization", args=[org.pk])

    htmx = cabinet.post(url, {"confirmation": "nope"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400
    assert htmx.content.decode().lstrip().startswith('<section id="delete"')
    assert json.loads(htmx["HX-Trigger"])["toast"]["level"] == "error"

    # Without JavaScript: the page, with the field focused (scrolled to) and a language switch
    # that returns to the organization page, not to the POST-only URL.
    plain = cabinet.post(url, {"confirmation": "nope"}, HTTP_REFERER=f"http://testserver{page_url}")
    body = plain.content.decode()
    assert plain.status_code == 400
    assert re.search(r'aria-invalid="true"[^>]*autofocus', body)
    assert f'name="next" value="{page_url}"' in body
    assert Organization.objects.filter(pk=org.pk).exists()


def test_adding_an_organization_with_a_wrong_key_stays_in_the_cabinet(
    cabinet: Client, org, outsider
):
    url = reverse("cabinet:organization_add")
    response = cabinet.post(url, {"key": "WRONG-KEY"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Список организаций" in page and 'class="menu"' in page  # not the bare login page
    assert "Неверный ключ доступа" in page
    assert outsider.name not in page

    again = cabinet.post(url, {"key": org.access_key}, follow=True)
    assert "уже открыта в этом сеансе" in again.content.decode()

    added = cabinet.post(url, {"key": outsider.access_key})
    assert added["Location"] == reverse("cabinet:dashboard", args=[outsider.pk])
    assert "добавлена" in cabinet.get(added["Location"]).content.decode()


def test_adding_needs_a_session(client: Client, org):
    response = client.post(reverse("cabinet:organization_add"), {"key": org.access_key})
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


# --- Item 11: the Beeline token field -----------------------------------------------------------


def test_a_bad_token_over_a_working_one_says_the_old_one_still_works(
    cabinet: Client, org, beeline_pbx
):
    from pbx.connection import beeline_token_save
    from pbx.selectors import pbx_health

    beeline_token_save(organization=org, token=beeline_pbx.token)
    url = reverse("cabinet:keys", args=[org.pk])
    response = cabinet.post(url, {"token": "typo-token"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 400
    assert 'value="typo-token"' in body  # what was pasted is still there
    assert "Сохранённый ранее токен не изменился и продолжает работать." in body
    assert pbx_health(organization=org).token_valid


# --- Item 12: smaller things ------------------------------------------------------------------


def test_english_says_amocrm_the_way_amocrm_writes_it(installed_cabinet: Client, connected_org):
    installed_cabinet.cookies["django_language"] = "en"
    page = installed_cabinet.get(
        reverse("cabinet:managers", args=[connected_org.pk])
    ).content.decode()
    assert "amoCRM manager" in page  # the column of «Менеджер Amo CRM»
    assert "Amo CRM" not in page


def test_favicon(client: Client, db):
    page = client.get(reverse("cabinet:landing")).content.decode()
    assert 'rel="icon"' in page
    assert client.get("/favicon.ico")["Location"].endswith("favicon.svg")


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_install_pages_have_the_header_language_switch_and_copy(amo_account, outsider, lang):
    from sandbox.amocrm.services import oauth_code_issue

    client = Client()
    client.cookies["django_language"] = lang
    code = oauth_code_issue(account=amo_account)
    page = client.get("/amocrm/oauth/callback", {"code": code, "referer": amo_account.host})
    body = page.content.decode()
    assert 'class="topbar"' in body and 'class="language"' in body
    assert 'data-copy="#access-key"' in body
    # The language switch comes back to a page that still shows the key (the callback's code
    # works once only).
    result = reverse("crm:install_result")
    assert f'name="next" value="{result}"' in body
    key = Organization.objects.get(amo_account_id=amo_account.pk).access_key
    assert key in client.get(result).content.decode()

    used = client.get("/amocrm/oauth/callback", {"code": code, "referer": amo_account.host})
    assert used.status_code == 400
    body = used.content.decode()
    assert 'class="topbar"' in body and 'class="language"' in body
    assert reverse("cabinet:install") in body  # the way out: install again
    assert key not in body


def test_the_key_page_is_remembered_in_a_signed_cookie_until_the_key_is_replaced(
    amo_account, outsider
):
    """The key page survives a reload without a session row (an anonymous visitor costs none),
    and stops showing the key once «Сменить ключ» replaced it."""
    from django.contrib.sessions.models import Session

    from core.services import organization_access_key_rotate
    from sandbox.amocrm.services import oauth_code_issue

    client = Client()
    code = oauth_code_issue(account=amo_account)
    done = client.get("/amocrm/oauth/callback", {"code": code, "referer": amo_account.host})
    assert done.status_code == 200
    organization = Organization.objects.get(amo_account_id=amo_account.pk)
    result = reverse("crm:install_result")
    again = client.get(result)
    assert organization.access_key in again.content.decode()
    assert "no-store" in again["Cache-Control"]
    assert Session.objects.count() == 0

    organization_access_key_rotate(organization=organization)
    gone = client.get(result)
    assert gone.status_code == 302 and gone["Location"] == reverse("cabinet:landing")
    assert Client().get(result).status_code == 302  # another browser remembers nothing
