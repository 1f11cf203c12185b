from __future__ import annotations

import json

from django.test import Client
from django.urls import reverse

from pbx.selectors import abonents_for, pbx_health


def test_shows_the_access_key_with_a_copy_button(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:keys", args=[org.pk])).content.decode()
    assert "Ваш ключ доступа" in page
    assert org.access_key in page
    assert 'data-copy="#access-key"' in page
    assert "Beeline API Token" in page


def test_saving_a_good_token_syncs_the_pbx_and_says_saved(cabinet: Client, org, beeline_pbx):
    url = reverse("cabinet:keys", args=[org.pk])
    response = cabinet.post(url, {"token": beeline_pbx.token}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Сохранено"
    assert pbx_health(organization=org).token_saved
    assert {a.phone for a in abonents_for(organization=org)} == {
        "9161110001",
        "9161110002",
        "9161110003",
    }
    # Once saved the token is masked, never shown again.
    page = cabinet.get(url).content.decode()
    assert beeline_pbx.token not in page
    assert "Токен сохранён и проверен" in page


def test_rejected_token_shows_beelines_reason_next_to_the_field(cabinet: Client, org, beeline_pbx):
    url = reverse("cabinet:keys", args=[org.pk])
    response = cabinet.post(url, {"token": "not-a-real-token"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400  # swapped by htmx (templates/base.html)
    assert json.loads(response["HX-Trigger"])["toast"] == {
        "message": "Токен не сохранён.",
        "level": "error",
    }
    body = response.content.decode()
    # What was pasted stays in the field to be corrected.
    assert 'value="not-a-real-token"' in body
    # The emulator's description for a bad token, shown as Beeline gave it.
    assert "Неверный или отсутствующий токен API" in body
    assert not pbx_health(organization=org).token_saved


def test_rejected_token_without_javascript_renders_the_page(cabinet: Client, org, beeline_pbx):
    url = reverse("cabinet:keys", args=[org.pk])
    response = cabinet.post(url, {"token": "not-a-real-token"})
    assert response.status_code == 400
    assert "<html" in response.content.decode()
    assert 'role="alert"' in response.content.decode()


def test_outsider_token_is_untouched(cabinet: Client, org, outsider, beeline_pbx):
    cabinet.post(reverse("cabinet:keys", args=[org.pk]), {"token": beeline_pbx.token})
    assert pbx_health(organization=org).token_saved
    assert not pbx_health(organization=outsider).token_saved
    assert not abonents_for(organization=outsider).exists()
