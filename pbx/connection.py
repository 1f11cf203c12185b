"""Connecting an organization to Beeline: verify and save the API token, sync abonents and
numbers (on save, daily, and from Диагностика).

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import Organization
from core.phones import phone_national
from core.services import audit_record
from core.tenancy import organization_scope
from pbx.client import BeelineAbonent, BeelineClient, BeelineNumber
from pbx.credentials import beeline_client_for, credentials_flag, webhook_secret_hash
from pbx.errors import BeelineError, BeelineTokenRejected
from pbx.models import Abonent, BeelineCredentials, PbxNumber
from pbx.subscriptions import subscription_renew

# The rows a Beeline list sync keeps: found by Beeline's id, stamped with the sync time.
SyncedRow = TypeVar("SyncedRow", Abonent, PbxNumber)


@dataclass(frozen=True, slots=True)
class TokenSaveResult:
    abonent_count: int
    number_count: int
    subscription_id: str
    subscription_expires_at: datetime | None
    # Set when the token is saved but the subscription could not be created yet (retried).
    subscription_error: str = ""


def beeline_token_save(*, organization: Organization, token: str) -> TokenSaveResult:
    """Verify a Beeline API token, store it, sync abonents and numbers, (re)subscribe.

    Raises ``BeelineTokenRejected`` (Beeline's description, or a Russian explanation) and
    ``BeelineUnavailable``; in both cases nothing is saved. A subscription failure after the
    token was saved does not raise: it is reported in the result and retried by the beat.
    """
    token = token.strip()
    if not token:
        raise BeelineTokenRejected(_("Вставьте токен Beeline API."))
    client = BeelineClient(token)
    try:
        abonents = client.abonents_list()
        numbers = client.numbers_list()
    except BeelineError as exc:
        if exc.permanent:  # whatever Beeline refused, this token cannot be saved
            raise BeelineTokenRejected(exc.message, status=exc.status, code=exc.code) from None
        raise
    now = timezone.now()
    with transaction.atomic(), organization_scope(organization):
        credentials = BeelineCredentials.objects.select_for_update().filter().first()
        old_token = credentials.api_token if credentials else ""
        if credentials is None:
            secret = secrets.token_urlsafe(32)
            credentials = BeelineCredentials(
                organization=organization,
                webhook_secret=secret,
                webhook_secret_hash=webhook_secret_hash(secret),
            )
        credentials.api_token = token
        credentials.status = BeelineCredentials.Status.ACTIVE
        credentials.verified_at = now
        credentials.last_error = ""
        credentials.save()
        abonent_count = _abonents_apply(organization=organization, abonents=abonents, now=now)
        number_count = _numbers_apply(organization=organization, numbers=numbers, now=now)
    audit_record(
        organization=organization,
        kind="beeline.token_saved",
        message=_("Токен Beeline сохранён: абонентов %(a)s, номеров %(n)s.")
        % {"a": abonent_count, "n": number_count},
    )
    old_client = BeelineClient(old_token) if old_token and old_token != token else None
    try:
        subscription = subscription_renew(
            organization=organization, now=now, previous_client=old_client
        )
    except BeelineError as exc:
        return TokenSaveResult(abonent_count, number_count, "", None, exc.message)
    return TokenSaveResult(
        abonent_count, number_count, subscription.subscription_id, subscription.expires_at
    )


def pbx_sync(*, organization: Organization) -> tuple[int, int]:
    """Refresh abonents and numbers from Beeline. Returns ``(abonents, numbers)``.

    A rejected token flags the credentials (Диагностика shows it) and raises; an unreachable
    Beeline raises ``BeelineUnavailable`` for the caller to retry.
    """
    credentials, client = beeline_client_for(organization)
    try:
        abonents = client.abonents_list()
        numbers = client.numbers_list()
    except BeelineTokenRejected as exc:
        credentials_flag(credentials=credentials, error=exc, kind="beeline.sync_failed")
        raise
    now = timezone.now()
    with transaction.atomic():
        counts = (
            _abonents_apply(organization=organization, abonents=abonents, now=now),
            _numbers_apply(organization=organization, numbers=numbers, now=now),
        )
    return counts


def _upsert_synced(
    *,
    organization: Organization,
    model: type[SyncedRow],
    key: str,
    items: Sequence[Any],
    fill: Callable[[SyncedRow, Any], None],
    now: datetime,
) -> set[str]:
    """Upsert one Beeline list by its id field ``key`` (a repeated id counts once) within the
    organization; ``fill`` copies an item onto its row. Returns the ids seen, for the caller
    to decide what happens to the rows Beeline no longer lists."""
    seen: set[str] = set()
    existing = {getattr(row, key): row for row in model.objects.all()}
    for item in items:
        item_id = getattr(item, key)
        if item_id in seen:
            continue
        seen.add(item_id)
        row = existing.get(item_id) or model(organization=organization, **{key: item_id})
        fill(row, item)
        row.synced_at = now
        row.save()
    return seen


def _abonents_apply(
    *, organization: Organization, abonents: list[BeelineAbonent], now: datetime
) -> int:
    """Upsert by userId; abonents gone from Beeline become inactive (their mappings are kept
    for when they come back, and old calls keep their abonent)."""

    def fill(abonent: Abonent, item: BeelineAbonent) -> None:
        abonent.phone = phone_national(item.phone) or item.phone[:20]
        abonent.first_name = item.first_name[:255]
        abonent.last_name = item.last_name[:255]
        abonent.email = item.email[:255]
        abonent.department = item.department[:255]
        abonent.extension = item.extension[:32]
        abonent.active = True

    with organization_scope(organization):
        seen = _upsert_synced(
            organization=organization,
            model=Abonent,
            key="user_id",
            items=abonents,
            fill=fill,
            now=now,
        )
        Abonent.objects.exclude(user_id__in=seen).filter(active=True).update(active=False)
    return len(seen)


def _numbers_apply(
    *, organization: Organization, numbers: list[BeelineNumber], now: datetime
) -> int:
    """Upsert by numberId, delete the ones gone; a name typed in admin survives a sync when
    Beeline sends none."""

    def fill(number: PbxNumber, item: BeelineNumber) -> None:
        number.phone = phone_national(item.phone) or item.phone[:20]
        number.name = item.name[:255] or number.name
        # Beeline's word only (docs/beeline-api.md §3: /numbers lists the incoming numbers,
        # multichannel ones among them); None when it does not say.
        number.is_multichannel = item.multichannel

    with organization_scope(organization):
        seen = _upsert_synced(
            organization=organization,
            model=PbxNumber,
            key="number_id",
            items=numbers,
            fill=fill,
            now=now,
        )
        PbxNumber.objects.exclude(number_id__in=seen).delete()
    return len(seen)
