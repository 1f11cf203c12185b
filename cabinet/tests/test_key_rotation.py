"""«Сменить ключ»: a new access key, the old one dead at once, every session opened with it
logged out (other organizations of a session untouched); a reinstall shows the current key; no
page that shows a key may be cached."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from cabinet.testing import login_with_key
from core.models import AuditEntry, Organization
from core.tenancy import organization_scope

LOGIN = "/cabinet/login"


def test_rotating_the_key_logs_out_every_other_session_of_the_organization(
    cabinet: Client, org, outsider
):
    old_key = org.access_key
    elsewhere = Client()
    login_with_key(elsewhere, org)
    both = Client()  # a session that unlocked the organization and the outsider
    login_with_key(both, org)
    login_with_key(both, outsider)
    dashboard = reverse("cabinet:dashboard", args=[org.pk])

    response = cabinet.post(reverse("cabinet:keys_rotate", args=[org.pk]))

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.access_key != old_key
    # The one who pressed it stays in and sees the new key.
    page = cabinet.get(reverse("cabinet:keys", args=[org.pk])).content.decode()
    assert org.access_key in page and old_key not in page
    # Everybody else who came in with the old key is out.
    assert elsewhere.get(dashboard).status_code == 302
    assert both.get(dashboard).status_code == 404
    assert both.get(reverse("cabinet:dashboard", args=[outsider.pk])).status_code == 200
    # The old key opens nothing any more; the new one does.
    assert "Неверный ключ доступа" in Client().post(LOGIN, {"key": old_key}).content.decode()
    assert Client().post(LOGIN, {"key": org.access_key}).status_code == 302
    with organization_scope(org):
        assert AuditEntry.objects.filter(kind="access_key.rotated").exists()
    with organization_scope(outsider):
        assert not AuditEntry.objects.filter(kind="access_key.rotated").exists()
    outsider_key = Organization.objects.get(pk=outsider.pk).access_key
    assert outsider_key == outsider.access_key


def test_rotation_is_post_only_and_needs_the_organization(cabinet: Client, org, outsider):
    assert cabinet.get(reverse("cabinet:keys_rotate", args=[org.pk])).status_code == 405
    assert cabinet.post(reverse("cabinet:keys_rotate", args=[outsider.pk])).status_code == 404
    assert Organization.objects.get(pk=outsider.pk).access_key == outsider.access_key


def test_a_reinstall_shows_the_current_key(installed_org, amo_account):
    from sandbox.amocrm.services import oauth_code_issue

    viewer = Client()
    login_with_key(viewer, installed_org)
    viewer.post(reverse("cabinet:keys_rotate", args=[installed_org.pk]))
    installed_org.refresh_from_db()

    page = Client().get(
        "/amocrm/oauth/callback",
        {"code": oauth_code_issue(account=amo_account), "referer": amo_account.host},
    )

    assert page.status_code == 200
    assert installed_org.access_key in page.content.decode()
    assert "no-store" in page["Cache-Control"]


def test_pages_showing_a_key_are_never_cached(cabinet: Client, org):
    response = cabinet.get(reverse("cabinet:keys", args=[org.pk]))
    assert org.access_key in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_revoking_recording_links_from_the_cabinet(cabinet: Client, org, outsider):
    from django.utils import timezone

    from pbx.models import PbxCall
    from pbx.recording_links import recording_ref_from_token
    from pbx.selectors import call_recording_url

    def link_of(organization) -> str:
        with organization_scope(organization):
            call = PbxCall.objects.create(
                organization=organization,
                ext_tracking_id=f"revoke-{organization.pk}",
                direction="in",
                answered_at=timezone.now(),
                recording_user_id="9161110001@ip.beeline.ru",
            )
        return call_recording_url(call=call).rsplit("/", 1)[1]

    mine, theirs = link_of(org), link_of(outsider)

    response = cabinet.post(reverse("cabinet:recording_links_revoke", args=[org.pk]))

    assert response.status_code == 302
    assert recording_ref_from_token(token=mine) is None
    assert recording_ref_from_token(token=theirs) is not None
    assert (
        cabinet.post(reverse("cabinet:recording_links_revoke", args=[outsider.pk])).status_code
        == 404
    )
    assert recording_ref_from_token(token=theirs) is not None
