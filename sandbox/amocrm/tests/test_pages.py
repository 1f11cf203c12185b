from __future__ import annotations

from sandbox.amocrm.demo import DEMO_MANAGER_PHONES, demo_seed
from sandbox.amocrm.models import Account
from sandbox.amocrm.services import contact_create, faults_set


def test_index_lists_accounts_and_creates_one(client, db):
    response = client.post(
        "/sandbox/amocrm/",
        {"subdomain": "newco", "name": "НьюКо", "admin_name": "Аня", "admin_phone": "9161112233"},
    )

    account = Account.objects.get(subdomain="newco")
    assert response.status_code == 302
    assert response["Location"] == f"/sandbox/amocrm/accounts/{account.pk}/"
    admin = account.users.get()
    assert admin.is_admin and admin.phone == "9161112233"
    assert "НьюКо" in client.get("/sandbox/amocrm/").content.decode()


def test_index_rejects_a_taken_subdomain(client, amocrm_account):
    response = client.post(
        "/sandbox/amocrm/", {"subdomain": "acme", "name": "x", "admin_name": "y"}
    )
    assert response.status_code == 200
    assert Account.objects.filter(subdomain="acme").count() == 1


def test_account_page_shows_what_the_api_received(client, api, amocrm_account, manager):
    contact = contact_create(
        account=amocrm_account,
        name="Иван Клиентов",
        responsible=manager,
        phones=[("+79161234567", "WORK")],
        tag_names=["BeelineConnector"],
    )
    api(
        "POST",
        "/api/v4/calls",
        json=[
            {
                "direction": "inbound",
                "duration": 61,
                "source": "Звонок Beeline",
                "phone": "9161234567",
                "link": "https://beetel.test/recordings/tok",
                "call_status": 4,
            }
        ],
    )
    api(
        "POST",
        "/api/v4/tasks",
        json=[{"text": "Перезвонить клиенту", "complete_till": 1_900_000_000}],
    )
    api(
        "POST",
        "/api/v2/events",
        json={
            "add": [{"type": "phone_call", "phone_number": "+79161234567", "users": [manager.pk]}]
        },
    )

    html = client.get(f"/sandbox/amocrm/accounts/{amocrm_account.pk}/").content.decode()

    assert "Мария Менеджер" in html and "9161230001" in html
    assert contact.name in html and "BeelineConnector" in html and "+79161234567" in html
    assert '<audio controls preload="none" src="https://beetel.test/recordings/tok">' in html
    assert "61 с" in html
    assert "Перезвонить клиенту" in html
    assert "Уведомления о звонках" in html


def test_fault_form_and_action_buttons(client, amocrm_account):
    url = f"/sandbox/amocrm/accounts/{amocrm_account.pk}/"
    response = client.post(
        url + "faults",
        {
            "faults-latency_ms": "0",
            "faults-fail_next": "3",
            "faults-fail_status": "502",
            "faults-error_rate": "0",
            "faults-timeout_seconds": "15",
            "faults-down": "on",
            "faults-is_unsorted_on": "on",
        },
    )
    amocrm_account.refresh_from_db()
    assert response.status_code == 302
    assert (
        amocrm_account.down and amocrm_account.fail_next == 3 and amocrm_account.fail_status == 502
    )

    client.post(url + "actions/ban")
    amocrm_account.refresh_from_db()
    assert amocrm_account.banned_at is not None
    client.post(url + "actions/unban")
    amocrm_account.refresh_from_db()
    assert amocrm_account.banned_at is None
    assert client.post(url + "actions/explode").status_code == 404
    assert client.get(url + "actions/ban").status_code == 405


def test_install_button_records_the_hook_call(client, hook_receiver):
    account = demo_seed()
    response = client.post(f"/sandbox/amocrm/accounts/{account.pk}/actions/install", follow=True)
    assert response.status_code == 200
    assert len(hook_receiver) == 1
    assert "HTTP 200" in response.content.decode()


def test_faults_set_false_lifts_a_ban(amocrm_account):
    from sandbox.amocrm.services import account_ban

    account_ban(account=amocrm_account)
    faults_set(account=amocrm_account)
    amocrm_account.refresh_from_db()
    assert amocrm_account.banned_at is None


def test_demo_seed_is_idempotent_with_the_manager_phones(db):
    first = demo_seed()
    again = demo_seed()

    assert first.pk == again.pk
    assert first.subdomain == "demo" and first.name == "Демо-компания"
    assert Account.objects.count() == 1
    users = list(first.users.order_by("id"))
    assert sum(u.is_admin for u in users) == 1
    assert sorted(u.phone for u in users if u.phone) == sorted(DEMO_MANAGER_PHONES)
    assert any(not u.phone and not u.is_admin for u in users)


def test_account_page_install_leads_to_the_key_page(client, amocrm_account, settings):
    """«Установить» on the account page → consent with this account chosen → «Разрешить» →
    our redirect URI in the browser (from_widget, no state) → the access key."""
    import re
    from html import unescape

    from core.models import Organization

    page = client.get(f"/sandbox/amocrm/accounts/{amocrm_account.pk}/").content.decode()
    install = unescape(re.search(r'data-testid="install"\s+href="([^"]+)"', page).group(1))
    consent = client.get(install).content.decode()
    admin = amocrm_account.users.get(is_admin=True)
    grant = f"{amocrm_account.pk}:{admin.pk}"
    assert f'<option value="{grant}" selected' in consent

    answer = client.post(
        install,
        {
            "client_id": settings.AMOCRM_CLIENT_ID,
            "mode": "popup",
            "account": amocrm_account.pk,
            "from_widget": "1",
            "grant": grant,
            "consent": "on",
            "allow": "",
        },
    )
    assert answer.status_code == 302
    redirect = answer["Location"]
    assert redirect.startswith(f"{settings.PUBLIC_URL}/amocrm/oauth/callback?")
    assert "from_widget=1" in redirect and "state=" not in redirect

    key_page = client.get(redirect.removeprefix(settings.PUBLIC_URL))
    assert key_page.status_code == 200
    organization = Organization.objects.get(amo_account_id=amocrm_account.pk)
    assert organization.access_key in key_page.content.decode()


def test_widget_host_without_parameters_lets_you_choose(client, amocrm_account):
    response = client.get("/sandbox/amocrm/widget-host/")
    body = response.content.decode()
    assert response.status_code == 200  # not Django's debug 404
    for user in amocrm_account.users.all():
        assert f"?account={amocrm_account.pk}&amp;user={user.pk}" in body
    bad = client.get("/sandbox/amocrm/widget-host/?account=abc&user=1")
    assert bad.status_code == 400 and "?account=" in bad.content.decode()


def test_contact_card_with_the_widget_at_amocrms_own_path(client, amocrm_account, manager):
    contact = contact_create(
        account=amocrm_account,
        name="Клиент Журнала",
        responsible=manager,
        phones=[("+79161234567", "WORK")],
        tag_names=["BeelineConnector"],
    )
    page = client.get(f"/sandbox/amocrm/contacts/detail/{contact.pk}")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Клиент Журнала" in body and "+79161234567" in body and "BeelineConnector" in body
    assert f'"id": {manager.pk}' in body  # seen by the responsible user, with the widget
    assert "/sandbox/amocrm/widget-host/script.js" in body
    assert client.get("/sandbox/amocrm/contacts/detail/999999").status_code == 404
