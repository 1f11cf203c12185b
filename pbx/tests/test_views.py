"""The recording proxy: a signed link streams the recording from Beeline (ranges passed through),
says when Beeline has not published it yet, and refuses tampered links. (The event webhook is
tested with the events it stores, in test_events.py.)"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pbx.selectors import call_recording_url
from pbx.testing import call_get, call_play
from sandbox.beeline import clock as sandbox_clock
from sandbox.beeline.services import faults_set


def test_recording_proxy(connected, outsider, beeline_pbx, client, monkeypatch, settings):
    sim = call_play(
        beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone="+79031112233",
    )
    call = call_get(connected, sim.ext_tracking_id)
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
