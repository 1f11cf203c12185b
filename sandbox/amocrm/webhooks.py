"""Entity webhooks of the emulated amoCRM: subscriptions (``/api/v4/webhooks``) and the POSTs
amoCRM sends when a contact is added, changed, handed to another responsible user or deleted.

Delivery format (docs/amocrm-api.md §10): ``application/x-www-form-urlencoded`` with PHP
bracket keys (``contacts[update][0][id]=…``), every value a string, plus ``account[subdomain]`` and
``account[id]``; one POST may carry several events. The field set per contact follows the
documented format page; ``old_responsible_user_id`` on ``responsible`` events is a GUESS. The
hooks are not signed (CONFIRMED-3P): the receiver must re-read the entity before acting.

Sent at once, in the caller's thread, with a short timeout and no retry (a failed delivery is
logged on the account page). Real amoCRM disables an endpoint that keeps failing; the
emulator does not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from sandbox.amocrm import clock
from sandbox.amocrm.models import Account, Contact, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

HOOK_TIMEOUT_SECONDS = 3

# The events a subscription may ask for (amoCRM's settings list, docs/amocrm-api.md §10: the
# pattern {action}_{entity}). Only contact events are ever sent by the emulator.
KNOWN_SETTINGS = frozenset(
    f"{action}_{entity}"
    for entity in ("lead", "contact", "company", "customer", "task")
    for action in ("add", "update", "delete", "responsible", "restore", "note")
) | {"status_lead", "add_talk", "update_talk", "add_chat_template_review"}

# What a contact event is called in the body (contacts[<section>]) and in the settings.
CONTACT_ACTIONS = ("add", "update", "responsible", "delete")


@dataclass(frozen=True)
class ContactEvent:
    action: str  # add | update | responsible | delete
    contact_id: int
    fields: dict[str, Any]


def _contact_fields(contact: Contact, *, old_responsible_id: int | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": contact.pk,
        "name": contact.name,
        "responsible_user_id": contact.responsible_user_id,
        "date_create": int(contact.created_at.timestamp()),
        "last_modified": int(contact.updated_at.timestamp()),
        "created_user_id": contact.created_by,
        "modified_user_id": contact.updated_by,
        "account_id": contact.account_id,
        "type": "contact",
    }
    if old_responsible_id is not None:
        fields["old_responsible_user_id"] = old_responsible_id
    custom = []
    for entry in contact.custom_fields_values or []:
        custom.append(
            {
                "id": entry.get("field_id"),
                "name": entry.get("field_name"),
                "code": entry.get("field_code"),
                "values": [
                    {"value": v.get("value"), "enum": v.get("enum_id")}
                    for v in entry.get("values") or []
                ],
            }
        )
    if custom:
        fields["custom_fields"] = custom
    return fields


def contact_added(contact: Contact) -> ContactEvent:
    return ContactEvent("add", contact.pk, _contact_fields(contact))


def contact_updated(contact: Contact) -> ContactEvent:
    return ContactEvent("update", contact.pk, _contact_fields(contact))


def contact_responsible_changed(contact: Contact, old_responsible_id: int) -> ContactEvent:
    return ContactEvent(
        "responsible",
        contact.pk,
        _contact_fields(contact, old_responsible_id=old_responsible_id),
    )


def contact_deleted(contact_id: int) -> ContactEvent:
    return ContactEvent("delete", contact_id, {"id": contact_id, "type": "contact"})


def php_form_pairs(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts/lists → PHP bracket pairs: ``{"a": [{"b": 1}]}`` → ``[("a[0][b]", "1")]``."""
    if isinstance(data, dict):
        items: Iterable[tuple[Any, Any]] = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [(prefix, "" if data is None else str(data))]
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs += php_form_pairs(value, name)
    return pairs


def _body(account: Account, events: list[ContactEvent]) -> str:
    sections: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        sections.setdefault(event.action, []).append(event.fields)
    data = {
        "contacts": sections,
        "account": {
            "subdomain": account.subdomain,
            "id": account.pk,
            "_links": {"self": f"https://{account.host}"},
        },
    }
    return urlencode(php_form_pairs(data))


def contact_events_send(account: Account, events: list[ContactEvent]) -> list[WebhookDelivery]:
    """POST ``events`` to every enabled subscription of the account that asked for them (each
    subscription gets only its own events, in one POST). Never raises."""
    deliveries = []
    for subscription in WebhookSubscription.objects.filter(account=account, disabled=False):
        wanted = [e for e in events if f"{e.action}_contact" in subscription.settings]
        if not wanted:
            continue
        deliveries.append(_post(account, subscription, wanted))
    return deliveries


def _post(
    account: Account, subscription: WebhookSubscription, events: list[ContactEvent]
) -> WebhookDelivery:
    body = _body(account, events)
    status: int | None = None
    error = ""
    try:
        response = requests.post(
            subscription.destination,
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=HOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        status = response.status_code
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    logger.info(
        "sandbox amoCRM webhook sent",
        extra={"account_id": account.pk, "status_code": status, "error": error},
    )
    return WebhookDelivery.objects.create(
        account=account,
        destination=subscription.destination,
        event=", ".join(sorted({f"{e.action}_contact" for e in events})),
        body=body,
        status_code=status,
        error=error,
        sent_at=clock.now(),
    )


def subscription_upsert(
    *, account: Account, destination: str, settings: list[str], sort: int, created_by: int
) -> WebhookSubscription:
    """Subscribe ``destination``; subscribing an existing destination again replaces its
    settings (GUESS: amoCRM keeps one hook per destination)."""
    now = clock.now()
    subscription, created = WebhookSubscription.objects.get_or_create(
        account=account,
        destination=destination,
        defaults={
            "settings": settings,
            "sort": sort,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        },
    )
    if not created:
        subscription.settings = settings
        subscription.sort = sort
        subscription.disabled = False
        subscription.updated_at = now
        subscription.save()
    return subscription
