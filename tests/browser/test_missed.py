"""«Пропущенные» in headless Chromium: the report with its figures and chart, a period switch,
the journal's call-back states, the call-back settings saved, English, phone width. The
screenshots in test-artifacts/ are what a reviewer looks at."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.callbacks import (
    callback_call_finalized,
    callback_settings_for,
    callback_settings_update,
)
from integration.services import ManagerMappingInput, manager_mappings_save
from pbx.models import Abonent, PbxCall, PbxNumber

MANAGERS = [("9161110001", "Иван", "Петров"), ("9161110002", "Мария", "Соколова"),
            ("9161110003", "Олег", "Смирнов")]  # fmt: skip


@pytest.fixture
def team_calls(org: Organization) -> dict[str, Abonent]:
    """Three managers and their missed calls of the last hours: returned quickly, returned late,
    returned by the client calling again, some still waiting (two past the deadline); and
    one from ten days ago."""
    now = timezone.now()
    callback_settings_update(organization=org, values={"working_hours": [None] * 7})
    with organization_scope(org):
        abonents = {
            phone: Abonent.objects.create(
                organization=org,
                user_id=f"{phone}@ip.beeline.ru",
                phone=phone,
                first_name=first,
                last_name=last,
            )
            for phone, first, last in MANAGERS
        }
        for index, (_phone, first, last) in enumerate(MANAGERS):
            AmoUser.objects.create(
                organization=org, amo_id=7001 + index, name=f"{first} {last}", fetched_at=now
            )
        sales = PbxNumber.objects.create(
            organization=org, number_id="n1", phone="4950000001", name="Отдел продаж"
        )
    manager_mappings_save(
        organization=org,
        rows=[
            ManagerMappingInput(abonents[phone].pk, True, 7001 + index)
            for index, (phone, _f, _l) in enumerate(MANAGERS)
        ],
    )
    iv, ma, ol = (abonents[phone] for phone, _f, _l in MANAGERS)

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    # (client, direction, outcome, started minutes ago, answered minutes ago, abonent, via sales)
    plan = [
        ("9000000001", "in", "missed", 300, None, iv, True),
        ("9000000001", "out", "answered", 296, 295.8, iv, False),
        ("9000000002", "in", "missed", 240, None, iv, True),
        ("9000000002", "out", "answered", 200.2, 200, iv, False),
        ("9000000003", "in", "missed", 180, None, ma, True),
        ("9000000003", "in", "answered", 172.2, 172, ma, True),
        ("9000000004", "in", "missed", 150, None, ma, False),
        ("9000000005", "in", "missed", 120, None, ol, False),
        ("9000000005", "out", "answered", 110.2, 110, ol, False),
        ("9000000006", "in", "missed", 95, None, ol, True),
        ("9000000007", "in", "missed", 8, None, iv, False),
        ("9000000008", "in", "missed", 1440 * 10, None, ma, False),
        ("9000000008", "out", "answered", 1440 * 10 - 12, 1440 * 10 - 12.2, ma, False),
    ]
    with organization_scope(org):
        calls = [
            PbxCall.objects.create(
                organization=org,
                ext_tracking_id=f"b{index}",
                direction=direction,
                external_phone=f"+7{client}",
                external_phone_national=client,
                number=sales if via_sales else None,
                abonent=abonent,
                started_at=ago(started),
                answered_at=ago(answered) if answered is not None else None,
                ended_at=ago(started) + timedelta(minutes=2),
                talk_seconds=95 if answered is not None else 0,
                outcome=outcome,
                status="finished",
                finished_at=ago(started) + timedelta(minutes=2),
                handed_off_at=ago(started) + timedelta(minutes=2),
            )
            for index, (client, direction, outcome, started, answered, abonent, via_sales) in (
                enumerate(plan)
            )
        ]
    for call in calls:
        callback_call_finalized(organization_id=org.pk, call_id=call.pk)
    return abonents


def test_missed_calls_report_in_the_browser(page, org, outsider, team_calls, screenshot):
    from playwright.sync_api import expect

    page.goto("/cabinet/login")
    page.get_by_label("Ключ доступа").fill(org.access_key)
    page.get_by_role("button", name="Войти").click()
    nav = page.get_by_role("navigation", name="Меню")
    nav.get_by_role("link", name="ПРОПУЩЕННЫЕ", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Пропущенные")
    expect(nav.locator('[aria-current="page"]')).to_have_text("ПРОПУЩЕННЫЕ")
    # The last 7 days (the default): the call missed ten days ago is not in them.
    expect(page.locator('[data-figure="missed"]')).to_have_text("7")
    expect(page.locator('[data-figure="returned"]')).to_contain_text("4")
    expect(page.locator('[data-figure="not_returned"]')).to_have_text("3")
    rows = page.locator("table.missed-calls tbody tr")
    expect(rows).to_have_count(7)
    expect(rows.first).to_contain_text("+79000000004")  # waiting longest, first
    expect(rows.first).to_contain_text("срок прошёл")
    expect(page.locator("figure.chart svg rect.chart-in-time").first).to_be_attached()
    expect(page.locator('tr[data-group="Отдел продаж"]')).to_contain_text("4")
    assert outsider.name not in page.content()
    screenshot(page, "01-missed-7-days")

    page.get_by_role("link", name="30 дней").click()
    expect(page.locator('[data-figure="missed"]')).to_have_text("8")
    expect(page.get_by_role("link", name="30 дней")).to_have_attribute("aria-current", "page")
    screenshot(page, "02-missed-30-days")

    # Every missed call's journal row says what became of it.
    nav.get_by_role("link", name="DASHBOARD", exact=True).click()
    journal = page.locator("#journal")
    expect(journal.locator('[data-callback="returned"]').first).to_contain_text("Перезвонили через")
    expect(journal.locator('[data-callback="returned_by_client"]')).to_contain_text(
        "Клиент перезвонил сам через 8 мин"
    )
    expect(journal.locator('[data-callback="overdue"]')).to_have_count(2)
    expect(journal.locator('[data-callback="waiting"]')).to_have_count(1)
    screenshot(page, "03-journal-call-back-states")

    # «Настройки звонков»: the call-back settings, saved with the toast.
    nav.get_by_role("link", name="НАСТРОЙКИ ЗВОНКОВ", exact=True).click()
    form = page.locator("#callback-form")
    form.get_by_label("Срок перезвона, рабочих минут").fill("20")
    form.get_by_label("Руководитель").select_option(label="Олег Смирнов")
    form.get_by_label("Понедельник", exact=True).check()
    form.get_by_label("Понедельник: с", exact=True).fill("08:00")
    form.get_by_label("Понедельник: до", exact=True).fill("17:00")
    form.get_by_role("button", name="Сохранить").click()
    expect(page.locator("#toasts .toast")).to_have_text("Сохранено")
    screenshot(page, "04-call-back-settings-saved")
    saved = callback_settings_for(organization=org)
    assert (saved.target_minutes, saved.supervisor_amo_user_id) == (20, 7003)
    assert saved.working_hours[0] == ["08:00", "17:00"]
    assert callback_settings_for(organization=outsider).target_minutes == 15

    # English, and a phone's width without sideways scrolling.
    nav.get_by_role("link", name="ПРОПУЩЕННЫЕ", exact=True).click()
    page.get_by_role("button", name="EN").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Missed calls")
    screenshot(page, "05-missed-en")
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "06-missed-phone")
