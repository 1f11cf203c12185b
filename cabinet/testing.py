"""Test builders of the cabinet: a session unlocked by a key, calls played or bulk-made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.models import CallDelivery
from pbx.calls import call_finalize_due
from pbx.models import PbxCall
from pbx.testing import call_play as pbx_call_play
from sandbox.beeline.models import Pbx
from sandbox.beeline.services import SimulatedCall

# Every organization page of the cabinet, by URL name (each takes the organization id).
ORGANIZATION_PAGES = [
    "cabinet:dashboard",
    "cabinet:missed",
    "cabinet:diagnostics",
    "cabinet:organization",
    "cabinet:managers",
    "cabinet:call_settings",
    "cabinet:keys",
]


def login_with_key(client: Client, organization: Organization) -> None:
    response = client.post(reverse("cabinet:login"), {"key": organization.access_key})
    assert response.status_code == 302, response.content.decode()[:500]


def call_play(pbx: Pbx, **kwargs: Any) -> SimulatedCall:
    """Play a call on the sandbox PBX through our webhook, then let it settle into the
    pipeline (Celery is eager in tests; the settle delay is passed by finalizing 'later')."""
    kwargs.setdefault("abonent_phone", "9161110001")
    sim = pbx_call_play(pbx, **kwargs)
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_finalize_due(now=timezone.now() + timedelta(seconds=60))
    return sim


def calls_make(organization: Organization, count: int, *, prefix: str = "bulk") -> None:
    """``count`` finished calls with their amoCRM outcome, the way the pipeline leaves them
    (bulk rows: playing 500 calls through the emulators would take minutes)."""
    now = timezone.now()
    with organization_scope(organization):
        AmoUser.objects.get_or_create(
            organization=organization, amo_id=7001, defaults={"name": "Анна", "fetched_at": now}
        )
        calls = PbxCall.objects.bulk_create(
            [
                PbxCall(
                    organization=organization,
                    ext_tracking_id=f"{prefix}-{i}",
                    direction="in" if i % 2 else "out",
                    external_phone=f"+79{i:09d}",
                    external_phone_national=f"9{i:09d}",
                    started_at=now - timedelta(minutes=i),
                    answered_at=now - timedelta(minutes=i) if i % 3 else None,
                    ended_at=now - timedelta(minutes=i) + timedelta(seconds=40),
                    talk_seconds=35 if i % 3 else 0,
                    outcome="answered" if i % 3 else "missed",
                    status="finished",
                    finished_at=now,
                    recording_user_id="9161110001@ip.beeline.ru",
                )
                for i in range(count)
            ]
        )
        CallDelivery.objects.bulk_create(
            [
                CallDelivery(
                    organization=organization,
                    pbx_call=call,
                    status="failed" if i % 7 == 0 else "done",
                    last_error="amoCRM отказал" if i % 7 == 0 else "",
                    contact_id=500 + i,
                    responsible_user_id=7001,
                )
                for i, call in enumerate(calls)
            ]
        )
