"""Calls played by the Beeline emulator's simulator, through our webhook, into PbxCall; the
recording proxy and click-to-call against the same emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from core.tenancy import organization_scope
from pbx.errors import ClickToCallError, ClickToCallRefused, InvalidPhoneNumber
from pbx.models import Abonent, PbxCall, PbxEvent
from pbx.selectors import abonents_for, call_recording_url
from pbx.services import beeline_token_save, call_finalize_due, click_to_call
from sandbox.beeline import clock as sandbox_clock
from sandbox.beeline.services import call_simulate, faults_set


@pytest.fixture
def connected(org, beeline_pbx, settings):
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    beeline_token_save(organization=org, token=beeline_pbx.token)
    return org


def simulate(pbx, **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return call_simulate(pbx=pbx, **kwargs)


def the_call(org, ext_tracking_id) -> PbxCall:
    with organization_scope(org):
        return PbxCall.objects.select_related("abonent", "number").get(
            ext_tracking_id=ext_tracking_id
        )


@pytest.mark.parametrize(
    ("scenario", "direction", "outcome", "talk"),
    [
        ("inbound_answered", "in", "answered", 30),
        ("inbound_missed", "in", "missed", 0),
        ("outbound_answered", "out", "answered", 30),
        ("outbound_busy", "out", "busy", 0),
        ("outbound_no_answer", "out", "missed", 0),
    ],
)
def test_each_scenario_gives_the_expected_call(
    connected, beeline_pbx, scenario, direction, outcome, talk
):
    sim = simulate(
        beeline_pbx, scenario=scenario, abonent_phone="9161110002", external_phone="89161234567"
    )
    assert sim.deliveries and all(d.status_code == 200 for d in sim.deliveries)
    call = the_call(connected, sim.ext_tracking_id)
    assert (call.direction, call.outcome, call.talk_seconds) == (direction, outcome, talk)
    assert call.status == "finished"
    assert call.external_phone == "+79161234567"
    assert call.abonent is not None and call.abonent.phone == "9161110002"


@pytest.mark.parametrize("options", [{}, {"duplicate": True}, {"reorder": True},
                                     {"duplicate": True, "reorder": True}])  # fmt: skip
def test_group_call_through_the_multichannel_number(connected, beeline_pbx, options):
    sim = simulate(
        beeline_pbx,
        scenario="inbound_group_answered",
        abonent_phone="9161110003",
        external_phone="+79031112233",
        **options,
    )
    call = the_call(connected, sim.ext_tracking_id)
    assert call.outcome == "answered" and call.direction == "in"
    assert call.number is not None and call.number.phone == "4950000001"
    assert call.abonent is not None and call.abonent.phone == "9161110003"
    with organization_scope(connected):
        assert call.legs.count() == 3
        assert PbxEvent.objects.filter(ext_tracking_id=sim.ext_tracking_id).count() == len(
            sim.documents
        ) - sum("HookStatusEvent" in d for d in sim.documents)


def test_group_call_nobody_answers_is_missed(connected, beeline_pbx):
    sim = simulate(
        beeline_pbx,
        scenario="inbound_group_missed",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    call = the_call(connected, sim.ext_tracking_id)
    assert call.outcome == "missed" and call.recording_user_id == ""
    assert call_recording_url(call=call) is None


def test_finished_call_is_handed_off_once_after_settling(connected, beeline_pbx, settings):
    sim = simulate(
        beeline_pbx,
        scenario="inbound_missed",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    later = timezone.now() + timedelta(seconds=settings.PBX_CALL_SETTLE_SECONDS + 1)
    assert call_finalize_due(now=later) == 1
    assert call_finalize_due(now=later) == 0
    assert the_call(connected, sim.ext_tracking_id).handed_off_at is not None


def test_recording_proxy(connected, outsider, beeline_pbx, client, monkeypatch, settings):
    sim = simulate(
        beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    call = the_call(connected, sim.ext_tracking_id)
    url = call_recording_url(call=call)
    assert url is not None and url.startswith(settings.PUBLIC_URL + "/recordings/")
    path = url.removeprefix(settings.PUBLIC_URL)
    assert "9161110001" not in path and beeline_pbx.token not in path

    # Beeline has not published the file yet.
    response = client.get(path)
    assert response.status_code == 404
    assert "ещё не готова" in response.content.decode()

    ready = timezone.now() + timedelta(seconds=settings.SANDBOX_BEELINE_RECORD_DELAY + 5)
    monkeypatch.setattr(sandbox_clock, "now", lambda: ready)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    whole = b"".join(response.streaming_content)
    assert len(whole) > 1000
    # (sandbox routing drops Content-Length as hop-by-hop; over real HTTP it is passed on)
    assert response.get("Content-Length", str(len(whole))) == str(len(whole))

    response = client.get(path, HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == whole[100:200]

    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 404
    assert client.get("/recordings/garbage").status_code == 404

    faults_set(pbx=beeline_pbx, down=True)
    response = client.get(path)
    assert response.status_code == 502
    assert "Beeline" in response.content.decode()


def test_click_to_call(connected, beeline_pbx):
    abonent = abonents_for(organization=connected).get(phone="9161110001")
    result = click_to_call(organization=connected, abonent=abonent, phone="8 (916) 555-44-33")
    assert result.phone == "+79165554433"
    assert beeline_pbx.click_to_calls.get().phone_number == "9165554433"  # 10 digits (§4)

    with pytest.raises(InvalidPhoneNumber) as bad:
        click_to_call(organization=connected, abonent=abonent, phone="12")
    assert bad.value.status == 400

    with organization_scope(connected):
        ghost = Abonent.objects.create(organization=connected, user_id="nobody@ip.beeline.ru")
    with pytest.raises(ClickToCallRefused) as refused:
        click_to_call(organization=connected, abonent=ghost, phone="+79165554433")
    assert "не найден" in refused.value.message

    faults_set(pbx=beeline_pbx, down=True)
    with pytest.raises(ClickToCallError) as down:
        click_to_call(organization=connected, abonent=abonent, phone="+79165554433")
    assert down.value.status == 502


def test_click_to_call_refuses_another_organizations_abonent(connected, outsider, beeline_pbx):
    abonent = abonents_for(organization=connected).first()
    with pytest.raises(ClickToCallError):
        click_to_call(organization=outsider, abonent=abonent, phone="+79165554433")
