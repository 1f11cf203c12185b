"""crm's one contact service: index → search → batched create, against the amoCRM emulator."""

from __future__ import annotations

import pytest

from core.models import Organization
from core.phones import phone_parse
from core.tenancy import organization_scope
from core.testing import in_parallel
from crm.contacts import ContactRequest, ContactResult, contact_index_forget, contacts_resolve
from crm.models import ContactIndex
from crm.testing import amo_account_make, install
from sandbox.amocrm.services import contact_create

GHOST = 999_999_999  # an amoCRM user the account does not have: amoCRM refuses the contact


def request(raw: str, **kwargs) -> ContactRequest:
    phone = phone_parse(raw)
    assert phone is not None
    return ContactRequest(phone=phone, **kwargs)


def in_amocrm(installed, phone: str, *, responsible, name: str = "Клиент", kind: str = "WORK"):
    """A contact somebody made in amoCRM."""
    return contact_create(
        account=installed.account, name=name, responsible=responsible, phones=[(phone, kind)]
    )


def searches(account):
    return account.api_requests.filter(path__startswith="/sandbox/amocrm/api/v4/contacts?")


def creates(account):
    return account.api_requests.filter(method="POST", path="/sandbox/amocrm/api/v4/contacts")


def indexed(organization) -> dict[str, int]:
    with organization_scope(organization):
        return dict(
            ContactIndex.objects.filter(organization=organization).values_list(
                "phone_national", "contact_id"
            )
        )


def test_contact_found_by_any_phone_format_and_indexed(installed):
    manager = installed.managers[0]
    existing = in_amocrm(installed, "8 (916) 555-44-33", responsible=manager, kind="MOB")
    # a contact whose other field merely contains the digits must not match
    in_amocrm(installed, "+7 495 000-00-00", responsible=manager, name="Заметка 9165554433")
    org = installed.organization

    (result,) = contacts_resolve(organization=org, requests=[request("+79165554433", create=True)])

    assert result == ContactResult(contact_id=existing.pk, owner_id=manager.pk)
    assert indexed(org) == {"9165554433": existing.pk}
    assert installed.account.contacts.count() == 2


def test_unknown_number_creates_a_tagged_contact_or_nothing(installed):
    org = installed.organization
    manager = installed.managers[0]

    assert contacts_resolve(organization=org, requests=[request("9160000001")]) == [ContactResult()]
    (created,) = contacts_resolve(
        organization=org,
        requests=[
            request(
                "8 916 000-00-02",
                create=True,
                tags=("BeelineConnector", "Отдел продаж"),
                responsible_user_id=manager.pk,
            )
        ],
    )

    assert created.created and created.contact_id is not None and not created.error
    contact = installed.account.contacts.get(pk=created.contact_id)
    assert contact.responsible_user_id == manager.pk
    assert sorted(t.name for t in contact.tags.all()) == ["BeelineConnector", "Отдел продаж"]
    values = [v["value"] for f in contact.custom_fields_values for v in f["values"]]
    assert values == ["+79160000002"]
    # next time the index answers without asking amoCRM
    before = installed.account.api_requests.count()
    again = contacts_resolve(organization=org, requests=[request("+7 916 000 00 02", create=True)])
    assert again == [ContactResult(contact_id=created.contact_id)]
    assert installed.account.api_requests.count() == before
    assert installed.account.contacts.count() == 1


def test_a_batch_searches_each_new_number_once_and_creates_in_one_request(installed):
    org = installed.organization
    anna, boris = installed.managers[:2]
    known = in_amocrm(installed, "+79160000010", responsible=anna)
    requests = [
        request("+79160000010", create=True),  # known to amoCRM
        request("+79160000011", create=True, responsible_user_id=boris.pk),  # new
        request("8 916 000-00-11", create=True, responsible_user_id=anna.pk),  # new, again
        request("+79160000012", create=False),  # new, may not be created
        request("+79160000013", create=True, tags=("BeelineConnector",)),  # new
    ]

    results = contacts_resolve(organization=org, requests=requests)

    assert searches(installed.account).count() == 4  # one per distinct number
    assert creates(installed.account).count() == 1  # one batched create
    assert results[0] == ContactResult(contact_id=known.pk, owner_id=anna.pk)
    first, second = results[1], results[2]
    assert first.created and not second.created  # one contact, created for the first request
    assert first.contact_id == second.contact_id
    assert installed.account.contacts.get(pk=first.contact_id).responsible_user_id == boris.pk
    assert results[3] == ContactResult()
    assert results[4].created
    assert installed.account.contacts.count() == 3
    assert set(indexed(org)) == {"9160000010", "9160000011", "9160000013"}


def test_owner_wanted_asks_amocrm_even_for_an_indexed_number(installed):
    org = installed.organization
    boris = installed.managers[1]
    contact = in_amocrm(installed, "+79160000020", responsible=boris)
    contacts_resolve(organization=org, requests=[request("+79160000020")])  # now indexed
    before = searches(installed.account).count()

    plain, with_owner = contacts_resolve(
        organization=org,
        requests=[request("+79160000020"), request("+79160000020", owner_wanted=True)],
    )

    assert searches(installed.account).count() == before + 1
    assert with_owner == ContactResult(contact_id=contact.pk, owner_id=boris.pk)
    assert plain.contact_id == contact.pk


def test_a_refused_contact_does_not_fail_its_neighbours(installed):
    org = installed.organization
    requests = [
        request("+79160000031", create=True),
        request("+79160000032", create=True, responsible_user_id=GHOST),
        request("+79160000033", create=True),
    ]

    good, bad, also_good = contacts_resolve(organization=org, requests=requests)

    assert good.created and also_good.created
    assert bad.contact_id is None and "User not found" in bad.error
    assert installed.account.contacts.count() == 2
    assert set(indexed(org)) == {"9160000031", "9160000033"}


def test_the_index_is_the_organizations_own(installed, outsider):
    with organization_scope(outsider):
        ContactIndex.objects.create(
            organization=outsider, phone_national="9160000040", contact_id=123
        )

    results = contacts_resolve(
        organization=installed.organization, requests=[request("+79160000040")]
    )

    assert results == [ContactResult()]  # asked amoCRM, which has no such contact
    assert searches(installed.account).count() == 1


def test_a_forgotten_contact_is_looked_up_again(installed):
    org = installed.organization
    (created,) = contacts_resolve(organization=org, requests=[request("+79160000050", create=True)])
    assert created.contact_id is not None

    assert contact_index_forget(organization=org, contact_id=created.contact_id) == 1

    assert indexed(org) == {}
    (again,) = contacts_resolve(organization=org, requests=[request("+79160000050")])
    assert (again.contact_id, again.created) == (created.contact_id, False)  # found by search
    assert indexed(org) == {"9160000050": created.contact_id}


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_calls_from_a_new_number_make_one_contact(sandbox_http):
    account = amo_account_make()
    org = install(account)

    def resolve() -> ContactResult:
        (result,) = contacts_resolve(
            organization=Organization.objects.get(pk=org.pk),
            requests=[request("+79167770001", create=True, tags=("BeelineConnector",))],
        )
        return result

    results = in_parallel(resolve, threads=4)

    assert account.contacts.count() == 1
    assert len({r.contact_id for r in results}) == 1
    assert sorted(r.created for r in results) == [False, False, False, True]
