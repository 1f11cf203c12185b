"""amoCRM entity webhooks: our subscription and what arrives at ``/amocrm/webhooks/<secret>``.

We subscribe through the API (``POST /api/v4/webhooks``, docs/amocrm-api.md §10) at install and
re-install, with a secret in the URL because amoCRM does not sign these hooks. A hook only says
"these contacts changed": ``amo_contacts_changed`` is sent with their ids, and the receiver reads
each contact through the API before acting (a forged or stale hook cannot change anything by
itself).

Body format: ``application/x-www-form-urlencoded`` with PHP bracket keys such as
``contacts[update][0][id]`` and ``account[id]`` (CONFIRMED format; the field details are
CONFIRMED-3P).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry, Organization
from core.services import audit_record
from core.tenancy import organization_scope, scopes_disabled
from crm.errors import AmoError
from crm.models import AmoWebhook
from crm.signals import amo_contacts_changed

logger = logging.getLogger(__name__)

# The contact events routing needs: a contact added, changed (its phones), handed to another
# user, deleted or restored. Event names follow amoCRM's {action}_{entity} pattern (§10).
WEBHOOK_SETTINGS = (
    "add_contact",
    "update_contact",
    "responsible_contact",
    "delete_contact",
    "restore_contact",
)
_CONTACT_KEY = re.compile(r"^contacts\[(add|update|responsible|delete|restore)\]\[\d+\]\[id\]$")
MAX_IDS_PER_HOOK = 500


class WebhookBodyInvalid(ValueError):
    """A hook we cannot read (a non-numeric id, another account): answered 400."""


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def amo_webhook_ensure(*, organization: Organization) -> AmoWebhook:
    """The organization's webhook row with its secret (created once, kept across reinstalls)."""
    with organization_scope(organization), transaction.atomic():
        found = AmoWebhook.objects.select_for_update().filter(organization=organization).first()
        if found is not None:
            return found
        secret = secrets.token_urlsafe(32)
        return AmoWebhook.objects.create(
            organization=organization, secret=secret, secret_hash=_secret_hash(secret)
        )


def amo_webhook_url(*, webhook: AmoWebhook) -> str:
    """Where amoCRM posts entity events for this organization [contract: Public URLs]."""
    path = reverse("crm:webhooks", kwargs={"secret": webhook.secret})
    return f"{settings.PUBLIC_URL}{path}"


def amo_webhooks_subscribe(*, organization: Organization) -> AmoWebhook:
    """Subscribe (again) to the contact events. Idempotent: amoCRM keeps one hook per URL.

    Raises ``crm.errors`` classes; the failure is also stored for Диагностика.
    """
    from crm.services import amo_client

    webhook = amo_webhook_ensure(organization=organization)
    try:
        amo_client(organization=organization).webhook_subscribe(
            destination=amo_webhook_url(webhook=webhook), settings=WEBHOOK_SETTINGS
        )
    except AmoError as exc:
        with organization_scope(organization):
            AmoWebhook.objects.filter(pk=webhook.pk).update(last_error=exc.message)
        audit_record(
            organization=organization,
            kind="amo.webhooks_failed",
            level=AuditEntry.Level.WARNING,
            message=f"Не удалось подписаться на вебхуки amoCRM: {exc.message}",
        )
        raise
    now = timezone.now()
    with organization_scope(organization):
        AmoWebhook.objects.filter(pk=webhook.pk).update(
            settings=list(WEBHOOK_SETTINGS), subscribed_at=now, last_error="", updated_at=now
        )
    webhook.refresh_from_db()
    return webhook


# secret hash → (organization id, looked up at): one query saved per hook on a busy account.
_SECRET_CACHE: dict[str, tuple[int, float]] = {}
_SECRET_CACHE_SECONDS = 60.0


def amo_webhook_organization_id(*, secret: str) -> int | None:
    if not secret or len(secret) > 128:
        return None
    digest = _secret_hash(secret)
    cached = _SECRET_CACHE.get(digest)
    if cached is not None and time.monotonic() - cached[1] < _SECRET_CACHE_SECONDS:
        return cached[0]
    with scopes_disabled():
        org_id = (
            AmoWebhook.objects.filter(secret_hash=digest)
            .values_list("organization_id", flat=True)
            .first()
        )
    if org_id is not None:
        if len(_SECRET_CACHE) > 10_000:
            _SECRET_CACHE.clear()
        _SECRET_CACHE[digest] = (org_id, time.monotonic())
    return org_id


@dataclass(frozen=True, slots=True)
class HookContent:
    contact_ids: list[int]
    account_id: int | None


def amo_webhook_parse(items: Iterable[tuple[str, str]]) -> HookContent:
    """The contact ids a hook names (every action alike: the receiver re-reads them anyway)
    and ``account[id]``. Keys of other entities are ignored. Raises WebhookBodyInvalid."""
    ids: list[int] = []
    account_id: int | None = None
    for key, value in items:
        if key == "account[id]":
            if not value.strip().isdigit():
                raise WebhookBodyInvalid("account[id] is not a number")
            account_id = int(value)
        elif _CONTACT_KEY.match(key):
            if not value.strip().isdigit():
                raise WebhookBodyInvalid(f"{key} is not a number")
            ids.append(int(value))
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_IDS_PER_HOOK:
        raise WebhookBodyInvalid("too many contacts in one hook")
    return HookContent(contact_ids=unique, account_id=account_id)


def amo_webhook_received(*, organization_id: int, content: HookContent) -> int:
    """Accept a parsed hook for the organization: check it is its account, note the time,
    tell the receivers which contacts changed. Returns how many contacts were named.

    Raises WebhookBodyInvalid for a hook of another amoCRM account.
    """
    organization = Organization.objects.get(pk=organization_id)
    if content.account_id is not None and content.account_id != organization.amo_account_id:
        raise WebhookBodyInvalid("the hook is for another amoCRM account")
    now = timezone.now()
    with organization_scope(organization_id):
        AmoWebhook.objects.filter(organization_id=organization_id).update(last_received_at=now)
    if content.contact_ids:
        amo_contacts_changed.send(
            sender=Organization,
            organization_id=organization_id,
            contact_ids=list(content.contact_ids),
        )
    logger.info(
        "amo webhook received",
        extra={"organization_id": organization_id, "contacts": len(content.contact_ids)},
    )
    return len(content.contact_ids)
