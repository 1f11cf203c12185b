"""Reads for the tenant core."""

from __future__ import annotations

from integration.access_keys import access_key_hash, access_key_is_well_formed
from integration.models import CallSettings, Organization
from integration.tenancy import organization_scope


def organization_by_access_key(*, key: str) -> Organization | None:
    """The organization a typed access key opens, or None. Lookup is by hash only."""
    if not access_key_is_well_formed(key):
        return None
    return Organization.objects.filter(access_key_hash=access_key_hash(key)).first()


def call_settings_for(*, organization: Organization) -> CallSettings:
    with organization_scope(organization):
        settings, _ = CallSettings.objects.get_or_create(organization=organization)
    return settings
