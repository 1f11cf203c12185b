"""Pytest fixtures for the Beeline emulator (registered in the root conftest.py)."""

from __future__ import annotations

import pytest
import responses

from sandbox.beeline.models import Pbx
from sandbox.beeline.services import pbx_create

ABONENTS = [
    {"phone": "9161110001", "first_name": "Иван", "last_name": "Петров", "extension": "201"},
    {"phone": "9161110002", "first_name": "Мария", "last_name": "Соколова", "extension": "202"},
    {"phone": "9161110003", "first_name": "Олег", "last_name": "Кузнецов", "extension": "203"},
]


@pytest.fixture
def beeline_pbx(sandbox_http: responses.RequestsMock) -> Pbx:
    """A PBX with 3 abonents (9161110001..3, userId ``<phone>@ip.beeline.ru``), the
    multichannel number +74950000001 «Отдел продаж» ringing all three, and a plain number
    +74950000002. Its API answers at settings.BEELINE_API_URL with header
    ``X-MPBX-API-AUTH-TOKEN: beeline_pbx.token``."""
    return pbx_create(
        name="Тестовая АТС",
        abonents=ABONENTS,
        numbers=[
            {"phone": "+74950000001", "name": "Отдел продаж", "multichannel": True},
            {"phone": "+74950000002", "name": "Основной"},
        ],
    )
