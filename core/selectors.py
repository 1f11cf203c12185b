"""Reads of the ground floor."""

from __future__ import annotations

from core.access_keys import access_key_hash, access_key_is_well_formed
from core.models import Organization


def organization_by_access_key(*, key: str) -> Organization | None:
    """The organization a typed access key opens, or None. Lookup is by hash only."""
    if not access_key_is_well_formed(key):
        return None
    return Organization.objects.filter(access_key_hash=access_key_hash(key)).first()
