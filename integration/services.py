"""Writes for the tenant core (Django-Styleguide: keyword-only, typed, ``<entity>_<action>``)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from integration.access_keys import access_key_generate, access_key_hash
from integration.models import AuditEntry, CallSettings, ManagerMapping, Organization
from integration.tenancy import organization_scope

logger = logging.getLogger(__name__)


def organization_upsert_from_amo(
    *, amo_account_id: int, name: str, subdomain: str, host: str, now: datetime | None = None
) -> tuple[Organization, bool]:
    """Create the organization of an amoCRM account, or reactivate the existing one.

    A reinstall keeps the organization, its settings and its access key. Returns
    ``(organization, created)``. Safe under concurrent installs of the same account.
    """
    now = now or timezone.now()
    with transaction.atomic():
        org = Organization.objects.select_for_update().filter(amo_account_id=amo_account_id).first()
        if org is not None:
            org.name = name or org.name
            org.amo_subdomain = subdomain or org.amo_subdomain
            org.amo_host = host or org.amo_host
            org.status = Organization.Status.ACTIVE
            org.status_reason = ""
            org.installed_at = now
            org.disconnected_at = None
            org.save()
            return org, False
    try:
        return organization_create(
            amo_account_id=amo_account_id, name=name, subdomain=subdomain, host=host, now=now
        ), True
    except IntegrityError:
        # Another request created it between our read and insert: take that one.
        return organization_upsert_from_amo(
            amo_account_id=amo_account_id, name=name, subdomain=subdomain, host=host, now=now
        )


def organization_create(
    *,
    amo_account_id: int,
    name: str,
    subdomain: str = "",
    host: str = "",
    now: datetime | None = None,
) -> Organization:
    """A new organization with a fresh access key and default call settings."""
    key = access_key_generate()
    with transaction.atomic():
        org = Organization.objects.create(
            amo_account_id=amo_account_id,
            name=name or subdomain or str(amo_account_id),
            amo_subdomain=subdomain,
            amo_host=host,
            installed_at=now or timezone.now(),
            access_key_hash=access_key_hash(key),
            access_key_encrypted=key,
        )
        with organization_scope(org):
            CallSettings.objects.create(organization=org)
    logger.info("organization created", extra={"organization_id": org.pk})
    return org


def organization_set_status(
    *, organization: Organization, status: Organization.Status, reason: str = ""
) -> None:
    """Record a status change (and why) once; repeated calls with the same status are no-ops."""
    updated = (
        Organization.objects.filter(pk=organization.pk)
        .exclude(status=status, status_reason=reason)
        .update(status=status, status_reason=reason, updated_at=timezone.now())
    )
    organization.status, organization.status_reason = status, reason
    if updated:
        audit_record(
            organization=organization,
            kind="organization.status",
            level=AuditEntry.Level.INFO
            if status == Organization.Status.ACTIVE
            else AuditEntry.Level.ERROR,
            message=f"{status.label}: {reason}" if reason else str(status.label),
        )


def audit_record(
    *,
    organization: Organization | int,
    kind: str,
    message: str,
    level: str = AuditEntry.Level.INFO,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append to the organization's diagnostic log. Callers must never pass secrets."""
    org_id = organization if isinstance(organization, int) else organization.pk
    with organization_scope(org_id):
        return AuditEntry.objects.create(
            organization_id=org_id, kind=kind, level=level, message=message, data=data or {}
        )


def audit_prune(*, older_than: datetime) -> int:
    from integration.tenancy import scopes_disabled

    with scopes_disabled():
        deleted, _ = AuditEntry.objects.filter(created_at__lt=older_than).delete()
    return deleted


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


def organization_time_zone_set(*, organization: Organization, time_zone: str) -> None:
    """The zone the cabinet shows this organization's dates and times in (an IANA name)."""
    organization.time_zone = time_zone
    organization.full_clean(validate_unique=False, validate_constraints=False)
    Organization.objects.filter(pk=organization.pk).update(time_zone=time_zone)
    audit_record(
        organization=organization,
        kind="organization.time_zone",
        message=f"Часовой пояс: {time_zone}",
    )


def organization_delete(*, organization: Organization) -> None:
    """Delete the organization and, by CASCADE, every row it owns. Irreversible.

    Nothing is told to amoCRM or Beeline: a later install of the same account starts afresh, and
    events still arriving for the old webhook secret are answered 404 and dropped.
    """
    org_id = organization.pk
    with transaction.atomic():
        Organization.objects.filter(pk=org_id).delete()
    logger.info("organization deleted", extra={"organization_id": org_id})


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
    from pbx.selectors import abonents_for

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
            taken = set(
                ManagerMapping.objects.filter(
                    organization=organization, amo_user_id__in=list(counts)
                )
                .exclude(abonent_id__in=[row.abonent_id for row in rows])
                .values_list("amo_user_id", flat=True)
            )
            raise ManagerMappingConflict(taken) from exc
    audit_record(
        organization=organization,
        kind="managers.saved",
        message=f"{len(rows)} numbers, {len(counts)} mapped to amoCRM users",
    )
    return len(rows)
