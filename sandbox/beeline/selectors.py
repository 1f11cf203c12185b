"""Reads of the emulator state (the API views and pages use these)."""

from __future__ import annotations

import re
from datetime import datetime

from django.db.models import Q, QuerySet

from sandbox.beeline import clock
from sandbox.beeline.models import Abonent, Number, Pbx, Record, StatisticsRow, Subscription


def pbx_by_token(*, token: str) -> Pbx | None:
    if not token:
        return None
    return Pbx.objects.filter(token=token.strip()).first()


def _national(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return digits[-10:] if len(digits) >= 10 else digits


def abonent_find(*, pbx: Pbx, pattern: str) -> Abonent | None:
    """By userId, phone (any common format of the 10 digits) or extension, as the portal does."""
    pattern = pattern.strip()
    if not pattern:
        return None
    query = Q(user_id=pattern) | Q(extension=pattern)
    if "@" not in pattern and len(_national(pattern)) == 10:
        query |= Q(phone=_national(pattern))
    return pbx.abonents.filter(query).first()


def number_find(*, pbx: Pbx, pattern: str) -> Number | None:
    pattern = pattern.strip()
    if not pattern:
        return None
    query = Q(number_id=pattern)
    if "@" not in pattern and len(_national(pattern)) == 10:
        query |= Q(phone=_national(pattern))
    return pbx.numbers.filter(query).first()


def subscriptions_active(*, pbx: Pbx) -> QuerySet[Subscription]:
    return pbx.subscriptions.filter(
        deleted_at__isnull=True, terminated_at__isnull=True, expires_at__gt=clock.now()
    ).order_by("created_at", "id")


def subscription_get(*, pbx: Pbx, subscription_id: str) -> Subscription | None:
    return subscriptions_active(pbx=pbx).filter(subscription_id=subscription_id).first()


def records_list(
    *,
    pbx: Pbx,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    after_id: int | None = None,
    user_id: str | None = None,
    department: str | None = None,
    limit: int = 100,
) -> list[Record]:
    records = pbx.records.select_related("abonent").order_by("id")
    if date_from:
        records = records.filter(date__gte=date_from)
    if date_to:
        records = records.filter(date__lt=date_to)
    if after_id is not None:
        records = records.filter(pk__gt=after_id)
    if user_id:
        records = records.filter(abonent__user_id=user_id)
    if department:
        records = records.filter(abonent__department=department)
    return list(records[:limit])


def record_by_tracking(*, pbx: Pbx, ext_tracking_id: str, user_id: str) -> Record | None:
    return (
        pbx.records.select_related("abonent")
        .filter(ext_tracking_id=ext_tracking_id, abonent__user_id=user_id)
        .first()
    )


def statistics_page(
    *,
    pbx: Pbx,
    date_from: datetime | None,
    date_to: datetime | None,
    user_id: str | None,
    page: int,
    page_size: int,
) -> list[StatisticsRow]:
    rows = pbx.statistics.select_related("abonent").order_by("start", "id")
    if date_from:
        rows = rows.filter(start__gte=date_from)
    if date_to:
        rows = rows.filter(start__lt=date_to)
    if user_id:
        rows = rows.filter(abonent__user_id=user_id)
    offset = page * page_size
    return list(rows[offset : offset + page_size])
