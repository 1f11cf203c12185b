from __future__ import annotations

from django.conf import settings
from django.test import Client
from django.urls import reverse

from cabinet.access import SESSION_ORGANIZATIONS
from core.models import AuditEntry, Organization
from core.services import audit_record
from core.tenancy import scopes_disabled
from integration.models import CallSettings


def test_shows_the_amocrm_account(cabinet: Client, org, settings):
    settings.AMOCRM_API_BASE_URL = ""  # production: amoCRM itself
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert org.name in page
    assert f'href="https://{org.amo_host}"' in page
    assert str(org.amo_account_id) in page


def test_amocrm_links_go_to_the_sandbox_while_it_stands_in_for_amocrm(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert f'href="{settings.AMOCRM_API_BASE_URL}"' in page
    assert f'href="https://{org.amo_host}"' not in page


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
    assert cabinet.session[SESSION_ORGANIZATIONS] == {}
    assert cabinet.get(reverse("cabinet:dashboard", args=[org.pk])).status_code == 302


def test_shows_the_beeline_pbx_summary(cabinet: Client, org, beeline_pbx):
    from pbx.connection import beeline_token_save

    beeline_token_save(organization=org, token=beeline_pbx.token)
    page = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert "Облачная АТС Билайн" in page
    assert "4950000001" in page and "4950000002" in page
    assert "многоканальный" in page


def _numbers(org) -> dict[str, object]:
    from core.tenancy import organization_scope
    from pbx.models import PbxNumber

    with organization_scope(org):
        return {n.phone: n for n in PbxNumber.objects.all()}


def test_number_names_are_typed_in_and_tag_new_contacts(
    installed_cabinet: Client, connected_org, beeline_pbx, amo_account, outsider
):
    import json

    from django.test import TestCase

    from cabinet.testing import call_play

    numbers = _numbers(connected_org)
    sales = numbers["4950000001"]
    # Beeline's /numbers has no names: the phone stands in until the admin types one.
    page = installed_cabinet.get(
        reverse("cabinet:organization", args=[connected_org.pk])
    ).content.decode()
    assert f'name="name_{sales.pk}"' in page and 'placeholder="4950000001"' in page

    url = reverse("cabinet:numbers", args=[connected_org.pk])
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = installed_cabinet.post(
            url, {f"name_{sales.pk}": "  Отдел   продаж ", "name_999999": "чужой"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Сохранено"
    assert 'value="Отдел продаж"' in response.content.decode()
    assert _numbers(connected_org)["4950000001"].name == "Отдел продаж"

    call_play(
        beeline_pbx,
        scenario="inbound_group_answered",
        abonent_phone="9161110002",
        external_phone="+79034445566",
    )
    contact = amo_account.contacts.get()
    assert sorted(tag.name for tag in contact.tags.all()) == ["BeelineConnector", "Отдел продаж"]


def test_number_names_without_javascript_and_too_long(installed_cabinet: Client, connected_org):
    sales = _numbers(connected_org)["4950000001"]
    url = reverse("cabinet:numbers", args=[connected_org.pk])

    response = installed_cabinet.post(url, {f"name_{sales.pk}": "x" * 300})
    assert response.status_code == 400
    assert "Убедитесь, что это значение содержит не более 255 символов" in (
        response.content.decode()
    )

    response = installed_cabinet.post(url, {f"name_{sales.pk}": "Продажи"}, follow=True)
    page_url = reverse("cabinet:organization", args=[connected_org.pk])
    assert response.redirect_chain[-1][0] == page_url + "#numbers-form"
    assert "Сохранено" in response.content.decode()
    assert _numbers(connected_org)["4950000001"].name == "Продажи"


def test_outsider_numbers_cannot_be_renamed(cabinet: Client, org, outsider, beeline_pbx):
    from pbx.connection import beeline_token_save

    beeline_token_save(organization=outsider, token=beeline_pbx.token)
    theirs = _numbers(outsider)["4950000001"]

    response = cabinet.post(
        reverse("cabinet:numbers", args=[outsider.pk]), {f"name_{theirs.pk}": "взлом"}
    )
    assert response.status_code == 404
    cabinet.post(reverse("cabinet:numbers", args=[org.pk]), {f"name_{theirs.pk}": "взлом"})
    assert _numbers(outsider)["4950000001"].name == ""


def test_widget_status_says_what_is_known(cabinet: Client, org, installed_cabinet, installed_org):
    fresh = cabinet.get(reverse("cabinet:organization", args=[org.pk])).content.decode()
    assert "Виджет «Звонок Beeline»" in fresh
    assert "Не установлен" in fresh and "«Установить»" in fresh

    page = installed_cabinet.get(
        reverse("cabinet:organization", args=[installed_org.pk])
    ).content.decode()
    assert 'badge-ok">Установлен<' in page
    assert "Соединение установлено" in page  # how to check it in amoCRM
    assert "не записываются" in page  # and what Beetel cannot know


def test_number_types_follow_beeline_and_unnamed_numbers_add_no_digit_tag(
    installed_cabinet: Client, connected_org, beeline_pbx, amo_account, outsider
):
    """Issue: every number was labelled «многоканальный» although Beeline said «нет», and new
    contacts got a tag of bare digits («4950000001») until the number was named."""
    import re

    from cabinet.testing import call_play

    numbers = _numbers(connected_org)
    assert numbers["4950000001"].is_multichannel is True
    assert numbers["4950000002"].is_multichannel is False
    page = installed_cabinet.get(
        reverse("cabinet:organization", args=[connected_org.pk])
    ).content.decode()
    types = re.findall(r'data-label="Тип">\s*([^<]+?)\s*</td>', page)
    assert types == ["многоканальный", "входящий, не многоканальный"]

    # The multichannel number has no name yet: the new contact gets only BeelineConnector.
    call_play(
        beeline_pbx,
        scenario="inbound_group_answered",
        abonent_phone="9161110002",
        external_phone="+79034445577",
    )
    contact = amo_account.contacts.get()
    assert [tag.name for tag in contact.tags.all()] == ["BeelineConnector"]
    # The journal names the line by its number meanwhile.
    journal = installed_cabinet.get(
        reverse("cabinet:dashboard", args=[connected_org.pk])
    ).content.decode()
    assert "через «4950000001»" in journal
