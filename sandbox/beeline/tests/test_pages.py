"""The sandbox pages a person uses to drive the emulator."""

from __future__ import annotations

from django.urls import reverse

from sandbox.beeline.models import DeliveredEvent, Pbx
from sandbox.beeline.services import call_simulate, subscription_create


def test_sandbox_home_links_both_emulators(client, db):
    response = client.get("/sandbox/")
    assert response.status_code == 200
    assert b'href="/sandbox/amocrm/"' in response.content
    assert b'href="/sandbox/beeline/"' in response.content


def test_index_lists_pbxes_with_their_tokens(client, beeline_pbx):
    response = client.get(reverse("sandbox_beeline:index"))
    assert response.status_code == 200
    assert beeline_pbx.token in response.content.decode()


def test_create_pbx_from_the_form(client, db):
    response = client.post(
        reverse("sandbox_beeline:index"),
        {
            "name": "Новая",
            "token": "",
            "abonents": "9260000001 Пётр Иванов 301\n9260000002 Анна Белова\n",
            "numbers": "4951112233 Линия *\n",
        },
    )
    pbx = Pbx.objects.get(name="Новая")
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("sandbox_beeline:pbx", args=[pbx.pk])
    assert pbx.abonents.count() == 2
    assert pbx.numbers.get().members.count() == 2
    assert len(pbx.token) == 36


def test_create_pbx_rejects_bad_lines_with_a_message(client, db):
    response = client.post(
        reverse("sandbox_beeline:index"),
        {"name": "X", "abonents": "12345 Кто-то", "numbers": ""},
    )
    assert response.status_code == 200
    assert "Строка 1" in response.content.decode()
    assert not Pbx.objects.exists()


def test_pbx_page_shows_state_events_and_records(client, beeline_pbx, event_sink, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    call = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="201",
        external_phone="+79031234567",
    )
    response = client.get(reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "9161110001@ip.beeline.ru" in page
    assert "Отдел продаж" in page
    assert event_sink.url in page
    assert "CallReleasedEvent" in page
    assert call.ext_tracking_id in page
    record = call.records[0]
    listen = reverse("sandbox_beeline:record_listen", args=[beeline_pbx.pk, record.pk])
    assert listen in page
    audio = client.get(listen, HTTP_RANGE="bytes=0-99")
    assert audio.status_code == 206 and audio["Content-Type"] == "audio/mpeg"
    event = DeliveredEvent.objects.filter(ext_tracking_id=call.ext_tracking_id).first()
    body = client.get(reverse("sandbox_beeline:event_body", args=[beeline_pbx.pk, event.pk]))
    assert body.content.decode() == event.body


def test_fire_a_call_from_the_form(client, beeline_pbx, event_sink):
    subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    response = client.post(
        reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk]),
        {
            "action": "call",
            "scenario": "inbound_group_answered",
            "abonent": "9161110002",
            "external_phone": "+79031234567",
            "via_number": "4950000001",
            "group": ["9161110001", "9161110002"],
            "talk_seconds": "5",
            "duplicate": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert len(event_sink.received) == 2 * 7  # 2 legs: 2 + 5 events, each twice
    assert "200" in response.content.decode()


def test_form_errors_are_shown_not_raised(client, beeline_pbx):
    response = client.post(
        reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk]),
        {
            "action": "call",
            "scenario": "inbound_answered",
            "abonent": "9161110001",
            "external_phone": "12",
            "talk_seconds": "5",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Некорректный номер" in response.content.decode()


def test_fault_knobs_form(client, beeline_pbx):
    client.post(
        reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk]),
        {
            "action": "faults",
            "latency_ms": "0",
            "fail_next": "3",
            "fail_status": "429",
            "error_rate": "0",
            "down": "on",
        },
    )
    beeline_pbx.refresh_from_db()
    assert (beeline_pbx.fail_next, beeline_pbx.fail_status, beeline_pbx.down) == (3, 429, True)


def test_terminate_button_sends_the_event(client, beeline_pbx, event_sink):
    subscription = subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    client.post(
        reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk]),
        {"action": "terminate", "subscription_id": subscription.subscription_id},
    )
    assert b"SubscriptionTerminatedEvent" in event_sink.bodies[0]


def test_unknown_pbx_is_404(client, db):
    assert client.get(reverse("sandbox_beeline:pbx", args=[999])).status_code == 404


def test_the_call_form_keeps_the_last_calls_choices(client, beeline_pbx, sandbox_http):
    url = reverse("sandbox_beeline:pbx", args=[beeline_pbx.pk])
    client.post(
        url,
        {
            "action": "call",
            "scenario": "outbound_busy",
            "abonent": "9161110002",
            "external_phone": "+79037778899",
            "via_number": "",
            "talk_seconds": 12,
        },
    )
    page = client.get(url).content.decode()
    assert '<option value="outbound_busy" selected>' in page
    assert '<option value="9161110002" selected>' in page
    assert 'value="+79037778899"' in page
