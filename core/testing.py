"""Test builders shared by every app: organizations built the way installs build them.

Every test that touches tenant data gets an ``outsider`` organization next to its own (see the
root ``conftest.py``): anything the outsider can see of the organization under test is a bug.
"""

from __future__ import annotations

import itertools

from core.models import Organization
from core.services import organization_create

_account_ids = itertools.count(30_000_001)


def organization_make(*, name: str = "Acme", subdomain: str | None = None) -> Organization:
    account_id = next(_account_ids)
    subdomain = subdomain or f"{name.lower().replace(' ', '')}{account_id}"
    return organization_create(
        amo_account_id=account_id,
        name=name,
        subdomain=subdomain,
        host=f"{subdomain}.amocrm.ru",
    )
