"""«Пропущенные»: the call-back report checked against a scenario computed by hand, its cost
(constant queries), the page, the journal's call-back states and the settings form."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.callback_report import callback_report
from integration.callbacks import (
    callback_call_finalized,
    callback_settings_for,
    callback_settings_update,
)
from integration.models import MissedCall
from integration.services import ManagerMappingInput, manager_mappings_save
from pbx.models import Abonent, PbxCall, PbxNumber
from pbx.numbers import pbx_number_rename
from pbx.selectors import abonents_for, numbers_for

MSK = ZoneInfo("Europe/Moscow")
EVENING = datetime(2026, 3, 4, 18, 30, tzinfo=MSK)  # a Wednesday; the report is read then


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 4, hour, minute, second, tzinfo=MSK)


@dataclass
class Team:
    organization: Organization
    ivan: Abonent
    maria: Abonent
    admin: Abonent  # the third manager: the amoCRM admin took the third number
    sales: PbxNumber  # the multichannel «Отдел продаж»


@pytest.fixture
def team(connected_org) -> Team:
    abonents = {a.phone: a for a in abonents_for(organization=connected_org)}
    with organization_scope(connected_org):
        users = dict(AmoUser.objects.values_list("name", "amo_id"))
    manager_mappings_save(
        organization=connected_org,
        rows=[
            ManagerMappingInput(abonents["9161110001"].pk, True, users["Иван Петров"]),
            ManagerMappingInput(abonents["9161110002"].pk, True, users["Мария Соколова"]),
            ManagerMappingInput(abonents["9161110003"].pk, True, users["Админ"]),
        ],
    )
    sales = next(n for n in numbers_for(organization=connected_org) if n.is_multichannel)
    sales = pbx_number_rename(
        organization=connected_org, number_id=sales.number_id, name="Отдел продаж"
    )
    return Team(
        organization=connected_org,
        ivan=abonents["9161110001"],
        maria=abonents["9161110002"],
        admin=abonents["9161110003"],
        sales=sales,
    )


def call(
    team: Team,
    name: str,
    client: str,
    *,
    direction: str,
    outcome: str,
    start: datetime,
    abonent: Abonent,
    answered: datetime | None = None,
    talk: int = 0,
    via_sales: bool = False,
) -> PbxCall:
    """A finished, handed-on call as pbx leaves it (the hook reads nothing else)."""
    end = (answered or start) + timedelta(seconds=talk + 20)
    with organization_scope(team.organization):
        return PbxCall.objects.create(
            organization=team.organization,
            ext_tracking_id=name,
            direction=direction,
            external_phone=f"+7{client}",
            external_phone_national=client,
            number=team.sales if via_sales else None,
            abonent=abonent,
            started_at=start,
            answered_at=answered,
            ended_at=end,
            talk_seconds=talk,
            outcome=outcome,
            status="finished",
            finished_at=end,
            handed_off_at=end + timedelta(seconds=5),
        )


def scenario(team: Team) -> list[PbxCall]:
    """27 calls of 13 clients on one Wednesday, three managers; SLA 15 working minutes.

    Иван: c1 back in 5 min; c2 back in 20 (late); c3 calls again, answered after 8; c4 missed
    (an answered call before it does not count); c5 missed twice (13:00, 13:04), one call back
    at 13:10. Мария: c6 back in 2; c7 in 30 (late); c8 missed; c9 an unanswered attempt at
    14:12 (does not count), answered at 14:40. Админ: c10 back in 10; c11, c12 missed; c13
    missed at 16:00 and again at 16:05, called back at 16:20 sharp (the second just in time).
    c1–c3, c6, c7 came through «Отдел продаж». Plus one unrelated answered call.
    """
    iv, ma, ad = team.ivan, team.maria, team.admin
    miss = {"direction": "in", "outcome": "missed"}
    out = {"direction": "out", "outcome": "answered", "talk": 60}
    inc = {"direction": "in", "outcome": "answered", "talk": 60}
    attempt = {"direction": "out", "outcome": "missed"}
    plan = [
        ("c1-miss", "9000000001", miss, at(10, 0), iv, None, True),
        ("c1-back", "9000000001", out, at(10, 4, 50), iv, at(10, 5), False),
        ("c2-miss", "9000000002", miss, at(10, 10), iv, None, True),
        ("c2-back", "9000000002", out, at(10, 29, 50), iv, at(10, 30), False),
        ("c3-miss", "9000000003", miss, at(11, 0), iv, None, True),
        ("c3-again", "9000000003", inc, at(11, 7, 50), iv, at(11, 8), True),
        ("c4-before", "9000000004", inc, at(11, 50), iv, at(11, 50, 10), False),
        ("c4-miss", "9000000004", miss, at(12, 0), iv, None, False),
        ("c5-miss", "9000000005", miss, at(13, 0), iv, None, False),
        ("c5-miss2", "9000000005", miss, at(13, 4), iv, None, False),
        ("c5-back", "9000000005", out, at(13, 9, 50), iv, at(13, 10), False),
        ("c6-miss", "9000000006", miss, at(10, 0), ma, None, True),
        ("c6-back", "9000000006", out, at(10, 1, 50), ma, at(10, 2), False),
        ("c7-miss", "9000000007", miss, at(10, 20), ma, None, True),
        ("c7-back", "9000000007", out, at(10, 49, 50), ma, at(10, 50), False),
        ("c8-miss", "9000000008", miss, at(14, 0), ma, None, False),
        ("c9-miss", "9000000009", miss, at(14, 10), ma, None, False),
        ("c9-try", "9000000009", attempt, at(14, 12), ma, None, False),
        ("c9-back", "9000000009", out, at(14, 39, 50), ma, at(14, 40), False),
        ("c10-miss", "9000000010", miss, at(9, 30), ad, None, False),
        ("c10-back", "9000000010", out, at(9, 39, 50), ad, at(9, 40), False),
        ("c11-miss", "9000000011", miss, at(15, 0), ad, None, False),
        ("c12-miss", "9000000012", miss, at(15, 10), ad, None, False),
        ("c13-miss", "9000000013", miss, at(16, 0), ad, None, False),
        ("c13-miss2", "9000000013", miss, at(16, 5), ad, None, False),
        ("c13-back", "9000000013", out, at(16, 19, 50), ad, at(16, 20), False),
        ("other", "9000000099", inc, at(12, 30), ma, at(12, 30, 5), False),
    ]  # fmt: skip
    return [
        call(team, name, client, **kind, start=start, abonent=who, answered=ans, via_sales=sales)
        for name, client, kind, start, who, ans, sales in plan
    ]


def play(team: Team, calls: list[PbxCall], *, seed: int | None) -> None:
    """Hand the calls to call-back tracking, in time order or shuffled (the result is the
    same: what decides is when calls happened, not when they arrived)."""
    order = list(calls)
    if seed is not None:
        random.Random(seed).shuffle(order)
    for pbx_call in order:
        callback_call_finalized(organization_id=team.organization.pk, call_id=pbx_call.pk)


# Waits in seconds, by hand: Иван 300, 1200, 480, 600 (c5 13:00), 360 (c5 13:04);
# Мария 120, 1800, 1800; Админ 600, 1200 (c13 16:00), 900 (c13 16:05, exactly at the deadline).
HAND = {
    # label: (missed, returned, in time, median, p90)   percentile_cont = linear interpolation
    "total": (15, 11, 7, 600.0, 1800.0),
    "Иван Петров": (6, 5, 4, 480.0, 960.0),
    "Мария Соколова": (4, 3, 1, 1800.0, 1800.0),
    "Админ": (5, 3, 2, 900.0, 1140.0),
    "Отдел продаж": (5, 5, 3, 480.0, 1560.0),
    "Напрямую сотруднику": (10, 6, 4, 750.0, 1500.0),
}


def figures(f) -> tuple:
    return (f.missed, f.returned, f.returned_in_time, f.median_seconds, f.p90_seconds)


@pytest.mark.parametrize("seed", [None, 1, 2, 3], ids=["in-order", "shuffled-1", "2", "3"])
def test_report_figures_equal_the_scenario_computed_by_hand(team, outsider, seed):
    calls = scenario(team)
    play(team, calls, seed=seed)
    play(team, calls, seed=99)  # every call handed on twice: nothing changes

    report = callback_report(organization=team.organization, days=1, now=EVENING)

    assert figures(report.totals) == HAND["total"]
    assert report.totals.not_returned == 4
    assert {g.label: figures(g.figures) for g in report.managers} == {
        name: HAND[name] for name in ("Иван Петров", "Мария Соколова", "Админ")
    }
    assert {g.label: figures(g.figures) for g in report.numbers} == {
        name: HAND[name] for name in ("Отдел продаж", "Напрямую сотруднику")
    }
    # Not returned first, the longest waiting on top, with how long they have waited.
    waiting = [(c.phone, c.wait_seconds, c.overdue) for c in report.calls if not c.returned_at]
    assert waiting == [
        ("+79000000004", int((EVENING - at(12, 0)).total_seconds()), True),
        ("+79000000008", int((EVENING - at(14, 0)).total_seconds()), True),
        ("+79000000011", int((EVENING - at(15, 0)).total_seconds()), True),
        ("+79000000012", int((EVENING - at(15, 10)).total_seconds()), True),
    ]
    assert [c.returned_at is None for c in report.calls] == [True] * 4 + [False] * 11
    by_phone = {c.phone: c for c in report.calls}
    assert by_phone["+79000000003"].returned_by_client
    assert by_phone["+79000000001"].returned_by_name == "Иван Петров"
    # The chart's day: 7 in time, 4 late, 4 waiting.
    [day] = report.series
    assert (day.day.isoformat(), day.in_time, day.late, day.waiting) == ("2026-03-04", 7, 4, 4)
    # Seven days and thirty include the same Wednesday; the outsider has nothing.
    week = callback_report(organization=team.organization, days=7, now=EVENING + timedelta(days=2))
    assert figures(week.totals) == HAND["total"]
    assert callback_report(organization=outsider, days=30, now=EVENING).totals.missed == 0


def test_the_attempt_setting_changes_who_returned_c9(team):
    callback_settings_update(
        organization=team.organization, values={"count_unanswered_attempts": True}
    )
    play(team, scenario(team), seed=None)
    report = callback_report(organization=team.organization, days=1, now=EVENING)
    c9 = next(c for c in report.calls if c.phone == "+79000000009")
    assert c9.wait_seconds == 120 and not c9.returned_answered


# --- cost ------------------------------------------------------------------------------------


def missed_make(
    organization: Organization, count: int, *, start: int = 0, until: datetime = EVENING
) -> None:
    """Missed calls ``start`` … ``start + count - 1``, 2000 s apart over the 4 weeks before
    ``until``, a third of them returned, spread over the amoCRM users and the numbers."""
    base = until - timedelta(days=28)
    with organization_scope(organization):
        managers = list(AmoUser.objects.values_list("amo_id", flat=True)) or [None]
        numbers = list(PbxNumber.objects.all()) or [None]
        calls = PbxCall.objects.bulk_create(
            [
                PbxCall(
                    organization=organization,
                    ext_tracking_id=f"bulk-{i}",
                    direction="in",
                    external_phone=f"+79{i:09d}",
                    external_phone_national=f"9{i:09d}",
                    started_at=base + timedelta(seconds=2000 * i),
                    number=numbers[i % len(numbers)],
                    outcome="missed",
                    status="finished",
                )
                for i in range(start, start + count)
            ]
        )
        MissedCall.objects.bulk_create(
            [
                MissedCall(
                    organization=organization,
                    pbx_call=pbx_call,
                    phone_national=pbx_call.external_phone_national,
                    missed_at=pbx_call.started_at,
                    due_at=pbx_call.started_at + timedelta(minutes=15),
                    number=pbx_call.number,
                    manager_amo_user_id=managers[i % len(managers)],
                    returned_at=(
                        pbx_call.started_at + timedelta(minutes=i % 40) if i % 3 == 0 else None
                    ),
                    wait_seconds=60 * (i % 40) if i % 3 == 0 else None,
                )
                for i, pbx_call in enumerate(calls)
            ]
        )


def report_queries(organization: Organization) -> int:
    with CaptureQueriesContext(connection) as queries:
        callback_report(organization=organization, days=30, now=EVENING)
    return len(queries)


def test_the_report_costs_the_same_queries_for_10_and_1000_missed_calls(
    team, outsider, django_assert_num_queries
):
    missed_make(team.organization, 10)
    few = report_queries(team.organization)
    assert few <= 8
    missed_make(team.organization, 990, start=10)
    missed_make(outsider, 50, start=5000)
    with django_assert_num_queries(few):
        report = callback_report(organization=team.organization, days=30, now=EVENING)
    assert report.totals.missed == 1000 and len(report.calls) == 100
    assert sum(g.figures.missed for g in report.managers) == 1000


def test_the_page_costs_the_same_queries_for_10_and_1000_missed_calls(
    installed_cabinet: Client, team, django_assert_num_queries
):
    url = reverse("cabinet:missed", args=[team.organization.pk]) + "?days=30"
    now = timezone.now()
    missed_make(team.organization, 10, until=now)
    with CaptureQueriesContext(connection) as queries:
        assert installed_cabinet.get(url).status_code == 200
    missed_make(team.organization, 990, start=10, until=now)
    with django_assert_num_queries(len(queries)):
        page = installed_cabinet.get(url).content.decode()
    assert page.count('<tr data-call="') == 100


# --- the page, the journal, the settings --------------------------------------------------------


def recent(team: Team) -> dict[str, PbxCall]:
    """Today's calls relative to now: c1 returned by Иван in 5 minutes, c2 still waiting for an
    hour (overdue), c3 called again and answered by Мария after 3 minutes."""
    now = timezone.now()

    def ago(minutes: int, seconds: int = 0) -> datetime:
        return now - timedelta(minutes=minutes, seconds=seconds)

    # Around the clock, so the deadlines do not depend on when the suite runs.
    callback_settings_update(organization=team.organization, values={"working_hours": [None] * 7})
    miss = {"direction": "in", "outcome": "missed"}
    back = {"direction": "out", "outcome": "answered", "talk": 90}
    again = {"direction": "in", "outcome": "answered", "talk": 30}
    iv, ma = team.ivan, team.maria
    calls = {
        "c1-miss": call(team, "r1m", "9000000001", **miss, start=ago(20), abonent=iv),
        "c1-back": call(
            team, "r1b", "9000000001", **back, start=ago(15, 8), answered=ago(15), abonent=iv
        ),
        "c2-miss": call(
            team, "r2m", "9000000002", **miss, start=ago(61), abonent=ma, via_sales=True
        ),
        "c3-miss": call(team, "r3m", "9000000003", **miss, start=ago(10), abonent=ma),
        "c3-again": call(
            team, "r3a", "9000000003", **again, start=ago(7, 5), answered=ago(7), abonent=ma
        ),
    }
    play(team, list(calls.values()), seed=None)
    return calls


def test_page_shows_figures_calls_chart_per_manager_and_number(
    installed_cabinet: Client, team, outsider
):
    recent(team)
    missed_make(outsider, 5, start=5000, until=timezone.now())
    page = installed_cabinet.get(reverse("cabinet:missed", args=[team.organization.pk])).content
    page = page.decode()
    figure = dict(re.findall(r'data-figure="(\w+)"[^>]*>\s*([^<]+?)\s*<', page))
    assert figure == {
        "missed": "3",
        "returned": "2",
        "not_returned": "1",
        "in_time": "2",
        "median": "4 мин",  # 5 and 3 minutes
        "p90": "5 мин",
    }
    current = re.search(r'href="\?days=(\d+)"\s+aria-current="page"', page)
    assert current and current.group(1) == "7"  # the default period
    assert "<svg" in page and "Пропущенные звонки по дням за 30 дней: всего 3." in page
    rows = re.findall(r'<tr data-call="(\d+)"\s+data-returned="(\w+)"', page)
    assert [returned for _pk, returned in rows] == ["no", "yes", "yes"]  # the waiting one first
    assert "ждёт 1 ч 1 мин" in page and "срок прошёл" in page
    assert "через 5 мин" in page and "клиент позвонил сам" in page
    for label in ("Иван Петров", "Мария Соколова", "Отдел продаж", "Напрямую сотруднику"):
        assert f'data-group="{label}"' in page
    assert "+7900000500" not in page and "Outsider" not in page


@pytest.mark.parametrize("days", ["2", "abc", "-7", "30; DROP"])
def test_an_unknown_period_is_a_clear_400(cabinet: Client, org, days):
    response = cabinet.get(reverse("cabinet:missed", args=[org.pk]), {"days": days})
    assert response.status_code == 400
    assert "Неизвестный период" in response.content.decode()


@pytest.mark.parametrize("days", ["1", "7", "30"])
def test_each_period_opens(cabinet: Client, org, days):
    response = cabinet.get(reverse("cabinet:missed", args=[org.pk]), {"days": days})
    assert response.status_code == 200 and response.context["report"].days == int(days)
    assert "За этот период пропущенных звонков нет." in response.content.decode()


def test_english_locale_translates_the_page(cabinet: Client, org):
    cabinet.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = cabinet.get(reverse("cabinet:missed", args=[org.pk])).content.decode()
    for text in ("MISSED CALLS", "Not called back", "Median time to call back", "By manager"):
        assert text in page, text
    settings_page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk])).content
    assert "Call-back target, working minutes" in settings_page.decode()


def test_journal_rows_of_missed_calls_show_their_call_back_state(installed_cabinet, team):
    calls = recent(team)
    page = installed_cabinet.get(reverse("cabinet:dashboard", args=[team.organization.pk]))
    page = page.content.decode()

    def state(name: str) -> str:
        row = page.split(f'id="call-{calls[name].pk}"')[1].split("</tr>")[0]
        found = re.search(r'data-callback="(\w+)">\s*(.*?)\s*</div>', row, re.S)
        return f"{found.group(1)}: {' '.join(found.group(2).split())}" if found else ""

    assert state("c1-miss") == "returned: Перезвонили через 5 мин · Иван Петров"
    assert state("c2-miss").startswith("overdue: Не перезвонили: ждёт 1 ч 1 мин, срок прошёл")
    assert (
        state("c3-miss") == "returned_by_client: Клиент перезвонил сам через 3 мин · Мария Соколова"
    )
    assert state("c1-back") == ""  # only missed calls have a call-back state


CALLBACK_FORM = {
    "count_unanswered_attempts": "on",
    "target_minutes": "30",
    "notify_overdue": "on",
    **{f"day_{i}_on": "on" for i in range(6)},
    **{f"day_{i}_start": "08:30" for i in range(7)},
    **{f"day_{i}_end": "20:00" for i in range(7)},
}


def test_call_settings_page_has_the_call_back_form_with_a_line_each(cabinet: Client, org):
    page = cabinet.get(reverse("cabinet:call_settings", args=[org.pk])).content.decode()
    form = page.split('id="callback-form"')[1]
    for text in (
        "Перезвон пропущенных",
        "Считать перезвоном и неотвеченный исходящий",
        "Срок перезвона, рабочих минут",
        "Уведомлять о просроченном перезвоне",
        "Руководитель",
        "Рабочие часы",
        "Время — по часовому поясу организации: Europe/Moscow",
        "Понедельник",
        "Воскресенье",
    ):
        assert text in form, text
    assert form.count('class="hint"') >= 6  # one explanation per setting
    assert 'value="15"' in form


def test_saving_the_call_back_settings(installed_cabinet: Client, connected_org, outsider):
    installed_org = connected_org
    with organization_scope(installed_org):
        boss = AmoUser.objects.get(name="Мария Соколова").amo_id
    url = reverse("cabinet:callback_settings", args=[installed_org.pk])
    response = installed_cabinet.post(url, {**CALLBACK_FORM, "supervisor": str(boss)}, follow=True)
    assert response.redirect_chain[-1][0].endswith("/call-settings#callback-form")
    assert "Сохранено" in response.content.decode()
    saved = callback_settings_for(organization=installed_org)
    assert saved.count_unanswered_attempts and saved.notify_overdue
    assert saved.target_minutes == 30
    assert saved.supervisor_amo_user_id == boss
    assert saved.working_hours == [["08:30", "20:00"]] * 6 + [None]
    assert callback_settings_for(organization=outsider).target_minutes == 15

    htmx = installed_cabinet.post(
        url, {**CALLBACK_FORM, "target_minutes": "20"}, HTTP_HX_REQUEST="true"
    )
    assert htmx.status_code == 200 and htmx.content.decode().lstrip().startswith("<form")
    assert "Сохранено" in htmx["HX-Trigger"].encode().decode("unicode_escape")
    assert callback_settings_for(organization=installed_org).supervisor_amo_user_id is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"day_2_end": "07:00"}, "начало раньше конца"),
        ({f"day_{i}_on": "" for i in range(7)}, "Отметьте хотя бы один рабочий день"),
        ({"target_minutes": "0"}, "больше либо равно 1"),
        ({"target_minutes": "many"}, "Введите целое число"),
        ({"supervisor": "424242"}, "Выберите корректный вариант"),  # not this account's user
    ],
)
def test_invalid_call_back_settings_are_refused_with_the_reason(
    cabinet: Client, org, change, message
):
    url = reverse("cabinet:callback_settings", args=[org.pk])
    response = cabinet.post(url, {**CALLBACK_FORM, **change}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert callback_settings_for(organization=org).target_minutes == 15  # nothing saved


def test_support_staff_read_missed_calls_and_settings_in_admin(admin_client, team):
    play(team, scenario(team), seed=None)
    listing = admin_client.get(reverse("admin:integration_missedcall_changelist") + "?q=9000")
    assert listing.status_code == 200 and "9000000004" in listing.content.decode()
    with organization_scope(team.organization):
        missed = MissedCall.objects.first()
    page = admin_client.get(reverse("admin:integration_missedcall_change", args=[missed.pk]))
    assert page.status_code == 200
    assert admin_client.get(reverse("admin:integration_missedcall_add")).status_code == 403
    organization = admin_client.get(
        reverse("admin:core_organization_change", args=[team.organization.pk])
    )
    assert organization.status_code == 200
    assert "Срок перезвона, рабочих минут" in organization.content.decode()


def test_without_percentile_cont_the_same_figures_come_from_python(team, monkeypatch):
    """The demo's SQLite has no ``percentile_cont``: the report computes the same figures."""
    play(team, scenario(team), seed=None)
    monkeypatch.setattr("integration.callback_report._percentiles_in_database", lambda: False)
    report = callback_report(organization=team.organization, days=1, now=EVENING)
    assert figures(report.totals) == HAND["total"]
    assert {g.label: figures(g.figures) for g in report.managers + report.numbers} == {
        name: value for name, value in HAND.items() if name != "total"
    }
