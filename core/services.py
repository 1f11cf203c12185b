"""Writes of the ground floor: organizations and their diagnostic log (Django-Styleguide:
keyword-only, typed, ``<entity>_<action>``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.access_keys import access_key_generate, access_key_hash
from core.models import AuditEntry, Organization
from core.signals import organization_created
from core.tenancy import organization_scope, scopes_disabled

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
    """A new organization with a fresh access key. ``organization_created`` is sent inside the
    transaction, so what other apps create with it (default call settings) commits with it."""
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
        organization_created.send(sender=Organization, organization=org)
    logger.info("organization created", extra={"organization_id": org.pk})
    return org


def organization_access_key_rotate(*, organization: Organization) -> str:
    """«Сменить ключ»: a new access key replaces the old one, which stops opening the cabinet
    at once; the key generation goes up, so every session unlocked with the old key is logged
    out of this organization (cabinet/access.py). Returns the new key (show it once)."""
    key = access_key_generate()
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        locked.access_key_hash = access_key_hash(key)
        locked.access_key_encrypted = key
        locked.access_key_generation += 1
        locked.save(
            update_fields=[
                "access_key_hash",
                "access_key_encrypted",
                "access_key_generation",
                "updated_at",
            ]
        )
    organization.access_key_hash = locked.access_key_hash
    organization.access_key_encrypted = key
    organization.access_key_generation = locked.access_key_generation
    audit_record(
        organization=organization,
        kind="access_key.rotated",
        level=AuditEntry.Level.WARNING,
        message="Ключ доступа заменён: все сеансы со старым ключом завершены.",
    )
    logger.info("access key rotated", extra={"organization_id": organization.pk})
    return key


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


def audit_staff_action(*, organization: Organization | int, user: Any, action: str) -> AuditEntry:
    """Support staff acted for the customer (cabinet or admin): the log names the staff member."""
    username = user.get_username()
    return audit_record(
        organization=organization,
        kind="support.acted",
        message=f"Сотрудник поддержки {username}: {action}",
        data={"staff_user_id": user.pk, "staff_username": username},
    )


def audit_prune(*, older_than: datetime) -> int:
    with scopes_disabled():
        deleted, _ = AuditEntry.objects.filter(created_at__lt=older_than).delete()
    return deleted


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
