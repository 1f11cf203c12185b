"""Dashboard: the counters, the per-day chart and «Журнал звонков» with its filters, pages,
recordings, amoCRM links and the «Повторить» button."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cabinet.testing import call_play, calls_make
from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.models import CallDelivery, ManagerMapping
from integration.services import call_settings_update
from pbx.models import PbxCall

CLIENT = "+79031112233"
OTHER = "+79035556677"
NEWCOMER = "+79037778899"


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr id="call-(\d+)"', page)


def test_empty_dashboard_says_what_comes_and_draws_an_empty_chart(cabinet: Client, org):
    response = cabinet.get(reverse("cabinet:dashboard", args=[org.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Звонков пока нет" in page
    assert "<svg" in page and "Звонки по дням за 30 дней: всего 0." in page
    for label in ("Сегодня", "7 дней", "30 дней", "Журнал звонков"):
        assert label in page


def test_journal_shows_each_call_with_recording_contact_and_amocrm_status(
    installed_cabinet: Client, connected_org, beeline_pbx, outsider
):
    call_play(beeline_pbx, scenario="inbound_missed", external_phone=CLIENT)
    call_play(
        beeline_pbx, scenario="outbound_answered", abonent_phone="9161110002", external_phone=OTHER
    )
    call_settings_update(organization=connected_org, values={"create_contact_incoming": False})
    call_play(beeline_pbx, scenario="inbound_answered", external_phone=NEWCOMER)
    calls_make(outsider, 3, prefix="outsider")

    response = installed_cabinet.get(reverse("cabinet:dashboard", args=[connected_org.pk]))

    page = response.content.decode()
    assert len(_rows(page)) == 3
    today = response.context["periods"][0].stats
    assert (today.inbound, today.outbound, today.answered, today.missed) == (2, 1, 2, 1)
    assert (today.delivered, today.skipped, today.failed) == (2, 1, 0)
    # Recordings: only the two answered calls, loaded on demand, through our signed link.
    players = re.findall(r'<audio\s+controls\s+preload="none"\s+src="([^"]+)"', page)
    assert len(players) == 2
    assert all(src.startswith("https://beetel.test/recordings/") for src in players)
    # The contacts the pipeline made, linked in amoCRM (here: the amoCRM sandbox, which
    # receives amoCRM's traffic in tests, as in the demo).
    assert page.count(f"{settings.AMOCRM_API_BASE_URL}/contacts/detail/") == 2
    # The skipped call says why.
    assert "пропущен по настройке" in page
    assert "Создание контакта при входящих звонках" in page or "выключена" in page
    assert "Иван Петров" in page and "Мария Соколова" in page
    assert "outsider-" not in page and "+79000000001" not in page
    # The chart has today's bar: 2 answered, 1 missed, drawn with numbers an SVG accepts
    # (the Russian locale must not turn 46.67 into "46,67").
    assert "отвечено 2, пропущено 1" in page
    bars = re.findall(r'<rect class="chart-(answered|missed)"([^>]*)/>', page)
    assert len(bars) == 60
    heights = [float(re.search(r'height="([^"]+)"', attrs).group(1)) for _k, attrs in bars]
    assert sorted(h for h in heights if h) == [46.67, 93.33]  # 1 and 2 of 3 calls, 140 px


def test_filters_narrow_the_journal_and_htmx_redraws_only_the_journal(
    installed_cabinet: Client, connected_org, beeline_pbx
):
    call_play(beeline_pbx, scenario="inbound_missed", external_phone=CLIENT)
    call_play(beeline_pbx, scenario="inbound_answered", external_phone=OTHER)
    call_play(
        beeline_pbx, scenario="outbound_answered", abonent_phone="9161110002", external_phone=OTHER
    )
    url = reverse("cabinet:dashboard", args=[connected_org.pk])
    with organization_scope(connected_org):
        maria = AmoUser.objects.get(name="Мария Соколова").amo_id
    today = timezone.localdate().isoformat()

    def count(**params: object) -> int:
        return len(_rows(installed_cabinet.get(url, params).content.decode()))

    assert count(direction="out") == 1
    assert count(direction="in") == 2
    assert count(outcome="missed") == 1
    assert count(outcome="delivered") == 3
    assert count(outcome="delivery_failed") == 0
    assert count(manager=maria) == 1
    assert count(number="8 (903) 111-22-33") == 1
    assert count(date_from=today, date_to=today) == 3
    assert count(date_to=(timezone.localdate() - timedelta(days=1)).isoformat()) == 0

    partial = installed_cabinet.get(
        url, {"direction": "out"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="journal"
    )
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="journal"')
    assert "<svg" not in body and len(_rows(body)) == 1


def test_bad_filter_values_are_explained_not_a_500(cabinet: Client, org):
    calls_make(org, 2)
    response = cabinet.get(
        reverse("cabinet:dashboard", args=[org.pk]),
        {"date_from": "31.02.2026", "direction": "sideways", "page": "-3", "manager": "x"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('role="alert"') >= 2
    assert len(_rows(page)) == 2  # the bad filters are ignored


def test_pages_keep_the_filters(cabinet: Client, org):
    calls_make(org, 120)
    url = reverse("cabinet:dashboard", args=[org.pk])

    first = cabinet.get(url, {"direction": "in"}).content.decode()
    assert len(_rows(first)) == 50
    assert "Страница 1 из 2" in first
    assert 'href="?direction=in&amp;page=2"' in first

    second = cabinet.get(url, {"direction": "in", "page": "2"}).content.decode()
    assert len(_rows(second)) == 10
    assert not set(_rows(first)) & set(_rows(second))


def test_journal_page_runs_the_same_queries_for_10_and_500_calls(cabinet: Client, org, outsider):
    url = reverse("cabinet:dashboard", args=[org.pk])
    calls_make(org, 10)
    cabinet.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as ten:
        response = cabinet.get(url)
    assert len(_rows(response.content.decode())) == 10

    calls_make(org, 490, prefix="more")
    with CaptureQueriesContext(connection) as five_hundred:
        response = cabinet.get(url)
    assert len(_rows(response.content.decode())) == 50
    assert response.context["journal"].total == 500

    assert len(ten) == len(five_hundred), [q["sql"][:120] for q in five_hundred.captured_queries]


def _failed_call(connected_org, beeline_pbx) -> int:
    """A call amoCRM refuses (its manager was deleted in amoCRM): failed, with the reason."""
    with organization_scope(connected_org):
        ManagerMapping.objects.filter(abonent__phone="9161110001").update(amo_user_id=999_999_999)
    sim = call_play(beeline_pbx, scenario="inbound_answered", external_phone=CLIENT)
    with organization_scope(connected_org):
        delivery = CallDelivery.objects.get(pbx_call__ext_tracking_id=sim.ext_tracking_id)
        assert delivery.status == "failed"
        real = AmoUser.objects.get(name="Иван Петров").amo_id
        ManagerMapping.objects.filter(amo_user_id=999_999_999).update(amo_user_id=real)
    return delivery.pbx_call_id


def test_failed_call_shows_the_reason_and_retry_redraws_the_row(
    installed_cabinet: Client, connected_org, beeline_pbx, amo_account
):
    call_id = _failed_call(connected_org, beeline_pbx)
    url = reverse("cabinet:dashboard", args=[connected_org.pk])
    page = installed_cabinet.get(url, {"outcome": "delivery_failed"}).content.decode()
    assert _rows(page) == [str(call_id)]
    assert "ошибка" in page and "Повторить" in page
    assert not amo_account.calls.exists()

    retry = reverse("cabinet:call_retry", args=[connected_org.pk, call_id])
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = installed_cabinet.post(retry, HTTP_HX_REQUEST="true")

    # The row comes back queued (the drain runs after the commit, in a worker).
    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="call-{call_id}"')
    assert "Повторить" not in row and 'data-delivery="pending"' in row
    toast = json.loads(response["HX-Trigger"])["toast"]
    assert toast == {"message": "Звонок снова отправлен в amoCRM", "level": "success"}
    assert amo_account.calls.count() == 1
    page = installed_cabinet.get(url).content.decode()
    assert 'data-delivery="done"' in page and "Повторить" not in page

    # Again: nothing to retry, nothing posted twice.
    again = installed_cabinet.post(retry, HTTP_HX_REQUEST="true")
    assert json.loads(again["HX-Trigger"])["toast"]["level"] == "error"
    assert amo_account.calls.count() == 1


def test_retry_without_javascript_goes_back_to_the_filtered_journal(
    installed_cabinet: Client, connected_org, beeline_pbx
):
    call_id = _failed_call(connected_org, beeline_pbx)
    journal = reverse("cabinet:dashboard", args=[connected_org.pk]) + "?outcome=delivery_failed"
    retry = reverse("cabinet:call_retry", args=[connected_org.pk, call_id])

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = installed_cabinet.post(retry, {"next": journal})
    assert response.status_code == 302 and response["Location"] == journal
    page = installed_cabinet.get(journal).content.decode()
    assert "Звонок снова отправлен в amoCRM" in page
    assert _rows(page) == []

    # An open redirect is not offered.
    response = installed_cabinet.post(retry, {"next": "https://evil.test/"})
    assert response["Location"] == reverse("cabinet:dashboard", args=[connected_org.pk])


def test_retry_needs_csrf(connected_org, beeline_pbx):
    call_id = _failed_call(connected_org, beeline_pbx)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("cabinet:login")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token
    browser.post(
        reverse("cabinet:login"),
        {"key": connected_org.access_key, "csrfmiddlewaretoken": token.group(1)},
    )
    retry = reverse("cabinet:call_retry", args=[connected_org.pk, call_id])

    assert browser.post(retry).status_code == 403
    with organization_scope(connected_org):
        assert CallDelivery.objects.get(pbx_call_id=call_id).status == "failed"


@pytest.mark.parametrize("whose", ["outsider_call", "outsider_url"])
def test_outsider_calls_cannot_be_retried(cabinet: Client, org, outsider, whose):
    calls_make(outsider, 7, prefix="outsider")
    with organization_scope(outsider):
        call = PbxCall.objects.get(ext_tracking_id="outsider-0")  # a failed one (0 % 7)
    org_id = org.pk if whose == "outsider_call" else outsider.pk

    response = cabinet.post(reverse("cabinet:call_retry", args=[org_id, call.pk]))

    assert response.status_code == 404
    with organization_scope(outsider):
        assert CallDelivery.objects.get(pbx_call=call).status == "failed"


def test_dashboard_in_english(cabinet: Client, org, settings):
    calls_make(org, 3)
    cabinet.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = cabinet.get(reverse("cabinet:dashboard", args=[org.pk])).content.decode()
    for text in (
        "Call journal",
        "Today",
        "7 days",
        "Delivered to amoCRM",
        "Retry",
        "3 calls found",
    ):
        assert text in page
    assert "Журнал звонков" not in page
