from __future__ import annotations

import requests
from django.conf import settings

from sandbox.amocrm.models import Account
from sandbox.amocrm.services import contact_create, faults_set, tokens_issue

API = settings.AMOCRM_API_BASE_URL


def phone_contact(account: Account, name: str, phone: str, **kwargs):
    return contact_create(
        account=account,
        name=name,
        responsible=account.users.get(is_admin=True),
        phones=[(phone, "WORK")],
        **kwargs,
    )


# --- account and users ----------------------------------------------------------------------


def test_account_describes_the_account_and_the_token_owner(api, amocrm_account, admin):
    response = api("GET", "/api/v4/account")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["id"] == amocrm_account.pk
    assert amocrm_account.pk != admin.pk  # distinct id ranges: mixing them up cannot pass
    assert body["subdomain"] == "acme"
    assert body["current_user_id"] == admin.pk
    assert body["is_unsorted_on"] is True


def test_users_with_phone_number_shows_the_profile_phone_as_typed(api, amocrm_account):
    body = api("GET", "/api/v4/users?with=phone_number").json()

    users = {u["name"]: u for u in body["_embedded"]["users"]}
    assert users["Мария Менеджер"]["phone_number"] == "9161230001"
    assert users["Пётр Продажник"]["phone_number"] == "8 (916) 123-00-02"
    assert users["Админ Админов"]["phone_number"] is None
    assert users["Админ Админов"]["rights"]["is_admin"] is True
    assert "phone_number" not in api("GET", "/api/v4/users").json()["_embedded"]["users"][0]


def test_users_are_forbidden_to_a_non_admin_token(api, amocrm_account, manager):
    token = tokens_issue(account=amocrm_account, user=manager)[0]

    response = api("GET", "/api/v4/users", token=token)

    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 403


def test_users_paginate_with_links_next(api, amocrm_account):
    first = api("GET", "/api/v4/users?limit=2&with=phone_number").json()
    assert len(first["_embedded"]["users"]) == 2
    next_href = first["_links"]["next"]["href"]

    assert next_href.startswith(API + "/api/v4/users?")
    assert requests.get(next_href, timeout=5).status_code == 401  # the link carries no token

    second = api("GET", next_href.removeprefix(API))
    body = second.json()
    assert [u["id"] for u in body["_embedded"]["users"]] == [
        amocrm_account.users.order_by("id").last().pk
    ]
    assert "next" not in body["_links"]
    assert "phone_number" in body["_embedded"]["users"][0]


# --- contacts -------------------------------------------------------------------------------


def test_contact_create_with_phone_and_tags(api, amocrm_account, manager):
    response = api(
        "POST",
        "/api/v4/contacts",
        json=[
            {
                "name": "+7 916 555-44-33",
                "responsible_user_id": manager.pk,
                "custom_fields_values": [
                    {
                        "field_code": "PHONE",
                        "values": [{"value": "+79165554433", "enum_code": "WORK"}],
                    }
                ],
                "_embedded": {"tags": [{"name": "BeelineConnector"}, {"name": "Горячая линия"}]},
                "request_id": "call-1",
            }
        ],
    )

    assert response.status_code == 200
    created = response.json()["_embedded"]["contacts"]
    assert [c["request_id"] for c in created] == ["call-1"]
    contact = amocrm_account.contacts.get()
    assert contact.pk == created[0]["id"]
    assert contact.responsible_user == manager
    assert sorted(t.name for t in contact.tags.all()) == ["BeelineConnector", "Горячая линия"]
    shown = api("GET", f"/api/v4/contacts/{contact.pk}").json()
    phone_field = shown["custom_fields_values"][0]
    assert phone_field["field_code"] == "PHONE"
    assert phone_field["field_id"] == amocrm_account.phone_field_id
    assert phone_field["values"][0]["value"] == "+79165554433"
    assert {t["name"] for t in shown["_embedded"]["tags"]} == {"BeelineConnector", "Горячая линия"}


