"""Who sees which organization: the session's unlocked ones, staff all, nobody else anything."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from cabinet.testing import ORGANIZATION_PAGES
from integration.selectors import call_settings_for

# Every organization endpoint that writes, with a body that would change something.
CALLBACK_FORM = {
    "target_minutes": "5",
    "day_6_on": "on",
    "day_6_start": "10:00",
    "day_6_end": "11:00",
}
ORGANIZATION_WRITES = [
    ("cabinet:call_settings", {}),
    ("cabinet:callback_settings", CALLBACK_FORM),
    ("cabinet:organization_delete", {"confirmation": "Outsider Ltd"}),
    ("cabinet:keys", {"token": "stolen-token"}),
    ("cabinet:managers", {}),
    ("cabinet:managers_refresh", {}),
    ("cabinet:diagnostics_check", {}),
]


@pytest.mark.parametrize("name", ORGANIZATION_PAGES)
def test_own_organization_pages_open(cabinet: Client, org, name):
    response = cabinet.get(reverse(name, args=[org.pk]))
    assert response.status_code == 200
    assert "Beetel Integration" in response.content.decode()
    assert org.name in response.content.decode()


@pytest.mark.parametrize("name", ORGANIZATION_PAGES)
def test_outsider_pages_are_404_and_show_nothing(cabinet: Client, outsider, name):
    response = cabinet.get(reverse(name, args=[outsider.pk]))
    assert response.status_code == 404
    assert outsider.name not in response.content.decode()
    assert outsider.access_key not in response.content.decode()


@pytest.mark.parametrize("name", ORGANIZATION_PAGES)
def test_unknown_id_is_the_same_404(cabinet: Client, name):
    assert cabinet.get(reverse(name, args=[987654321])).status_code == 404


@pytest.mark.parametrize(("name", "data"), ORGANIZATION_WRITES)
def test_outsider_cannot_be_written_to(cabinet: Client, outsider, name, data):
    response = cabinet.post(reverse(name, args=[outsider.pk]), data)
    assert response.status_code == 404
    outsider.refresh_from_db()  # still exists
    settings = call_settings_for(organization=outsider)
    assert settings.notify_incoming and settings.create_task_missed


@pytest.mark.parametrize("name", ORGANIZATION_PAGES)
def test_anonymous_visitor_is_sent_to_login(client: Client, org, name):
    url = reverse(name, args=[org.pk])
    response = client.get(url)
    assert response.status_code == 302
    # Back to this page after logging in; nothing said about an expiry (there was no session).
    assert response["Location"] == f"{reverse('cabinet:login')}?{urlencode({'next': url})}"


def test_switching_to_an_outsider_is_404(cabinet: Client, org, outsider):
    response = cabinet.post(reverse("cabinet:organization_switch", args=[outsider.pk]))
    assert response.status_code == 404
    assert cabinet.get(reverse("cabinet:home"))["Location"] == reverse(
        "cabinet:dashboard", args=[org.pk]
    )


@pytest.fixture
def staff_client(client: Client, db) -> Client:
    user = get_user_model().objects.create_user("support", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", ["cabinet:dashboard", "cabinet:diagnostics"])
def test_staff_read_every_organizations_journal_and_diagnostics(
    staff_client: Client, org, outsider, name
):
    for organization in (org, outsider):
        assert staff_client.get(reverse(name, args=[organization.pk])).status_code == 200


def test_staff_list_shows_every_organization(staff_client: Client, org, outsider):
    page = staff_client.get(reverse("cabinet:organizations")).content.decode()
    assert org.name in page and outsider.name in page


def test_non_staff_user_gets_nothing_extra(client: Client, org):
    user = get_user_model().objects.create_user("someone", password="pw", is_staff=False)
    client.force_login(user)
    assert client.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 302


# Every form of the cabinet that writes, as a form would post it (logout and switch included).
CSRF_WRITES = [
    ("cabinet:logout", False, {}),
    ("cabinet:organization_switch", True, {}),
    ("cabinet:call_settings", True, {}),  # every switch off
    ("cabinet:callback_settings", True, CALLBACK_FORM),
    ("cabinet:organization_delete", True, {"confirmation": "{name}"}),
    ("cabinet:numbers", True, {}),
    ("cabinet:keys", True, {"token": "some-token"}),
    ("cabinet:managers", True, {}),
    ("cabinet:managers_refresh", True, {}),
    ("cabinet:diagnostics_check", True, {}),
]


@pytest.mark.parametrize(("name", "with_org", "data"), CSRF_WRITES, ids=[w[0] for w in CSRF_WRITES])
def test_every_form_is_refused_without_its_csrf_token(org, name, with_org, data):
    browser = Client(enforce_csrf_checks=True)
    login_page = browser.get(reverse("cabinet:login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page)
    assert token
    browser.post(
        reverse("cabinet:login"), {"key": org.access_key, "csrfmiddlewaretoken": token.group(1)}
    )
    dashboard = reverse("cabinet:dashboard", args=[org.pk])
    assert browser.get(dashboard).status_code == 200
    url = reverse(name, args=[org.pk] if with_org else [])
    body = {key: value.format(name=org.name) for key, value in data.items()}

    assert browser.post(url, body).status_code == 403

    org.refresh_from_db()  # not deleted
    assert call_settings_for(organization=org).notify_incoming  # not switched off
    assert browser.get(dashboard).status_code == 200  # still logged in
