from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.tenancy import organization_scope, scopes_disabled
from crm.models import AmoUser
from integration.models import ManagerMapping
from integration.selectors import mapping_for_amo_user
from pbx.connection import beeline_token_save
from pbx.models import Abonent
from pbx.selectors import abonents_for


def _form_data(page_rows: dict[int, tuple[bool, int | None]]) -> dict[str, str]:
    data = {}
    for abonent_pk, (enabled, amo_id) in page_rows.items():
        if enabled:
            data[f"enabled_{abonent_pk}"] = "on"
        data[f"amo_user_{abonent_pk}"] = "" if amo_id is None else str(amo_id)
    return data


@pytest.fixture
def ready_org(installed_org, beeline_pbx):
    """Installed in amoCRM, Beeline token saved: 3 abonents, amoCRM users not loaded yet."""
    beeline_token_save(organization=installed_org, token=beeline_pbx.token)
    return installed_org


def _abonent(org, phone):
    with organization_scope(org):
        return Abonent.objects.get(phone=phone)


def test_empty_table_tells_what_to_do_first(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:managers", args=[org.pk])).content.decode()
    assert "Номеров Билайн пока нет" in page
    assert "Настройки ключей" in page


def test_load_managers_then_suggestions_come_from_profile_phones(
    installed_cabinet: Client, ready_org
):
    url = reverse("cabinet:managers_refresh", args=[ready_org.pk])
    response = installed_cabinet.post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "Менеджеры amoCRM загружены: 3" in json.loads(response["HX-Trigger"])["toast"]["message"]
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="managers"')
    for header in ("Номер Beeline", "Вкл.", "Менеджер Amo CRM"):
        assert header in body
    with organization_scope(ready_org):
        ivan = AmoUser.objects.get(name="Иван Петров")
        maria = AmoUser.objects.get(name="Мария Соколова")
    # 9161110001 ↔ Иван and 9161110002 ↔ Мария («+7 916 111-00-02» in her profile) are
    # preselected; 9161110003 has nobody with that phone.
    flat = " ".join(body.split())
    assert f'value="{ivan.amo_id}" selected' in flat
    assert f'value="{maria.amo_id}" selected' in flat
    assert flat.count("selected") == 2
    assert flat.count("Предложено по телефону в профиле amoCRM") == 2


def test_refresh_without_javascript_redirects_with_a_message(installed_cabinet, ready_org):
    url = reverse("cabinet:managers_refresh", args=[ready_org.pk])
    response = installed_cabinet.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("cabinet:managers", args=[ready_org.pk])
    assert "Менеджеры amoCRM загружены: 3" in response.content.decode()


def test_refresh_keeps_unsaved_choices(installed_cabinet: Client, ready_org):
    installed_cabinet.post(reverse("cabinet:managers_refresh", args=[ready_org.pk]))
    third = _abonent(ready_org, "9161110003")
    with organization_scope(ready_org):
        admin = AmoUser.objects.get(name="Админ")
    data = _form_data({third.pk: (False, admin.amo_id)})
    response = installed_cabinet.post(
        reverse("cabinet:managers_refresh", args=[ready_org.pk]), data, HTTP_HX_REQUEST="true"
    )
    flat = " ".join(response.content.decode().split())
    assert f'value="{admin.amo_id}" selected' in flat
    with organization_scope(ready_org):
        assert not ManagerMapping.objects.exists()  # nothing saved by loading


def test_save_maps_numbers_and_says_saved(installed_cabinet: Client, ready_org, outsider):
    installed_cabinet.post(reverse("cabinet:managers_refresh", args=[ready_org.pk]))
    with organization_scope(ready_org):
        users = {u.name: u.amo_id for u in AmoUser.objects.all()}
    first, second, third = (_abonent(ready_org, f"916111000{n}") for n in (1, 2, 3))
    data = _form_data(
        {
            first.pk: (True, users["Иван Петров"]),
            second.pk: (True, users["Мария Соколова"]),
            third.pk: (False, None),
        }
    )
    url = reverse("cabinet:managers", args=[ready_org.pk])
    response = installed_cabinet.post(url, data, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["toast"]["message"] == "Сохранено"
    mapping = mapping_for_amo_user(organization=ready_org, amo_user_id=users["Мария Соколова"])
    assert mapping is not None and mapping.abonent == second
    with organization_scope(ready_org):
        saved = {m.abonent_id: (m.enabled, m.amo_user_id) for m in ManagerMapping.objects.all()}
    assert saved == {
        first.pk: (True, users["Иван Петров"]),
        second.pk: (True, users["Мария Соколова"]),
        third.pk: (False, None),
    }
    with organization_scope(outsider):
        assert not ManagerMapping.objects.exists()


def test_one_manager_on_two_numbers_is_refused(installed_cabinet: Client, ready_org):
    installed_cabinet.post(reverse("cabinet:managers_refresh", args=[ready_org.pk]))
    with organization_scope(ready_org):
        ivan = AmoUser.objects.get(name="Иван Петров").amo_id
    first, second = _abonent(ready_org, "9161110001"), _abonent(ready_org, "9161110002")
    response = installed_cabinet.post(
        reverse("cabinet:managers", args=[ready_org.pk]),
        _form_data({first.pk: (True, ivan), second.pk: (True, ivan)}),
    )
    assert response.status_code == 400
    assert response.content.decode().count("Этот менеджер уже выбран для другого номера.") == 2
    with organization_scope(ready_org):
        assert not ManagerMapping.objects.exists()


def test_outsider_abonents_are_neither_shown_nor_writable(
    cabinet: Client, org, outsider, beeline_pbx
):
    beeline_token_save(organization=outsider, token=beeline_pbx.token)
    foreign = next(iter(abonents_for(organization=outsider)))
    page = cabinet.get(reverse("cabinet:managers", args=[org.pk])).content.decode()
    assert foreign.phone not in page
    cabinet.post(reverse("cabinet:managers", args=[org.pk]), _form_data({foreign.pk: (False, 123)}))
    with scopes_disabled():
        assert not ManagerMapping.objects.exists()


def _populate(org, count: int, users: int = 20) -> None:
    now = timezone.now()
    with organization_scope(org):
        abonents = Abonent.objects.bulk_create(
            Abonent(organization=org, user_id=f"u{n}@ip.beeline.ru", phone=f"9{n:09d}")
            for n in range(count)
        )
        AmoUser.objects.bulk_create(
            AmoUser(
                organization=org,
                amo_id=1000 + n,
                name=f"Manager {n}",
                phone_national=f"9{n:09d}",
                fetched_at=now,
            )
            for n in range(users)
        )
        ManagerMapping.objects.bulk_create(
            ManagerMapping(organization=org, abonent=a, amo_user_id=1000 + n)
            for n, a in enumerate(abonents[: min(users, count) // 2])
        )


def _queries(client: Client, method: str, url: str, data: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(url, data or {})
        assert response.status_code in (200, 302)
    return len(ctx.captured_queries)


def test_page_and_save_run_a_constant_number_of_queries(client: Client, outsider):
    from cabinet.testing import login_with_key
    from core.testing import organization_make

    counts = {}
    for size in (10, 500):
        org = organization_make(name=f"Org {size}")
        _populate(org, size)
        login_with_key(client, org)
        url = reverse("cabinet:managers", args=[org.pk])
        with organization_scope(org):
            rows = {a.pk: (True, None) for a in Abonent.objects.all()}
        counts[size] = (
            _queries(client, "get", url),
            _queries(client, "post", url, _form_data(rows)),
        )
    assert counts[10] == counts[500], counts
    assert counts[10][0] <= 12, counts  # the page itself stays small, not just constant
