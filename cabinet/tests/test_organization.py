from __future__ import annotations

from django.test import Client
from django.urls import reverse

from cabinet.access import SESSION_ORGANIZATIONS
from integration.models import AuditEntry, CallSettings, Organization
from integration.services import audit_record
from integration.tenancy import scopes_disabled


def test_shows_the_amocrm_account(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert org.name in page
    assert f'href="https://{org.amo_host}"' in page
    assert str(org.amo_account_id) in page


def test_delete_needs_the_typed_name(cabinet: Client, org):
    response = cabinet.post(
        reverse("cabinet:organization_delete", args=[org.pk]), {"confirmation": "yes"}
    )
    assert response.status_code == 400
    assert "Введите название организации" in response.content.decode()
    assert Organization.objects.filter(pk=org.pk).exists()


def test_delete_removes_everything_of_the_organization_only(cabinet: Client, org, outsider):
    audit_record(organization=org, kind="test", message="mine")
    audit_record(organization=outsider, kind="test", message="theirs")

    response = cabinet.post(
        reverse("cabinet:organization_delete", args=[org.pk]), {"confirmation": org.name}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not Organization.objects.filter(pk=org.pk).exists()
    with scopes_disabled():
        assert not CallSettings.objects.filter(organization_id=org.pk).exists()
        assert not AuditEntry.objects.filter(organization_id=org.pk).exists()
        assert AuditEntry.objects.filter(organization_id=outsider.pk).count() == 1
    assert cabinet.session[SESSION_ORGANIZATIONS] == []
    assert cabinet.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 302


def test_shows_the_beeline_pbx_summary(cabinet: Client, org, beeline_pbx):
    from pbx.services import beeline_token_save

    beeline_token_save(organization=org, token=beeline_pbx.token)
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert "Облачная АТС Билайн" in page
    assert "4950000001" in page and "4950000002" in page
    assert "многоканальный" in page
