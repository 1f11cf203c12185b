"""One claimed delivery on its way through the steps, and the writes it owes the database.

The steps record what amoCRM told them with ``store`` and write it with ``flush`` (one UPDATE per
set of changed fields) before the next request to amoCRM, so what amoCRM did survives a crash of
what follows. ``mark`` is the committed UPDATE that must precede a non-idempotent POST.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from core import metrics
from core.bulk import rows_update
from core.tenancy import organization_scope
from integration.delivery.rules import FinishedCall, Plan
from integration.models import CallDelivery

Status = CallDelivery.Status


@dataclass
class Work:
    """One claimed delivery with its call and plan, and what this round made of it."""

    delivery: CallDelivery
    call: FinishedCall
    plan: Plan
    task_user: int | None = None  # the plan's, or the group call contact's responsible
    # Decided (or, once posting started, sticky): the call goes to «Неразобранное».
    to_unsorted: bool = False
    error: str = ""  # a permanent problem of this item (ends failed)
    transient: str = ""  # a transient problem of this item (retried)
    handled: bool = False  # already settled or rescheduled by this round

    @property
    def active(self) -> bool:
        """Still on its way: the next step should take it."""
        return not (self.error or self.transient or self.handled)


def store(delivery: CallDelivery, **values: Any) -> None:
    """Set fields of one delivery; ``flush`` writes them."""
    dirty: set[str] = delivery.__dict__.setdefault("_dirty", set())
    for name, value in values.items():
        setattr(delivery, name, value)
        dirty.add(name)


def flush(deliveries: Sequence[CallDelivery]) -> None:
    """Write what ``store`` set: one UPDATE per set of changed fields."""
    groups: dict[frozenset[str], list[CallDelivery]] = defaultdict(list)
    now = timezone.now()
    for delivery in deliveries:
        dirty = delivery.__dict__.get("_dirty")
        if dirty:
            delivery.updated_at = now
            groups[frozenset(dirty)].append(delivery)
            dirty.clear()
    for fields, rows in groups.items():
        rows_update(rows, [*sorted(fields), "updated_at"], organization_id=rows[0].organization_id)


def mark(items: Sequence[Work], **values: Any) -> None:
    """Set fields of several deliveries in one UPDATE, committed at once (the ``posting``
    marker goes in before the POST it guards)."""
    if not items:
        return
    for w in items:
        for name, value in values.items():
            setattr(w.delivery, name, value)
    with organization_scope(items[0].delivery.organization_id):
        CallDelivery.objects.filter(pk__in=[w.delivery.pk for w in items]).update(
            **values, updated_at=timezone.now()
        )


def settle(delivery: CallDelivery, status: str, reason: str = "") -> None:
    """A final status (done, skipped by setting with its reason, failed with its error)."""
    values: dict[str, Any] = {"status": status, "lease_until": None, "next_attempt_at": None}
    if status == Status.SKIPPED_BY_SETTING:
        values["skip_reason"] = reason
    elif status == Status.FAILED:
        values["last_error"] = reason
    elif status == Status.DONE:
        values["delivered_at"] = timezone.now()
        values["last_error"] = ""
    store(delivery, **values)
    metrics.delivery_finished_observe(status)
