from __future__ import annotations

import pytest
from django.utils import timezone

from core.tenancy import organization_scope
from crm.models import AmoUser
from integration.models import ManagerMapping
from integration.selectors import (
    manager_rows_for,
    manager_suggestions,
    mapping_for_amo_user,
    mappings_for_abonents,
)
from integration.services import (
    ManagerMappingConflict,
    ManagerMappingInput,
    manager_mappings_save,
)
from pbx.models import Abonent


def _abonents(org, *phones: str) -> list[Abonent]:
    with organization_scope(org):
        return [
            Abonent.objects.create(organization=org, user_id=f"{p}@ip.beeline.ru", phone=p)
            for p in phones
        ]


def _users(org, *specs: tuple[int, str, str]) -> list[AmoUser]:
    with organization_scope(org):
        return [
            AmoUser.objects.create(
                organization=org,
                amo_id=amo_id,
                name=name,
                phone_national=phone,
                fetched_at=timezone.now(),
            )
            for amo_id, name, phone in specs
        ]


def test_save_then_read_back(org, outsider):
    first, second = _abonents(org, "9160000001", "9160000002")
    manager_mappings_save(
        organization=org,
        rows=[ManagerMappingInput(first.pk, True, 11), ManagerMappingInput(second.pk, False, None)],
    )
    mapping = mapping_for_amo_user(organization=org, amo_user_id=11)
    assert mapping is not None and mapping.abonent == first
    assert mapping_for_amo_user(organization=outsider, amo_user_id=11) is None
    found = mappings_for_abonents(organization=org, abonent_ids=[first.pk, second.pk])
    assert found[second.pk].enabled is False and found[second.pk].amo_user_id is None


def test_disabled_number_is_not_used_for_click_to_call(org):
    (first,) = _abonents(org, "9160000001")
    manager_mappings_save(organization=org, rows=[ManagerMappingInput(first.pk, False, 11)])
    assert mapping_for_amo_user(organization=org, amo_user_id=11) is None


def test_swapping_two_managers_in_one_save_works(org):
    first, second = _abonents(org, "9160000001", "9160000002")
    manager_mappings_save(
        organization=org,
        rows=[ManagerMappingInput(first.pk, True, 11), ManagerMappingInput(second.pk, True, 22)],
    )
    manager_mappings_save(
        organization=org,
        rows=[ManagerMappingInput(first.pk, True, 22), ManagerMappingInput(second.pk, True, 11)],
    )
    assert mapping_for_amo_user(organization=org, amo_user_id=11).abonent == second
    assert mapping_for_amo_user(organization=org, amo_user_id=22).abonent == first


def test_one_user_on_two_numbers_is_refused_and_nothing_written(org):
    first, second = _abonents(org, "9160000001", "9160000002")
    with pytest.raises(ManagerMappingConflict) as exc:
        manager_mappings_save(
            organization=org,
            rows=[
                ManagerMappingInput(first.pk, True, 11),
                ManagerMappingInput(second.pk, True, 11),
            ],
        )
    assert exc.value.amo_user_ids == {11}
    with organization_scope(org):
        assert not ManagerMapping.objects.exists()


def test_user_still_on_a_number_not_submitted_is_a_conflict(org):
    first, second = _abonents(org, "9160000001", "9160000002")
    manager_mappings_save(organization=org, rows=[ManagerMappingInput(first.pk, True, 11)])
    with pytest.raises(ManagerMappingConflict) as exc:
        manager_mappings_save(organization=org, rows=[ManagerMappingInput(second.pk, True, 11)])
    assert exc.value.amo_user_ids == {11}
    assert mapping_for_amo_user(organization=org, amo_user_id=11).abonent == first


def test_another_organizations_abonent_is_ignored(org, outsider):
    (foreign,) = _abonents(outsider, "9160000009")
    written = manager_mappings_save(
        organization=org, rows=[ManagerMappingInput(foreign.pk, True, 11)]
    )
    assert written == 0
    with organization_scope(outsider):
        assert not ManagerMapping.objects.exists()


def test_suggestions_match_profile_phones_and_skip_ambiguous_ones(org):
    first, second, third = _abonents(org, "9160000001", "9160000002", "9160000003")
    ivan, _maria, _twin1, _twin2 = _users(
        org,
        (11, "Иван", "9160000001"),
        (22, "Мария", ""),
        (33, "Близнец 1", "9160000002"),
        (44, "Близнец 2", "9160000002"),
    )
    with organization_scope(org):
        users = list(AmoUser.objects.all())
    suggestions = manager_suggestions(abonents=[first, second, third], amo_users=users)
    assert suggestions == {first.pk: ivan}


def test_rows_combine_abonent_mapping_user_and_suggestion(org, outsider):
    first, second = _abonents(org, "9160000001", "9160000002")
    _abonents(outsider, "9160000001")
    _users(org, (11, "Иван", "9160000001"), (22, "Мария", "9160000005"))
    manager_mappings_save(organization=org, rows=[ManagerMappingInput(second.pk, True, 22)])

    rows = {row.abonent.pk: row for row in manager_rows_for(organization=org)}

    assert set(rows) == {first.pk, second.pk}
    assert rows[first.pk].mapping is None
    assert rows[first.pk].amo_user_id == 11  # suggested from the profile phone
    assert rows[first.pk].enabled is True
    assert rows[second.pk].amo_user.name == "Мария"


def test_deleting_an_abonent_deletes_its_mapping(org):
    (first,) = _abonents(org, "9160000001")
    manager_mappings_save(organization=org, rows=[ManagerMappingInput(first.pk, True, 11)])
    with organization_scope(org):
        first.delete()
        assert not ManagerMapping.objects.exists()