def test_contact_create_validation_errors_are_per_request_id(api, amocrm_account):
    response = api(
        "POST",
        "/api/v4/contacts",
        json=[
            {"name": "ok", "request_id": "a"},
            {
                "name": "bad",
                "request_id": "b",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "1", "enum_code": "PAGER"}]}
                ],
            },
        ],
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.json()["validation-errors"]
    assert [e["request_id"] for e in errors] == ["b"]
    assert errors[0]["errors"][0]["path"] == "custom_fields_values.0.values.0.enum_code"
    assert not amocrm_account.contacts.exists()  # nothing of a rejected batch is created


def test_contact_create_needs_an_array(api, amocrm_account):
    response = api("POST", "/api/v4/contacts", json={"name": "x"})
    assert response.status_code == 400
    assert response.json()["validation-errors"]
    assert api("POST", "/api/v4/contacts", data=b"{nope").status_code == 400


def test_search_by_ten_digits_finds_any_formatting(api, amocrm_account):
    typed = phone_contact(amocrm_account, "Иван", "+7 (916) 123-45-67")
    phone_contact(amocrm_account, "Другой", "+7 (916) 765-43-21")

    response = api("GET", "/api/v4/contacts?query=9161234567&with=leads")

    assert response.status_code == 200
    found = response.json()["_embedded"]["contacts"]
    assert [c["id"] for c in found] == [typed.pk]
    assert found[0]["_embedded"]["leads"] == []


def test_phone_search_matches_on_the_last_seven_digits(api, amocrm_account, no_rate_limit):
    """amoCRM compares the last 7 digits (docs/amocrm-api.md §6b): every written form of the number
    finds the contact, and so does another number sharing those 7 digits."""
    plus7 = phone_contact(amocrm_account, "Иван", "+79161234567")
    eight = phone_contact(amocrm_account, "Ольга", "8 (916) 765-43-21")
    other_code = phone_contact(amocrm_account, "Тёзка", "+7 (999) 123-45-67")

    def found(query: str) -> list[int]:
        response = api("GET", "/api/v4/contacts", params={"query": query})
        if response.status_code == 204:
            return []
        return [c["id"] for c in response.json()["_embedded"]["contacts"]]

    for query in ("89161234567", "+79161234567", "79161234567", "9161234567", "123-45-67"):
        assert found(query) == [plus7.pk, other_code.pk], query
    assert found("+79167654321") == [eight.pk]
    assert found("9167654321") == [eight.pk]
    assert found("9160000000") == []


def test_empty_search_is_204_without_body(api, amocrm_account):
    response = api("GET", "/api/v4/contacts?query=9990000000")

    assert response.status_code == 204
    assert response.content == b""


def test_limit_over_250_is_400(api, amocrm_account):
    response = api("GET", "/api/v4/contacts?limit=251")

    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "limit"
    assert api("GET", "/api/v4/contacts?limit=250").status_code == 204


def test_contacts_paginate_and_next_is_followable(api, amocrm_account):
    ids = [phone_contact(amocrm_account, f"C{i}", f"+7916000000{i}").pk for i in range(3)]

    first = api("GET", "/api/v4/contacts?query=916000&limit=2").json()
    assert [c["id"] for c in first["_embedded"]["contacts"]] == ids[:2]
    assert first["_page"] == 1

    second = api("GET", first["_links"]["next"]["href"].removeprefix(API)).json()
    assert [c["id"] for c in second["_embedded"]["contacts"]] == ids[2:]
    assert "next" not in second["_links"]
    assert api("GET", "/api/v4/contacts?query=916000&limit=2&page=3").status_code == 204


def test_contacts_of_another_account_are_invisible(api, amocrm_account):
    other = Account.objects.create(subdomain="other", name="Other")
    other.users.create(name="A", email="a@o.example", is_admin=True)
    phone_contact(other, "Чужой", "+79161234567")
    assert api("GET", "/api/v4/contacts?query=9161234567").status_code == 204


# --- calls ----------------------------------------------------------------------------------


def call_item(phone: str, **extra):
    return {
        "direction": "inbound",
        "duration": 42,
        "source": "Звонок Beeline",
        "phone": phone,
        "uniq": "track-1",
        "link": "https://beetel.test/recordings/abc",
        "call_status": 4,
        "call_responsible": 123,
        **extra,
    }


