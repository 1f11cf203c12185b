"""The product's own amoCRM client (crm/client.py) against the emulator, where its answer
depends on amoCRM applying a filter or a search rule.

The second test of each pair runs the same product code against an emulator that ignores
filters (``ListQuery.apply_filters`` made a no-op) and shows the product's expectation break:
an emulator that silently dropped a filter would have let a wrong product pass.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from crm.client import AmoClient, StaticToken
from sandbox.amocrm.models import Account
from sandbox.amocrm.query import ListQuery
from sandbox.amocrm.services import contact_create, task_create, tokens_issue

MISSED_CALL_TASK = "Перезвонить: пропущенный +79161234567"
DUE = 1_900_000_000


@pytest.fixture
def amo(amocrm_account: Account) -> AmoClient:
    token = tokens_issue(account=amocrm_account)[0]
    return AmoClient(
        base_url=settings.AMOCRM_API_BASE_URL,
        account_key=f"sandbox-test:{amocrm_account.pk}",
        tokens=StaticToken(token),
        sleep=lambda _seconds: None,
    )


@pytest.fixture
def two_contacts(amocrm_account: Account) -> tuple[Any, Any]:
    """Ivan has no task yet; Olga already has the very task the pipeline would post for Ivan
    (same text and due time: two missed calls from a shared office number, say)."""
    manager = amocrm_account.users.filter(is_admin=False).first()
    ivan = contact_create(account=amocrm_account, name="Иван", responsible=manager)
    olga = contact_create(account=amocrm_account, name="Ольга", responsible=manager)
    task_create(
        account=amocrm_account,
        text=MISSED_CALL_TASK,
        complete_till=DUE,
        responsible_user_id=manager.pk,
        entity_type="contacts",
        entity_id=olga.pk,
    )
    return ivan, olga


def already_posted(amo: AmoClient, contact_id: int) -> bool:
    """Delivery's "was this task already created?" check (integration/delivery/steps.py): a task
    on the contact with the same text and due time means the earlier POST went through."""
    return any(
        t.text == MISSED_CALL_TASK and t.complete_till == DUE
        for t in amo.tasks_for_contact(contact_id)
    )


def ignore_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_op(self: ListQuery, rows: Any, filters: Any) -> Any:
        self.take("filter")  # read and ignored, as an emulator without filters would
        return rows

    monkeypatch.setattr(ListQuery, "apply_filters", no_op)


def test_missed_call_task_check_sees_only_the_contacts_own_tasks(amo, two_contacts):
    ivan, olga = two_contacts
    assert already_posted(amo, olga.pk)
    assert not already_posted(amo, ivan.pk)  # so the pipeline creates Ivan's task


def test_without_the_entity_filter_the_check_would_skip_ivans_task(amo, two_contacts, monkeypatch):
    ivan, _olga = two_contacts
    ignore_filters(monkeypatch)
    # Olga's task now comes back for Ivan: the product would mark Ivan's task as done and
    # never create it. The test above exists to catch exactly this.
    assert already_posted(amo, ivan.pk)


def test_contact_lookup_confirms_ten_digits_of_a_seven_digit_search(amo, amocrm_account):
    """amoCRM's query matches the last 7 digits; the product keeps only real matches."""
    manager = amocrm_account.users.filter(is_admin=False).first()
    typed_with_8 = contact_create(
        account=amocrm_account,
        name="Иван",
        responsible=manager,
        phones=[("8 (916) 123-45-67", "WORK")],
    )
    contact_create(
        account=amocrm_account,
        name="Однофамилец по 7 цифрам",
        responsible=manager,
        phones=[("+7 (999) 123-45-67", "WORK")],
    )

    found = amo.contacts_find_by_phone("9161234567")

    assert [c.id for c in found] == [typed_with_8.pk]
