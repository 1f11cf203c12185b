"""Reads of the amoCRM half (users for «Менеджеры», health for «Диагностика» and the sweeps,
authorize URL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core.models import AuditEntry, Organization
from core.tenancy import organization_scope, scopes_disabled
from crm.models import AmoAccountState, AmoCredentials, AmoPipeline, AmoUser, AmoWebhook
from crm.services import AUDIT_BANNED, AUDIT_ERROR, AUDIT_RATE_LIMITED, AUDIT_UNPAID

AUTHORIZE_URL = "https://www.amocrm.ru/oauth"
OAUTH_MODES = ("popup", "post_message")
_SESSION_KEY = "amo_oauth_states"
_MAX_PENDING_STATES = 5


def amo_users_for(*, organization: Organization, include_inactive: bool = False) -> list[AmoUser]:
    """Cached amoCRM users of the organization, by name."""
    with organization_scope(organization):
        qs: QuerySet[AmoUser] = AmoUser.objects.filter(organization=organization)
        if not include_inactive:
            qs = qs.filter(active=True)
        return list(qs.order_by("name", "amo_id"))


def amo_pipelines_for(*, organization: Organization) -> list[AmoPipeline]:
    """The cached lead pipelines (loaded on «Настройки звонков»), in amoCRM's order."""
    with organization_scope(organization):
        return list(AmoPipeline.objects.filter(organization=organization))


def amo_connected(*, organization: Organization) -> bool:
    """Tokens are stored and not revoked: requests to amoCRM can be tried."""
    with organization_scope(organization):
        return (
            AmoCredentials.objects.filter(
                organization=organization, status=AmoCredentials.Status.OK
            )
            .exclude(refresh_token="")
            .exists()
        )


def amo_webhook_for(*, organization: Organization) -> AmoWebhook | None:
    with organization_scope(organization):
        return AmoWebhook.objects.filter(organization=organization).first()


def amo_user_get(*, organization: Organization, amo_id: int) -> AmoUser | None:
    with organization_scope(organization):
        return AmoUser.objects.filter(organization=organization, amo_id=amo_id).first()


def amo_access_healthy(*, organization_ids: Iterable[int]) -> set[int]:
    """Those of the organizations whose amoCRM traffic may flow: tokens stored and valid (not
    awaiting re-authorization), and not paused (unpaid, banned, revoked). Cross-tenant: for the
    beat's sweeps."""
    ids = set(organization_ids)
    with scopes_disabled():
        paused = set(
            AmoAccountState.objects.filter(organization_id__in=ids)
            .exclude(paused_reason="")
            .values_list("organization_id", flat=True)
        )
        with_tokens = set(
            AmoCredentials.objects.filter(organization_id__in=ids, status=AmoCredentials.Status.OK)
            .exclude(refresh_token="")
            .values_list("organization_id", flat=True)
        )
    return (ids & with_tokens) - paused


@dataclass(frozen=True, slots=True)
class AmoHealth:
    connected: bool  # tokens stored
    token_valid: bool  # stored, not revoked, not expired
    expires_at: datetime | None
    refreshed_at: datetime | None
    needs_reauth: bool
    reauthorize_url: str  # where the admin goes to authorize again ("" when not needed)
    last_error: str
    paused_reason: str  # "" | unpaid | banned | revoked
    paused_label: str
    paused_at: datetime | None
    failing_since: datetime | None  # amoCRM answers 5xx / not at all since then (None: it answers)
    last_failure: str
    rate_limited_24h: int
    banned_24h: int
    errors_24h: int
    users_count: int
    users_fetched_at: datetime | None


def amo_health(
    *, organization: Organization, reauthorize_url: str = "", now: datetime | None = None
) -> AmoHealth:
    """What Диагностика shows about amoCRM. Pass ``reauthorize_url`` (``amo_authorize_url``
    needs the session) to have it shown when re-authorization is needed."""
    now = now or timezone.now()
    with organization_scope(organization):
        creds = AmoCredentials.objects.filter(organization=organization).first()
        state = AmoAccountState.objects.filter(organization=organization).first()
        counts: dict[str, Any] = AuditEntry.objects.filter(
            organization=organization, created_at__gte=now - timedelta(hours=24)
        ).aggregate(
            rate_limited=Count("id", filter=Q(kind=AUDIT_RATE_LIMITED)),
            banned=Count("id", filter=Q(kind__in=[AUDIT_BANNED, AUDIT_UNPAID])),
            errors=Count("id", filter=Q(kind=AUDIT_ERROR)),
        )
        users = AmoUser.objects.filter(organization=organization, active=True)
        users_count = users.count()
        users_fetched_at = (
            users.order_by("-fetched_at").values_list("fetched_at", flat=True).first()
        )
    needs_reauth = organization.status == Organization.Status.NEEDS_REAUTH or (
        creds is not None and creds.status == AmoCredentials.Status.NEEDS_REAUTH
    )
    connected = creds is not None and bool(creds.refresh_token)
    return AmoHealth(
        connected=connected,
        token_valid=bool(
            connected
            and creds is not None
            and not needs_reauth
            and creds.expires_at is not None
            and creds.expires_at > now
        ),
        expires_at=creds.expires_at if creds else None,
        refreshed_at=creds.refreshed_at if creds else None,
        needs_reauth=needs_reauth,
        reauthorize_url=reauthorize_url if (needs_reauth or not connected) else "",
        last_error=creds.last_error if creds else "",
        paused_reason=state.paused_reason if state else "",
        paused_label=str(state.get_paused_reason_display())
        if state and state.paused_reason
        else "",
        paused_at=state.paused_at if state else None,
        failing_since=state.failing_since if state else None,
        last_failure=state.last_failure if state else "",
        rate_limited_24h=counts["rate_limited"],
        banned_24h=counts["banned"],
        errors_24h=counts["errors"],
        users_count=users_count,
        users_fetched_at=users_fetched_at,
    )


def amo_authorize_url(*, session: Any, mode: str = "popup") -> str:
    """The amoCRM authorize URL with a fresh ``state`` remembered in ``session`` (checked by
    the callback with ``amo_oauth_state_pop``). ``mode`` is ``popup`` or ``post_message``."""
    if mode not in OAUTH_MODES:
        raise ValueError(f"mode must be one of {OAUTH_MODES}")
    state = secrets.token_urlsafe(24)
    pending: dict[str, str] = dict(session.get(_SESSION_KEY) or {})
    pending[state] = mode
    session[_SESSION_KEY] = dict(list(pending.items())[-_MAX_PENDING_STATES:])
    base = (
        f"{settings.AMOCRM_API_BASE_URL}/oauth" if settings.AMOCRM_API_BASE_URL else AUTHORIZE_URL
    )
    query = urlencode({"client_id": settings.AMOCRM_CLIENT_ID, "state": state, "mode": mode})
    return f"{base}?{query}"


def amo_oauth_state_pop(*, session: Any, state: str) -> str | None:
    """The mode the ``state`` was issued for (consumed), or None if this session never issued
    it."""
    pending: dict[str, str] = dict(session.get(_SESSION_KEY) or {})
    mode = pending.pop(state, None)
    if mode is not None:
        session[_SESSION_KEY] = pending
    return mode
