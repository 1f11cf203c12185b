"""Writes of the join: «Настройки звонков» and «Менеджеры» (Django-Styleguide: keyword-only,
typed, ``<entity>_<action>``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.models import Organization
from core.services import audit_record
from core.tenancy import organization_scope
from integration.models import CallSettings, ManagerMapping
from pbx.selectors import abonents_for


def call_settings_create_default(*, organization: Organization) -> CallSettings:
    """The seven switches, all on, for a new organization."""
    with organization_scope(organization):
        return CallSettings.objects.create(organization=organization)


def call_settings_update(*, organization: Organization, values: dict[str, bool]) -> CallSettings:
    """Apply the «Настройки звонков» switches; unknown names raise ValueError (no silent typos)."""
    unknown = set(values) - set(CallSettings.SWITCHES)
    if unknown:
        raise ValueError(f"unknown call settings: {sorted(unknown)}")
    with organization_scope(organization), transaction.atomic():
        settings, _ = CallSettings.objects.select_for_update().get_or_create(
            organization=organization
        )
        changed = {
            name: value for name, value in values.items() if getattr(settings, name) != value
        }
        for name, value in changed.items():
            setattr(settings, name, value)
        settings.save()
    if changed:
        audit_record(
            organization=organization,
            kind="call_settings.changed",
            message=", ".join(f"{name}={'on' if on else 'off'}" for name, on in changed.items()),
            data=changed,
        )
    return settings


@dataclass(frozen=True, slots=True)
class ManagerMappingInput:
    """One submitted line of «Менеджеры» (``amo_user_id`` None is «Нет»)."""

    abonent_id: int
    enabled: bool
    amo_user_id: int | None


class ManagerMappingConflict(ValueError):
    """The same amoCRM user was chosen for several numbers; ``amo_user_ids`` names them."""

    def __init__(self, amo_user_ids: set[int]) -> None:
        super().__init__(f"amoCRM users chosen for several numbers: {sorted(amo_user_ids)}")
        self.amo_user_ids = amo_user_ids


def manager_mappings_save(
    *, organization: Organization, rows: Iterable[ManagerMappingInput]
) -> int:
    """Save the «Менеджеры» table in a constant number of queries; returns the rows written.

    Abonents that are not this organization's are ignored. Raises ManagerMappingConflict (and
    writes nothing) when one amoCRM user is chosen for two numbers.
    """
    rows = list(rows)
    counts = Counter(row.amo_user_id for row in rows if row.amo_user_id is not None)
    duplicates = {amo_id for amo_id, count in counts.items() if count > 1}
    if duplicates:
        raise ManagerMappingConflict(duplicates)
    now = timezone.now()
    with organization_scope(organization), transaction.atomic():
        own = {abonent.pk for abonent in abonents_for(organization=organization)}
        rows = [row for row in rows if row.abonent_id in own]
        # Free the submitted rows' users first, so that swapping two managers between two
        # numbers does not trip the one-number-per-user constraint half way.
        ManagerMapping.objects.filter(
            organization=organization, abonent_id__in=[row.abonent_id for row in rows]
        ).update(amo_user_id=None)
        try:
            with transaction.atomic():
                ManagerMapping.objects.bulk_create(
                    [
                        ManagerMapping(
                            organization=organization,
                            abonent_id=row.abonent_id,
                            amo_user_id=row.amo_user_id,
                            enabled=row.enabled,
                            updated_at=now,
                        )
                        for row in rows
                    ],
                    update_conflicts=True,
                    unique_fields=["organization", "abonent"],
                    update_fields=["amo_user_id", "enabled", "updated_at"],
                )
        except IntegrityError as exc:
            # A user still mapped on a number that was not submitted (another tab saved it).
            mapped = (
                ManagerMapping.objects.filter(
                    organization=organization, amo_user_id__in=list(counts)
                )
                .exclude(abonent_id__in=[row.abonent_id for row in rows])
                .values_list("amo_user_id", flat=True)
            )
            taken = {user for user in mapped if user is not None}
            raise ManagerMappingConflict(taken) from exc
    audit_record(
        organization=organization,
        kind="managers.saved",
        message=f"{len(rows)} numbers, {len(counts)} mapped to amoCRM users",
    )
    return len(rows)
