from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.beeline.demo import DEMO_TOKEN, demo_seed
from sandbox.beeline.models import Pbx, StatisticsRow
from sandbox.beeline.services import subscription_create


def test_sandbox_call_fires_the_scenario_and_prints_the_deliveries(beeline_pbx, event_sink):
    subscription_create(
        pbx=beeline_pbx,
        pattern="",
        expires=3600,
        subscription_type="BASIC_CALL",
        url=event_sink.url,
    )
    out = StringIO()
    call_command(
        "sandbox_call",
        "--token",
        beeline_pbx.token,
        "--scenario",
        "inbound_group_answered",
        "--abonent",
        "9161110001",
        "--phone",
        "+79031234567",
        "--duplicate",
        stdout=out,
    )
    text = out.getvalue()
    assert "extTrackingId" in text
    assert text.count("CallReceivedEvent") == 6  # 3 legs, each delivered twice
    assert len(event_sink.received) == text.count(" 200")


def test_sandbox_call_drop_reports_nothing_delivered(beeline_pbx, event_sink):
    out = StringIO()
    call_command(
        "sandbox_call",
        "--token",
        beeline_pbx.token,
        "--scenario",
        "outbound_busy",
        "--abonent",
        "201",
        "--phone",
        "89031234567",
        "--drop",
        stdout=out,
    )
    assert "no events delivered (dropped)" in out.getvalue()
    assert StatisticsRow.objects.filter(pbx=beeline_pbx).count() == 1


def test_sandbox_call_explains_bad_input(beeline_pbx):
    with pytest.raises(CommandError, match="token"):
        call_command(
            "sandbox_call",
            "--token",
            "x",
            "--scenario",
            "inbound_missed",
            "--abonent",
            "201",
            "--phone",
            "+79031234567",
        )
    with pytest.raises(CommandError, match="не найден"):
        call_command(
            "sandbox_call",
            "--token",
            beeline_pbx.token,
            "--scenario",
            "inbound_missed",
            "--abonent",
            "999",
            "--phone",
            "+79031234567",
        )


def test_demo_seed_is_idempotent(db):
    first = demo_seed()
    second = demo_seed()
    assert first.pk == second.pk and Pbx.objects.count() == 1
    assert first.token == DEMO_TOKEN
    assert sorted(first.abonents.values_list("phone", flat=True)) == [
        "9161110001",
        "9161110002",
        "9161110003",
        "9161110004",
    ]
    multichannel = first.numbers.get(multichannel=True)
    assert (multichannel.phone, multichannel.name) == ("4950000001", "Отдел продаж")
    assert multichannel.members.count() == 3
    assert first.numbers.filter(multichannel=False).count() == 1
