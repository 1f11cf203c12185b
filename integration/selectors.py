"""Reads for the tenant core."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from integration.access_keys import access_key_hash, access_key_is_well_formed
from integration.models import CallSettings, ManagerMapping, Organization
from integration.phones import phone_national
from integration.tenancy import organization_scope

if TYPE_CHECKING:
    from crm.models import AmoUser
    from pbx.models import Abonent


def organization_by_access_key(*, key: str) -> Organization | None:
    """The organization a typed access key opens, or None. Lookup is by hash only."""
    if not access_key_is_well_formed(key):
        return None
    return Organization.objects.filter(access_key_hash=access_key_hash(key)).first()


def call_settings_for(*, organization: Organization) -> CallSettings:
    with organization_scope(organization):
        settings, _ = CallSettings.objects.get_or_create(organization=organization)
    return settings


# --- «Менеджеры»: Beeline abonents ↔ amoCRM users ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagerRow:
    """One line of «Менеджеры»: an abonent, its saved mapping and the users involved."""

    abonent: Abonent
    mapping: ManagerMapping | None
    amo_user: AmoUser | None  # the mapped user, if still among amoCRM's users
    suggestion: AmoUser | None  # the user whose profile phone is this abonent's number

    @property
    def enabled(self) -> bool:
        return self.mapping.enabled if self.mapping else True

    @property
    def amo_user_id(self) -> int | None:
        """The saved choice; for a number never saved, the phone-based suggestion."""
        if self.mapping is not None:
            return self.mapping.amo_user_id
        return self.suggestion.amo_id if self.suggestion else None


def manager_suggestions(
    *, abonents: Iterable[Abonent], amo_users: Iterable[AmoUser]
) -> dict[int, AmoUser]:
    """Abonent pk → the amoCRM user whose profile phone equals the abonent's number.

    A phone shared by several amoCRM users suggests nobody: guessing would map the wrong person.
    """
    by_phone: dict[str, list[AmoUser]] = defaultdict(list)
    for user in amo_users:
        if user.phone_national:
            by_phone[user.phone_national].append(user)
    suggestions = {}
    for abonent in abonents:
        national = phone_national(abonent.phone)
        candidates = by_phone.get(national or "", [])
        if len(candidates) == 1:
            suggestions[abonent.pk] = candidates[0]
    return suggestions


def mappings_for_abonents(
    *, organization: Organization, abonent_ids: Iterable[int]
) -> dict[int, ManagerMapping]:
    """Abonent pk → its mapping (one query)."""
    with organization_scope(organization):
        return {
            mapping.abonent_id: mapping
            for mapping in ManagerMapping.objects.filter(
                organization=organization, abonent_id__in=list(abonent_ids)
            )
        }


def mapping_for_amo_user(*, organization: Organization, amo_user_id: int) -> ManagerMapping | None:
    """The enabled mapping of an amoCRM user, with its abonent (click-to-call, the widget)."""
    with organization_scope(organization):
        return (
            ManagerMapping.objects.select_related("abonent")
            .filter(organization=organization, amo_user_id=amo_user_id, enabled=True)
            .first()
        )


def manager_rows_for(
    *, organization: Organization, amo_users: list[AmoUser] | None = None
) -> list[ManagerRow]:
    """Every current abonent with its mapping, mapped user and suggestion: three queries at most,
    whatever the number of abonents (two when the caller passes the amoCRM users it already has).
    """
    from crm.selectors import amo_users_for
    from pbx.selectors import abonents_for

    abonents = list(abonents_for(organization=organization))
    users = list(amo_users_for(organization=organization)) if amo_users is None else amo_users
    mappings = mappings_for_abonents(
        organization=organization, abonent_ids=[abonent.pk for abonent in abonents]
    )
    users_by_id = {user.amo_id: user for user in users}
    suggestions = manager_suggestions(abonents=abonents, amo_users=users)
    rows = []
    for abonent in abonents:
        mapping = mappings.get(abonent.pk)
        mapped_id = mapping.amo_user_id if mapping else None
        rows.append(
            ManagerRow(
                abonent=abonent,
                mapping=mapping,
                amo_user=users_by_id.get(mapped_id) if mapped_id is not None else None,
                suggestion=suggestions.get(abonent.pk),
            )
        )
    return rows