def test_call_attaches_to_the_contact_by_last_ten_digits(api, amocrm_account, manager):
    contact = phone_contact(amocrm_account, "Иван", "8 (916) 123-45-67")

    response = api(
        "POST",
        "/api/v4/calls",
        json=[call_item("+79161234567", responsible_user_id=manager.pk, request_id="r1")],
    )

    assert response.status_code == 200
    body = response.json()
    assert body["_total_items"] == 1
    call = body["_embedded"]["calls"][0]
    assert call["entity_id"] == contact.pk
    assert call["entity_type"] == "contacts"
    assert call["request_id"] == "r1"
    assert call["account_id"] == amocrm_account.pk
    stored = amocrm_account.calls.get()
    assert stored.contact == contact
    assert stored.duration == 42
    assert stored.responsible_user_id == manager.pk


def test_call_with_unknown_phone_is_entity_not_found(api, amocrm_account):
    response = api("POST", "/api/v4/calls", json=[call_item("+79160000000")])

    assert response.status_code == 400
    body = response.json()
    assert body["_total_items"] == 0
    assert body["errors"][0]["title"] == "Entity not found"
    assert body["errors"][0]["request_id"] == "0"
    assert not amocrm_account.calls.exists()


def test_call_batch_reports_failures_per_item(api, amocrm_account):
    phone_contact(amocrm_account, "Иван", "+79161234567")

    response = api(
        "POST",
        "/api/v4/calls",
        json=[
            call_item("9161234567", request_id="known"),
            call_item("9160000000", request_id="unknown"),
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert [c["request_id"] for c in body["_embedded"]["calls"]] == ["known"]
    assert [e["request_id"] for e in body["errors"]] == ["unknown"]
    assert amocrm_account.calls.count() == 1


def test_a_batch_of_calls_goes_to_the_oldest_contact_of_each_number(api, amocrm_account):
    oldest = phone_contact(amocrm_account, "Иван", "+79161234567")
    phone_contact(amocrm_account, "Иван 2", "8 916 123-45-67")  # the same number, newer
    other = phone_contact(amocrm_account, "Пётр", "+79037654321")

    body = api(
        "POST",
        "/api/v4/calls",
        json=[
            call_item("9161234567", request_id="a"),
            call_item("+7 903 765-43-21", request_id="b"),
            call_item("89161234567", request_id="c"),
        ],
    ).json()

    calls = body["_embedded"]["calls"]
    assert [(c["request_id"], c["entity_id"]) for c in calls] == [
        ("a", oldest.pk),
        ("b", other.pk),
        ("c", oldest.pk),
    ]
    # A logged call is its call note: the same id, on the same card.
    notes = {n.pk: n for n in amocrm_account.notes.all()}
    assert [(notes[c["id"]].entity_id, notes[c["id"]].params["phone"]) for c in calls] == [
        (oldest.pk, "9161234567"),
        (other.pk, "+7 903 765-43-21"),
        (oldest.pk, "89161234567"),
    ]


def test_call_uniq_is_not_deduplicated(api, amocrm_account):
    phone_contact(amocrm_account, "Иван", "+79161234567")
    for _ in range(2):
        assert api("POST", "/api/v4/calls", json=[call_item("9161234567")]).status_code == 200
    assert amocrm_account.calls.filter(uniq="track-1").count() == 2


def test_call_validation(api, amocrm_account):
    phone_contact(amocrm_account, "Иван", "+79161234567")
    nulls = api("POST", "/api/v4/calls", json=[call_item("9161234567", call_status=None)])
    assert nulls.status_code == 400
    assert nulls.json()["validation-errors"][0]["errors"][0]["code"] == "NotNullable"
    missing = {k: v for k, v in call_item("9161234567").items() if k != "direction"}
    assert api("POST", "/api/v4/calls", json=[missing]).status_code == 400
    too_many = [call_item("9161234567")] * 51
    assert api("POST", "/api/v4/calls", json=too_many).status_code == 400
    assert api("GET", "/api/v4/calls").status_code == 405
    assert not amocrm_account.calls.exists()


# --- tasks, notifications, unsorted ---------------------------------------------------------


def test_task_create(api, amocrm_account, manager):
    contact = phone_contact(amocrm_account, "Иван", "+79161234567")

    response = api(
        "POST",
        "/api/v4/tasks",
        json=[
            {
                "task_type_id": 1,
                "text": "Перезвонить: пропущенный +79161234567",
                "complete_till": 1_900_000_000,
                "entity_id": contact.pk,
                "entity_type": "contacts",
                "responsible_user_id": manager.pk,
                "request_id": "t1",
            }
        ],
    )

    assert response.status_code == 200
    created = response.json()["_embedded"]["tasks"]
    task = amocrm_account.tasks.get()
    assert created == [
        {
            "id": task.pk,
            "request_id": "t1",
            "_links": {"self": {"href": f"{API}/api/v4/tasks/{task.pk}"}},
        }
    ]
    assert task.responsible_user_id == manager.pk
    assert task.entity_id == contact.pk


def test_task_validation(api, amocrm_account):
    response = api(
        "POST",
        "/api/v4/tasks",
        json=[{"complete_till": 1, "entity_type": "contacts", "entity_id": 1}],
    )
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["validation-errors"][0]["errors"]}
    assert {"text", "entity_id"} <= paths
    assert not amocrm_account.tasks.exists()


def test_phone_call_event_matches_last_eight_digits(api, amocrm_account, manager):
    contact = phone_contact(amocrm_account, "Иван", "8 916 123-45-67")

    response = api(
        "POST",
        "/api/v2/events",
        json={
            "add": [{"type": "phone_call", "phone_number": "+79161234567", "users": [manager.pk]}]
        },
    )

    assert response.status_code == 200
    event = amocrm_account.events.get()
    assert event.contact == contact
    assert event.users == [manager.pk]


def test_phone_call_event_validation(api, amocrm_account):
    bad_type = {"add": [{"type": "sms", "phone_number": "+79161234567"}]}
    assert api("POST", "/api/v2/events", json=bad_type).status_code == 400
    unknown_user = {"add": [{"type": "phone_call", "phone_number": "+7916", "users": [1]}]}
    assert api("POST", "/api/v2/events", json=unknown_user).status_code == 400
    assert not amocrm_account.events.exists()


def sip_item(**metadata):
    return {
        "source_uid": "beetel-track-1",
        "source_name": "Звонок Beeline",
        "created_at": 1_700_000_000,
        "metadata": {
            "uniq": "track-1",
            "duration": 0,
            "service_code": "beetel",
            "link": "",
            "phone": "9161110001",
            "called_at": 1_700_000_000,
            "from": "+79160000000",
            **metadata,
        },
        "_embedded": {
            "leads": [{"name": "Пропущенный звонок"}],
            "contacts": [{"name": "+79160000000"}],
        },
        "request_id": "u1",
    }


def test_unsorted_sip(api, amocrm_account):
    response = api("POST", "/api/v4/leads/unsorted/sip", json=[sip_item()])

    assert response.status_code == 200
    created = response.json()["_embedded"]["unsorted"][0]
    entry = amocrm_account.unsorted.get()
    assert created["uid"] == entry.uid
    assert created["request_id"] == "u1"
    assert created["_embedded"]["leads"][0]["id"]
    assert entry.metadata["from"] == "+79160000000"


def test_unsorted_sip_validation(api, amocrm_account):
    response = api("POST", "/api/v4/leads/unsorted/sip", json=[sip_item(**{"from": ""})])
    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "metadata.from"
    assert not amocrm_account.unsorted.exists()


# --- errors ---------------------------------------------------------------------------------


def test_unknown_route_is_404_problem(api, amocrm_account):
    response = api("GET", "/api/v4/nonexistent")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "title": "Not Found",
        "type": "https://httpstatus.es/404",
        "status": 404,
        "detail": "Not Found",
    }
    assert api("POST", "/api/v4/nonexistent", json=[]).status_code == 404


def test_unpaid_account_is_402(api, amocrm_account):
    faults_set(account=amocrm_account, unpaid=True)

    response = api("GET", "/api/v4/account")

    assert response.status_code == 402
    assert response.json()["status"] == 402
    faults_set(account=amocrm_account)
    assert api("GET", "/api/v4/account").status_code == 200
