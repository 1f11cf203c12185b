"""Call-back stories: a client's calls minutes apart, as the PBX would report them (events with
their own times, statistics rows), from the service and from the sandbox page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from sandbox.beeline import clock
from sandbox.beeline.errors import PortalError
from sandbox.beeline.models import StatisticsRow
from sandbox.beeline.services import call_simulate, story_simulate, subscription_create

CLIENT = "+79031234567"


@pytest.fixture
def subscribed(beeline_pbx, event_sink):
    subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    return beeline_pbx


def rows(calls) -> list[StatisticsRow]:
    ids = [c.ext_tracking_id for c in calls]
    return sorted(StatisticsRow.objects.filter(ext_tracking_id__in=ids), key=lambda r: r.start)


def test_a_call_can_be_placed_in_the_past(subscribed):
    ended = clock.now() - timedelta(hours=2)
    call = call_simulate(
        pbx=subscribed,
        scenario="inbound_missed",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        ended_at=ended,
    )
    [row] = rows([call])
    assert ended - timedelta(minutes=1) < row.start < ended
    assert all(d.status_code == 200 for d in call.deliveries)


def test_missed_then_called_back_after_n_minutes(subscribed, event_sink):
    calls = story_simulate(
        pbx=subscribed,
        story="missed_then_called_back",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        minutes=12,
    )
    assert [c.scenario for c in calls] == ["inbound_missed", "outbound_answered"]
    missed, back = rows(calls)
    assert (missed.status, back.status) == ("MISSED", "PLACED")
    assert back.duration_ms == 151_246  # the talk
    # The call back ends now, 12 minutes after the missed call ended.
    assert timedelta(minutes=9) < back.start - missed.start < timedelta(minutes=12)
    assert len(event_sink.received) == sum(len(c.deliveries) for c in calls) > 0


def test_missed_twice_then_the_client_calls_again(subscribed):
    calls = story_simulate(
        pbx=subscribed,
        story="missed_twice_then_client_calls",
        abonent_phone="9161110002",
        external_phone=CLIENT,
        minutes=20,
        duplicate=True,
    )
    assert [c.scenario for c in calls] == ["inbound_missed", "inbound_missed", "inbound_answered"]
    first, second, again = rows(calls)
    assert (first.status, second.status, again.status) == ("MISSED", "MISSED", "RECIEVED")
    assert timedelta(minutes=9) < second.start - first.start < timedelta(minutes=11)
    assert {c.ext_tracking_id for c in calls} == {r.ext_tracking_id for r in (first, second, again)}
    assert all(len(c.deliveries) % 2 == 0 for c in calls)  # every event twice


@pytest.mark.parametrize(
    ("story", "minutes", "message"),
    [("lost_forever", 5, "Неизвестный сценарий"), ("missed_then_called_back", 0, "Минуты")],
)
def test_bad_stories_are_refused(beeline_pbx, story, minutes, message):
    with pytest.raises(PortalError, match=message):
        story_simulate(
            pbx=beeline_pbx,
            story=story,
            abonent_phone="9161110001",
            external_phone=CLIENT,
            minutes=minutes,
        )


def test_play_a_story_from_the_page(client, subscribed, event_sink):
    url = reverse("sandbox_beeline:pbx", args=[subscribed.pk])
    response = client.post(
        url,
        {
            "action": "story",
            "story": "missed_then_called_back",
            "abonent": "9161110001",
            "external_phone": CLIENT,
            "minutes": "7",
            "talk_seconds": "30",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Сыграно звонков: 2" in response.content.decode()
    assert StatisticsRow.objects.filter(pbx=subscribed).count() == 2
    bad = client.post(
        url,
        {"action": "story", "story": "missed_then_called_back", "abonent": "9161110001",
         "external_phone": "12", "minutes": "7", "talk_seconds": "30"},
        follow=True,
    )  # fmt: skip
    assert "Некорректный номер" in bad.content.decode()
