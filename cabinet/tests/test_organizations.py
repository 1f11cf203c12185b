from __future__ import annotations

from django.test import Client
from django.urls import reverse

from cabinet.testing import login_with_key
from core.models import Organization
from core.services import organization_set_status
from core.testing import organization_make


def test_list_shows_only_the_unlocked_organizations_with_status(cabinet: Client, org, outsider):
    organization_set_status(
        organization=org, status=Organization.Status.NEEDS_REAUTH, reason="token revoked"
    )
    page = cabinet.get(reverse("cabinet:organizations")).content.decode()
    assert org.name in page
    assert "Нужна повторная авторизация" in page
    assert outsider.name not in page


def test_another_key_adds_an_organization_and_switching_works(cabinet: Client, org):
    second = organization_make(name="Second Branch")
    login_with_key(cabinet, second)

    page = cabinet.get(reverse("cabinet:organizations")).content.decode()
    assert org.name in page and second.name in page
    # The one just added is current; the other offers «Перейти».
    assert cabinet.get(reverse("cabinet:home"))["Location"] == reverse(
        "cabinet:dashboard", args=[second.pk]
    )
    response = cabinet.post(reverse("cabinet:organization_switch", args=[org.pk]))
    assert response["Location"] == reverse("cabinet:dashboard", args=[org.pk])
    assert cabinet.get(reverse("cabinet:home"))["Location"] == reverse(
        "cabinet:dashboard", args=[org.pk]
    )
    # Both stay open at once.
    for organization in (org, second):
        assert cabinet.get(reverse("cabinet:keys", args=[organization.pk])).status_code == 200


def test_menu_has_the_manual_labels(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:dashboard", args=[org.pk])).content.decode()
    labels = [
        "DASHBOARD",
        "СПИСОК ОРГАНИЗАЦИЙ",
        "ДИАГНОСТИКА",
        "ОРГАНИЗАЦИЯ",
        "МЕНЕДЖЕРЫ",
        "НАСТРОЙКИ ЗВОНКОВ",
        "НАСТРОЙКИ КЛЮЧЕЙ",
        "ВЫХОД",
    ]
    positions = [page.index(label) for label in labels]
    assert positions == sorted(positions)
