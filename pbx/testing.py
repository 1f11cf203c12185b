"""Test builders of the Beeline side: credentials written directly, and the XSI user ids the
recorded fixtures (pbx/tests/fixtures) use."""

from __future__ import annotations

import secrets

from core.models import Organization
from core.tenancy import organization_scope
from pbx.models import BeelineCredentials
from pbx.services import webhook_secret_hash

A = "9610387977@ufa.vo.ims.mnc099.mcc250.3gppnetwork.org"
B = "SIP00SLQU00A0J@ip.beeline.ru"
C = "9215453939@vol.nw.ims.mnc099.mcc250.3gppnetwork.org"


def credentials_make(organization: Organization, *, token: str = "") -> BeelineCredentials:
    """Credentials written directly (no Beeline call): for tests of the webhook alone."""
    secret = secrets.token_urlsafe(32)
    with organization_scope(organization):
        return BeelineCredentials.objects.create(
            organization=organization,
            api_token=token or "00000000-0000-4000-8000-000000000000",
            webhook_secret=secret,
            webhook_secret_hash=webhook_secret_hash(secret),
        )
