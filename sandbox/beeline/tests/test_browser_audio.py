"""The recording really plays: headless Chromium decodes what the emulator serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.beeline.services import call_simulate, pbx_create

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
def test_chromium_decodes_the_recording_with_its_duration(
    live_server, transactional_db, monkeypatch
):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    pbx = pbx_create(name="A", abonents=[{"phone": "9161110001", "last_name": "П"}], numbers=[])
    call = call_simulate(
        pbx=pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone="+79031234567",
        talk_seconds=7,
    )
    record = call.records[0]
    # Playwright's sync API runs an event loop on this thread; the ORM use above is synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"{live_server.url}/sandbox/beeline/pbx/{pbx.pk}/")
        src = page.get_attribute("audio", "src")
        assert src and src.endswith(f"/records/{record.pk}.mp3")
        decoded = page.evaluate(
            """async (src) => {
                    const bytes = await (await fetch(src)).arrayBuffer();
                    const audio = await new AudioContext().decodeAudioData(bytes);
                    const element = document.querySelector("audio");
                    element.preload = "metadata";
                    element.load();
                    await new Promise((ok, fail) => {
                        element.onloadedmetadata = ok;
                        element.onerror = () => fail(element.error && element.error.message);
                    });
                    return {decoded: audio.duration, element: element.duration};
                }""",
            src,
        )
        browser.close()
    assert decoded["decoded"] == pytest.approx(7.246, abs=0.1)
    assert decoded["element"] == pytest.approx(7.246, abs=0.1)
