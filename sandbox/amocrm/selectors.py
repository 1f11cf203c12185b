"""Reads of the emulated amoCRM: token lookup, contact search and phone matching."""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from sandbox.amocrm import tokens
from sandbox.amocrm.models import Account, Contact, TokenPair

_PHONEISH = re.compile(r"^[\d\s()+\-.]+$")


def token_pair_by_access_token(token: str) -> tuple[int | None, TokenPair | None]:
    """(account id from the signed claims, the pair if the token is ours and known).

    The account id is returned even for an expired or revoked token so per-account faults and
    the rate limit apply before the 401, as they would on the account's own host.
    """
    claims = tokens.access_token_claims(token)
    if claims is None:
        return None, None
    account_id = claims.get("account_id")
    pair = (
        TokenPair.objects.select_related("account", "user", "integration")
        .filter(access_jti=str(claims.get("jti", "")))
        .first()
    )
    return (account_id if isinstance(account_id, int) else None), pair


# Contact search by ``query`` compares phones on their last 7 digits (docs/amocrm-api.md §6b,
# CONFIRMED-3P), so "+7 916 …", "8 916 …" and a bare "916…" all find the same contact, and so
# does any other number ending in the same 7 digits: callers must confirm the match themselves.
QUERY_PHONE_DIGITS = 7


def contacts_search(*, account: Account, query: str) -> QuerySet[Contact]:
    """``GET /api/v4/contacts?query=``: a search over the filled fields.

    The name matches as a substring. A query that looks like a phone also matches every
    contact with a PHONE value ending in the same last 7 digits; a shorter one matches phones
    containing its digits.
    """
    contacts = account.contacts.all()
    query = query.strip()
    if query:
        condition = Q(name__icontains=query)
        digits = re.sub(r"\D", "", query)
        if digits and _PHONEISH.match(query):
            if len(digits) >= QUERY_PHONE_DIGITS:
                condition |= Q(phones__digits__endswith=digits[-QUERY_PHONE_DIGITS:])
            else:
                condition |= Q(phones__digits__contains=digits)
        contacts = contacts.filter(condition).distinct()
    return contacts


def contacts_by_phone_suffixes(
    *, account: Account, phones: list[str], suffix_len: int
) -> dict[str, Contact]:
    """The contact each call (last 10 digits) or notification (last 8) attaches to, for many
    phones in one query: phone → its contact (phones matching none are left out).

    Several matches: the oldest contact wins (GUESS: amoCRM's choice is not documented).
    """
    suffixes = {phone: re.sub(r"\D", "", phone)[-suffix_len:] for phone in phones}
    wanted = {suffix for suffix in suffixes.values() if suffix}
    if not wanted:
        return {}
    matches = Q()
    for suffix in wanted:
        matches |= Q(phones__digits__endswith=suffix)
    oldest: dict[str, Contact] = {}
    for contact in (
        account.contacts.filter(matches).distinct().order_by("id").prefetch_related("phones")
    ):
        for suffix in wanted - oldest.keys():
            if any(p.digits.endswith(suffix) for p in contact.phones.all()):
                oldest[suffix] = contact
    return {phone: oldest[s] for phone, s in suffixes.items() if s in oldest}


def contact_by_phone_suffix(*, account: Account, phone: str, suffix_len: int) -> Contact | None:
    """``contacts_by_phone_suffixes`` for one phone."""
    return contacts_by_phone_suffixes(account=account, phones=[phone], suffix_len=suffix_len).get(
        phone
    )
