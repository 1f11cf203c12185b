"""Click-to-call against the Beeline emulator: the number dialled as Beeline wants it, bad numbers,
Beeline's refusal and Beeline down each with their status, and another organization's abonent."""

from __future__ import annotations

import pytest

from core.tenancy import organization_scope
from pbx.click_to_call import click_to_call
from pbx.errors import ClickToCallError, ClickToCallRefused, InvalidPhoneNumber
from pbx.models import Abonent
from pbx.selectors import abonents_for
from sandbox.beeline.services import faults_set


def test_click_to_call(connected, beeline_pbx):
    abonent = abonents_for(organization=connected).get(phone="9161110001")
    result = click_to_call(organization=connected, abonent=abonent, phone="8 (916) 555-44-33")
    assert result.phone == "+79165554433"
    assert beeline_pbx.click_to_calls.get().phone_number == "9165554433"  # 10 digits (§4)

    with pytest.raises(InvalidPhoneNumber) as bad:
        click_to_call(organization=connected, abonent=abonent, phone="12")
    assert bad.value.status == 400

    with organization_scope(connected):
        ghost = Abonent.objects.create(organization=connected, user_id="nobody@ip.beeline.ru")
    with pytest.raises(ClickToCallRefused) as refused:
        click_to_call(organization=connected, abonent=ghost, phone="+79165554433")
    assert "не найден" in refused.value.message

    faults_set(pbx=beeline_pbx, down=True)
    with pytest.raises(ClickToCallError) as down:
        click_to_call(organization=connected, abonent=abonent, phone="+79165554433")
    assert down.value.status == 502


def test_click_to_call_refuses_another_organizations_abonent(connected, outsider, beeline_pbx):
    abonent = abonents_for(organization=connected).first()
    with pytest.raises(ClickToCallError):
        click_to_call(organization=outsider, abonent=abonent, phone="+79165554433")
