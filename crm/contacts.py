"""amoCRM contacts by phone number: the one way to find or create them, batched.

Order per number: the ``ContactIndex`` (no request at all for a repeat caller), then one search
per distinct new number (``GET /api/v4/contacts?query=<10 digits>``, matches confirmed on the
PHONE values by the client), then one batched create for the numbers that may have a new contact.
crm is the only writer of ``ContactIndex`` (docs/architecture.md «crm/»).

Two processes resolving the same new number create ONE contact: searches and creates run under
the organization's advisory lock, and the index is read again and written before it is released.
Contacts need no "posting" marker: a create whose answer was lost is found by the search that
precedes any create.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.locks import advisory_lock
from core.models import Organization
from core.phones import Phone
from core.tenancy import organization_scope
from crm.client import AmoClient, AmoContact, ContactDraft
from crm.errors import AmoPermanentError
from crm.inflight import requests_in_flight
from crm.models import ContactIndex
from crm.services import amo_client


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """One number to resolve. Requests for the same number share one contact; the first one
    that allows creating it gives the new contact its tags and responsible user."""

    phone: Phone
    create: bool = False  # may a contact be created when amoCRM has none for the number?
    tags: Sequence[str] = ()
    responsible_user_id: int | None = None
    # Ask amoCRM even when the number is indexed: the caller needs the contact's responsible.
    owner_wanted: bool = False


@dataclass(frozen=True, slots=True)
class ContactResult:
    contact_id: int | None = None  # None: amoCRM has none and this request may not create one
    created: bool = False  # True for the one request whose draft created the contact
    owner_id: int | None = None  # the contact's responsible user, when amoCRM was asked
    error: str = ""  # amoCRM refused to create the contact (its reason)


def contacts_resolve(
    *, organization: Organization, requests: Sequence[ContactRequest]
) -> list[ContactResult]:
    """The amoCRM contact of each request, in the order of ``requests``.

    Raises ``crm.errors.AmoError`` when amoCRM cannot be asked (transient trouble, paused or
    revoked access); what was learnt before that is already in the index.
    """
    nationals = sorted({r.phone.national for r in requests})
    owner_wanted = {r.phone.national for r in requests if r.owner_wanted}
    indexed = _index_read(organization, nationals)
    if all(n in indexed and n not in owner_wanted for n in nationals):
        return [ContactResult(contact_id=indexed[r.phone.national]) for r in requests]
    # Session-level: held across the index writes' commits; a crashed process drops its
    # connection and with it the lock.
    with advisory_lock(f"contacts:{organization.pk}"):
        indexed = _index_read(organization, nationals)  # another process may have added some
        client = amo_client(organization=organization)
        to_search = [n for n in nationals if n not in indexed or n in owner_wanted]
        found = _search(client, to_search)
        _index_write(organization, {n: c.id for n, c in found.items()}, created=False)
        contacts = {n: c.id for n, c in found.items()} | indexed
        creators: dict[str, ContactRequest] = {}
        for request in requests:
            if request.create and request.phone.national not in contacts:
                creators.setdefault(request.phone.national, request)
        outcomes = _create(client, list(creators.values()))
        new_ids = {n: o for n, o in zip(creators, outcomes, strict=True) if isinstance(o, int)}
        _index_write(organization, new_ids, created=True)
    errors = {n: o for n, o in zip(creators, outcomes, strict=True) if isinstance(o, str)}
    contacts |= new_ids
    results = []
    for request in requests:
        national = request.phone.national
        owner = found[national].responsible_user_id if national in found else None
        if request.create and national in errors:
            results.append(ContactResult(error=errors[national]))
            continue
        results.append(
            ContactResult(
                contact_id=contacts.get(national),
                created=creators.get(national) is request and national in new_ids,
                owner_id=owner,
            )
        )
    return results


def contact_index_forget(*, organization: Organization, contact_id: int) -> int:
    """Drop index rows pointing at a contact amoCRM no longer has ("Entity not found")."""
    with organization_scope(organization):
        deleted, _ = ContactIndex.objects.filter(
            organization=organization, contact_id=contact_id
        ).delete()
    return deleted


def _index_read(organization: Organization, nationals: Sequence[str]) -> dict[str, int]:
    with organization_scope(organization):
        return dict(
            ContactIndex.objects.filter(
                organization=organization, phone_national__in=list(nationals)
            ).values_list("phone_national", "contact_id")
        )


def _index_write(organization: Organization, contacts: dict[str, int], *, created: bool) -> None:
    """Upsert phone → contact rows (one statement), before the next request to amoCRM."""
    if not contacts:
        return
    with organization_scope(organization):
        ContactIndex.objects.bulk_create(
            [
                ContactIndex(
                    organization=organization,
                    phone_national=national,
                    contact_id=contact_id,
                    created_by_us=created,
                )
                for national, contact_id in contacts.items()
            ],
            update_conflicts=True,
            unique_fields=["organization", "phone_national"],
            update_fields=["contact_id", "created_by_us"],
        )


def _search(client: AmoClient, nationals: Sequence[str]) -> dict[str, AmoContact]:
    """The oldest matching contact of each number amoCRM knows.

    AMOCRM_SEARCH_CONCURRENCY searches are in flight at once, so that each round trip
    (amoCRM's answer, our parsing) overlaps the wait for the next slot; one by one, a slow
    answer leaves slots unused. The shared limiter still spaces every request.
    """
    results: list[list[AmoContact]] = []
    for outcome in requests_in_flight(client.contacts_find_by_phone, nationals):
        if isinstance(outcome, Exception):
            raise outcome
        results.append(outcome)
    return {
        national: min(matches, key=lambda contact: contact.id)
        for national, matches in zip(nationals, results, strict=True)
        if matches
    }


def _create(client: AmoClient, requests: Sequence[ContactRequest]) -> list[int | str]:
    """Contact ids in the order of ``requests``; an error text for one amoCRM refused."""
    if not requests:
        return []
    drafts = [
        ContactDraft(
            name=r.phone.e164,
            phone_e164=r.phone.e164,
            tags=tuple(r.tags),
            responsible_user_id=r.responsible_user_id,
        )
        for r in requests
    ]
    try:
        return list(client.contacts_create(drafts))
    except AmoPermanentError as exc:
        if len(requests) == 1:
            return [exc.message]
    # A validation error in one draft rejects the whole batch (nothing is created): one by
    # one, so a single bad contact does not fail its neighbours.
    return [_create(client, [request])[0] for request in requests]
