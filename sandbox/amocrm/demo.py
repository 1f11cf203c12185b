"""The demo amoCRM account `make demo` (and the Beeline demo PBX) rely on."""

from __future__ import annotations

from django.db import transaction

from sandbox.amocrm.models import Account
from sandbox.amocrm.services import account_create

DEMO_SUBDOMAIN = "demo"
# The Beeline demo PBX creates abonents with these numbers; keep the two lists in step.
DEMO_MANAGER_PHONES = ("9161110001", "9161110002", "9161110003")


def demo_seed() -> Account:
    """Create the demo account once (idempotent): an admin, three managers whose «Телефон моб.»
    are DEMO_MANAGER_PHONES — the same people as the demo PBX's abonents — and Анна Смирнова,
    who is in the PBX too but has no phone in her amoCRM profile (Диагностика shows it)."""
    with transaction.atomic():
        existing = Account.objects.filter(subdomain=DEMO_SUBDOMAIN).first()
        if existing is not None:
            return existing
        return account_create(
            subdomain=DEMO_SUBDOMAIN,
            name="Демо-компания",
            users=[
                {
                    "name": "Администратор",
                    "email": "admin@demo.example",
                    "phone": None,
                    "is_admin": True,
                },
                {
                    "name": "Иван Петров",
                    "email": "petrov@demo.example",
                    "phone": DEMO_MANAGER_PHONES[0],
                    "is_admin": False,
                },
                {
                    "name": "Мария Соколова",
                    "email": "sokolova@demo.example",
                    "phone": DEMO_MANAGER_PHONES[1],
                    "is_admin": False,
                },
                {
                    "name": "Олег Кузнецов",
                    "email": "kuznetsov@demo.example",
                    "phone": DEMO_MANAGER_PHONES[2],
                    "is_admin": False,
                },
                {
                    "name": "Анна Смирнова",
                    "email": "smirnova@demo.example",
                    "phone": None,
                    "is_admin": False,
                },
            ],
        )
