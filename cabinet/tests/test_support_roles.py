"""Support staff in the cabinet and the admin: read-only by default, acting for a customer only
with an explicit permission (and then audited by name), deleting only as a superuser; the admin
login throttled with lockout, and TOTP two-factor when STAFF_REQUIRE_2FA is on."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from cabinet.testing import ORGANIZATION_PAGES, calls_make
from core.models import AuditEntry, Organization
from core.tenancy import organization_scope, scopes_disabled
from integration.models import CallDelivery
from integration.selectors import call_settings_for

READABLE = ["cabinet:dashboard", "cabinet:missed", "cabinet:diagnostics"]
ACTING_ONLY = [name for name in ORGANIZATION_PAGES if name not in READABLE]
PASSWORD = "correct-horse-battery-staple-42"


def _staff(username: str, *, act: bool = False, superuser: bool = False):
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=True, is_superuser=superuser
    )
    if act:
        user.user_permissions.add(Permission.objects.get(codename="act_for_customer"))
    return user


@pytest.fixture
def support(client: Client, db) -> Client:
    client.force_login(_staff("support"))
    return client


@pytest.fixture
def acting(client: Client, db) -> Client:
    client.force_login(_staff("anna.support", act=True))
    return client


def _audit(org: Organization, kind: str = "support.acted") -> list[AuditEntry]:
    with organization_scope(org):
        return list(AuditEntry.objects.filter(organization=org, kind=kind))


# --- support staff without permissions: read journal and diagnostics, nothing else -------------


@pytest.mark.parametrize("name", READABLE)
def test_support_reads_journal_and_diagnostics_without_keys_or_tokens(
    support: Client, org, outsider, beeline_pbx, name
):
    from pbx.connection import beeline_token_save

    beeline_token_save(organization=org, token=beeline_pbx.token)
    calls_make(org, 3)
    for organization in (org, outsider):
        page = support.get(reverse(name, args=[organization.pk])).content.decode()
        assert organization.name in page
        assert organization.access_key not in page
        assert beeline_pbx.token not in page
        assert "Режим поддержки: только просмотр" in page


@pytest.mark.parametrize("name", ACTING_ONLY)
def test_support_without_permission_is_refused_the_other_tabs(support: Client, org, name):
    response = support.get(reverse(name, args=[org.pk]))
    assert response.status_code == 403
    assert org.access_key not in response.content.decode()
    assert "действовать от имени клиента" in response.content.decode()


SUPPORT_WRITES = [
    ("cabinet:call_settings", {}),
    ("cabinet:keys", {"token": "replaced-by-support"}),
    ("cabinet:keys_rotate", {}),
    ("cabinet:recording_links_revoke", {}),
    ("cabinet:managers", {}),
    ("cabinet:managers_refresh", {}),
    ("cabinet:numbers", {}),
    ("cabinet:organization_delete", {"confirmation": "Acme"}),
]


@pytest.mark.parametrize(("name", "data"), SUPPORT_WRITES, ids=[w[0] for w in SUPPORT_WRITES])
def test_support_without_permission_cannot_change_anything(support: Client, org, name, data):
    key, generation = org.access_key, org.recording_links_generation

    assert support.post(reverse(name, args=[org.pk]), data).status_code == 403

    org.refresh_from_db()
    assert org.access_key == key and org.recording_links_generation == generation
    assert call_settings_for(organization=org).notify_incoming
    assert not _audit(org)


def test_support_without_permission_cannot_retry_a_call(support: Client, org):
    calls_make(org, 1)
    with organization_scope(org):
        delivery = CallDelivery.objects.get(organization=org)
    response = support.post(reverse("cabinet:call_retry", args=[org.pk, delivery.pbx_call_id]))
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "failed"


# --- acting for a customer: explicit permission, audited with the staff member's name ----------


def test_acting_staff_change_settings_and_the_audit_log_names_them(acting: Client, org, outsider):
    response = acting.post(reverse("cabinet:call_settings", args=[org.pk]), {})

    assert response.status_code == 302
    assert not call_settings_for(organization=org).notify_incoming
    (entry,) = _audit(org)
    assert "anna.support" in entry.message and "Настройки звонков" in entry.message
    assert entry.data["staff_username"] == "anna.support"
    assert not _audit(outsider)
    assert call_settings_for(organization=outsider).notify_incoming


def test_acting_staff_retry_a_failed_call_and_it_is_audited(acting: Client, org):
    calls_make(org, 1)
    with organization_scope(org):
        delivery = CallDelivery.objects.get(organization=org)

    acting.post(reverse("cabinet:call_retry", args=[org.pk, delivery.pbx_call_id]))

    delivery.refresh_from_db()
    assert delivery.status != "failed"
    assert "повтор передачи звонка" in _audit(org)[0].message


def test_acting_staff_never_see_the_key_but_can_rotate_it(acting: Client, org):
    old_key = org.access_key
    page = acting.get(reverse("cabinet:keys", args=[org.pk]))
    assert page.status_code == 200
    assert old_key not in page.content.decode()
    assert "Сменить ключ" in page.content.decode()

    acting.post(reverse("cabinet:keys_rotate", args=[org.pk]))

    org.refresh_from_db()
    assert org.access_key != old_key
    assert org.access_key not in acting.get(reverse("cabinet:keys", args=[org.pk])).content.decode()
    assert "новый ключ доступа" in _audit(org)[0].message


def test_deleting_an_organization_needs_a_superuser(client: Client, org, outsider):
    client.force_login(_staff("acting", act=True))
    refused = client.post(
        reverse("cabinet:organization_delete", args=[org.pk]), {"confirmation": org.name}
    )
    assert refused.status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()

    client.force_login(_staff("root", superuser=True))
    done = client.post(
        reverse("cabinet:organization_delete", args=[org.pk]), {"confirmation": org.name}
    )
    assert done.status_code == 302
    assert not Organization.objects.filter(pk=org.pk).exists()
    assert Organization.objects.filter(pk=outsider.pk).exists()


# --- the admin ---------------------------------------------------------------------------------


def test_admin_delete_of_an_organization_needs_a_superuser(client: Client, org):
    user = _staff("admin.support", act=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_organization", "change_organization", "delete_organization"]
        )
    )
    client.force_login(user)
    url = reverse("admin:core_organization_delete", args=[org.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Organization.objects.filter(pk=org.pk).exists()


def test_admin_actions_for_customers_need_the_permission(client: Client, org):
    calls_make(org, 1)
    with organization_scope(org):
        delivery = CallDelivery.objects.get(organization=org)
    viewer = _staff("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_calldelivery"))
    client.force_login(viewer)
    changelist = reverse("admin:integration_calldelivery_changelist")
    assert "retry_deliveries" not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "retry_deliveries", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status == "failed"

    actor = _staff("actor", act=True)
    actor.user_permissions.add(Permission.objects.get(codename="view_calldelivery"))
    client.force_login(actor)
    client.post(changelist, {"action": "retry_deliveries", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.status != "failed"
    assert "actor" in _audit(org)[0].message


def test_admin_shows_amo_host_read_only(admin_client: Client, org):
    url = reverse("admin:core_organization_change", args=[org.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="amo_host"' not in page
    admin_client.post(
        url,
        {
            "name": org.name,
            "amo_account_id": org.amo_account_id,
            "amo_subdomain": org.amo_subdomain,
            "amo_host": "attacker.example.com",
            "status": org.status,
            "status_reason": "",
            "call_settings-TOTAL_FORMS": "0",
            "call_settings-INITIAL_FORMS": "0",
        },
    )
    org.refresh_from_db()
    assert org.amo_host != "attacker.example.com"


def test_admin_login_locks_out_after_repeated_wrong_passwords(db):
    _staff("target", superuser=True)
    browser = Client(REMOTE_ADDR="203.0.113.40")
    login = reverse("admin:login")
    for _ in range(40):
        browser.post(login, {"username": "target", "password": "wrong", "next": "/admin/"})

    response = browser.post(login, {"username": "target", "password": PASSWORD})

    assert response.status_code == 429
    assert browser.get(reverse("admin:index")).status_code == 302  # not logged in
    # Other staff from other addresses are not locked out by it.
    _staff("colleague", superuser=True)
    other = Client(REMOTE_ADDR="198.51.100.8")
    assert other.post(login, {"username": "colleague", "password": PASSWORD}).status_code == 302


def _token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def test_with_two_factor_required_staff_need_a_totp_code(settings, org):
    settings.STAFF_REQUIRE_2FA = True
    user = _staff("secure", superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    login = reverse("admin:login")

    password_only = Client()
    response = password_only.post(login, {"username": "secure", "password": PASSWORD})
    assert response.status_code == 200  # the form asks for the code again
    assert 'name="otp_token"' in response.content.decode()
    assert password_only.get(reverse("admin:index")).status_code == 302
    assert password_only.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 302

    # Logged in by another route without a verified device: still no staff access.
    unverified = Client()
    unverified.force_login(user)
    assert unverified.get(reverse("admin:index")).status_code == 302
    assert unverified.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 302

    verified = Client()
    response = verified.post(
        login,
        {
            "username": "secure",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": _token(device),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert verified.get(reverse("admin:index")).status_code == 200
    assert verified.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 200


def test_without_two_factor_required_the_admin_login_is_plain(settings, db):
    settings.STAFF_REQUIRE_2FA = False
    page = Client().get(reverse("admin:login")).content.decode()
    assert 'name="otp_token"' not in page
    with scopes_disabled():
        assert not TOTPDevice.objects.exists()


def test_the_first_totp_device_is_made_from_the_command_line(db):
    from io import StringIO

    from django.core.management import CommandError, call_command

    user = _staff("newcomer")
    out = StringIO()
    call_command("staff_totp", "newcomer", stdout=out)
    assert "otpauth://totp/" in out.getvalue()
    assert TOTPDevice.objects.get(user=user).confirmed
    with pytest.raises(CommandError):
        call_command("staff_totp", "newcomer", stdout=StringIO())  # no silent replacement
    get_user_model().objects.create_user("customer-ish", password=PASSWORD)
    with pytest.raises(CommandError):
        call_command("staff_totp", "customer-ish", stdout=StringIO())
