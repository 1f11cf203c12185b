from __future__ import annotations

import json

from django.test import Client
from django.urls import reverse

from integration.selectors import call_settings_for

LABELS = [
    "Уведомления при входящих звонках",
    "Создание контакта при входящих звонках",
    "Добавление звонка при входящих звонках",
    "Уведомления при исходящих звонках",
    "Создание контакта при исходящих звонках",
    "Добавление звонка при исходящих звонках",
    "Создание задач (перезвонить) при пропущенных звонках",
]
ALL_ON = {
    "notify_incoming": "on",
    "create_contact_incoming": "on",
    "log_call_incoming": "on",
    "notify_outgoing": "on",
    "create_contact_outgoing": "on",
    "log_call_outgoing": "on",
    "create_task_missed": "on",
}


def test_page_lists_the_seven_switches_in_order_with_consequences(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk])).content.decode()
    positions = [page.index(label) for label in LABELS]
    assert positions == sorted(positions)
    assert "не записывается в amoCRM" in page  # setting 2 off
    assert "личных звонков сотрудников" in page  # setting 5 captures personal calls
    switches = page.split('id="callback-form"')[0]  # the call-back form follows them
    assert switches.count('type="checkbox"') == 7 + 3  # the seven, then the three options
    assert switches.count("checked") == 7  # the seven on by default, the options off
    assert "Сохранить" in page


def test_save_without_javascript_redirects_with_the_toast(cabinet: Client, org, outsider):
    url = reverse("cabinet:call_settings", args=[org.pk])
    data = {**ALL_ON}
    del data["create_contact_outgoing"]  # switch 5 off
    response = cabinet.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert "Сохранено" in response.content.decode()
    settings = call_settings_for(organization=org)
    assert settings.create_contact_outgoing is False
    assert settings.notify_incoming is True
    assert call_settings_for(organization=outsider).create_contact_outgoing is True


def test_save_with_htmx_returns_the_form_and_a_toast_trigger(cabinet: Client, org):
    url = reverse("cabinet:call_settings", args=[org.pk])
    response = cabinet.post(url, {}, HTTP_HX_REQUEST="true")  # everything off
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith("<form")
    assert "<html" not in body
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Сохранено"
    settings = call_settings_for(organization=org)
    assert not any(getattr(settings, name) for name in ALL_ON)


def test_english_locale_translates_the_page(cabinet: Client, org):
    cabinet.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk])).content.decode()
    assert "Notifications on incoming calls" in page
    assert "CALL SETTINGS" in page
    assert "Save" in page
