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
    are DEMO_MANAGER_PHONES, and one user with no phone."""
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
                    "name": "Анна Петрова",
                    "email": "anna@demo.example",
                    "phone": DEMO_MANAGER_PHONES[0],
                    "is_admin": False,
                },
                {
                    "name": "Борис Смирнов",
                    "email": "boris@demo.example",
                    "phone": DEMO_MANAGER_PHONES[1],
                    "is_admin": False,
                },
                {
                    "name": "Вера Кузнецова",
                    "email": "vera@demo.example",
                    "phone": DEMO_MANAGER_PHONES[2],
                    "is_admin": False,
                },
                {
                    "name": "Глеб Без Телефона",
                    "email": "gleb@demo.example",
                    "phone": None,
                    "is_admin": False,
                },
            ],
        )
