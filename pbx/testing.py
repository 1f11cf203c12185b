"""Test builders of the Beeline side: credentials written directly, calls played on the Beeline
emulator through our webhook, and the XSI user ids the recorded fixtures (pbx/tests/fixtures)
use."""

from __future__ import annotations

import secrets
from typing import Any

from django.test import TestCase

from core.models import Organization
from core.tenancy import organization_scope
from pbx.credentials import webhook_secret_hash
from pbx.models import BeelineCredentials, PbxCall
from sandbox.beeline.models import Pbx
from sandbox.beeline.services import SimulatedCall, call_simulate

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


def call_play(pbx: Pbx, **kwargs: Any) -> SimulatedCall:
    """Play a call on the emulated PBX through our webhook, running what each delivery queued
    on commit (Celery is eager in tests), so the call is folded when this returns."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return call_simulate(pbx=pbx, **kwargs)


def call_get(organization: Organization, ext_tracking_id: str) -> PbxCall:
    with organization_scope(organization):
        return PbxCall.objects.select_related("abonent", "number").get(
            ext_tracking_id=ext_tracking_id
        )
