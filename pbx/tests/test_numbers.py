"""Naming the company's numbers: tidied, audited once per change, kept by the next sync, and
only ever the organization's own numbers."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from core.tenancy import organization_scope
from pbx.connection import pbx_sync
from pbx.models import PbxNumber
from pbx.numbers import pbx_number_rename
from pbx.selectors import numbers_for


def test_a_number_is_named_and_the_name_survives_a_sync(connected):
    number = numbers_for(organization=connected).get(phone="4950000001")
    renamed = pbx_number_rename(
        organization=connected, number_id=number.number_id, name="  Отдел \n продаж "
    )
    assert renamed.name == "Отдел продаж"
    pbx_number_rename(organization=connected, number_id=number.number_id, name="Отдел продаж")
    with organization_scope(connected):
        assert AuditEntry.objects.filter(kind="beeline.number_renamed").count() == 1
    pbx_sync(organization=connected)  # Beeline sends no names: the typed one stays
    assert numbers_for(organization=connected).get(phone="4950000001").name == "Отдел продаж"


def test_another_organizations_number_cannot_be_renamed(connected, outsider):
    number = numbers_for(organization=connected).get(phone="4950000001")
    with pytest.raises(PbxNumber.DoesNotExist):
        pbx_number_rename(organization=outsider, number_id=number.number_id, name="Чужой")
    assert numbers_for(organization=connected).get(phone="4950000001").name != "Чужой"
