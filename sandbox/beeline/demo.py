"""The demo PBX that `make demo` seeds (idempotent: found again by its fixed token)."""

from __future__ import annotations

from sandbox.beeline.models import Pbx
from sandbox.beeline.services import pbx_create

DEMO_TOKEN = "de70b11e-0000-4000-8000-000000000001"
DEMO_NAME = "Демо-АТС"

DEMO_ABONENTS = [
    {
        "phone": "9161110001",
        "first_name": "Иван",
        "last_name": "Петров",
        "extension": "201",
        "department": "Продажи",
        "email": "petrov@demo.example",
    },
    {
        "phone": "9161110002",
        "first_name": "Мария",
        "last_name": "Соколова",
        "extension": "202",
        "department": "Продажи",
        "email": "sokolova@demo.example",
    },
    {
        "phone": "9161110003",
        "first_name": "Олег",
        "last_name": "Кузнецов",
        "extension": "203",
        "department": "Продажи",
        "email": "kuznetsov@demo.example",
    },
    # Not mapped to any amoCRM user in the demo: shows up as such in Диагностика.
    {
        "phone": "9161110004",
        "first_name": "Анна",
        "last_name": "Смирнова",
        "extension": "204",
        "department": "Склад",
        "email": "smirnova@demo.example",
    },
]
DEMO_NUMBERS = [
    {
        "phone": "+74950000001",
        "name": "Отдел продаж",
        "multichannel": True,
        "members": ["9161110001", "9161110002", "9161110003"],
    },
    {"phone": "+74950000002", "name": "Основной", "multichannel": False},
]


def demo_seed() -> Pbx:
    existing = Pbx.objects.filter(token=DEMO_TOKEN).first()
    if existing is not None:
        return existing
    return pbx_create(
        name=DEMO_NAME, token=DEMO_TOKEN, abonents=DEMO_ABONENTS, numbers=DEMO_NUMBERS
    )
