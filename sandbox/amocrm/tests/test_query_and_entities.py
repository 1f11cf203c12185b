"""Query strings read as amoCRM's PHP back end reads them, strict filters, and the entities
added for real clients: task read/update/completion, contact PATCH, notes, leads, pipelines."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings
from django.test import Client

from sandbox.amocrm import clock
from sandbox.amocrm.models import Account
from sandbox.amocrm.query import parse_php_query
from sandbox.amocrm.services import contact_create, lead_create, task_create, tokens_issue

API = settings.AMOCRM_API_BASE_URL


@pytest.fixture(autouse=True)
def _unlimited(no_rate_limit):
    """These tests send bursts of requests; the 7 req/s limit has its own tests."""


def contacts(account: Account, *phones: str):
    manager = account.users.filter(is_admin=False).first()
    return [
        contact_create(account=account, name=f"К{i}", responsible=manager, phones=[(p, "WORK")])
        for i, p in enumerate(phones)
    ]


def ids(response) -> list[int]:
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.content
    body = response.json()
    key = next(iter(body["_embedded"]))
    return [item["id"] for item in body["_embedded"][key]]


def problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.json()


# --- PHP query strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "filter[id][]=7&filter[id][]=9",
        "filter[id][0]=7&filter[id][1]=9",
        "filter[id][5]=7&filter[id][9]=9",
    ],
)
def test_bracket_forms_parse_alike(query):
    assert list(parse_php_query(query)["filter"]["id"].values()) == ["7", "9"]


def test_php_parsing_details():
    assert parse_php_query("filter[id]=7") == {"filter": {"id": "7"}}
    assert parse_php_query("a[]=1&a[5]=2&a[]=3") == {"a": {"0": "1", "5": "2", "6": "3"}}
    assert parse_php_query("x[from]=1&x[to]=2&x[to]=3") == {"x": {"from": "1", "to": "3"}}
    assert parse_php_query("s[0][p]=1&s[0][q]=2") == {"s": {"0": {"p": "1", "q": "2"}}}
    assert parse_php_query("with=leads&a.b=1") == {"with": "leads", "a_b": "1"}
    assert parse_php_query("bad[x=1") == {"bad[x": "1"}  # kept literally, then refused


def test_every_form_of_the_id_filter_filters(api, amocrm_account):
    a, b, c = contacts(amocrm_account, "+79160000001", "+79160000002", "+79160000003")
    for query in (
        f"filter[id][]={a.pk}&filter[id][]={c.pk}",
        f"filter[id][0]={a.pk}&filter[id][1]={c.pk}",
        f"filter[id][3]={a.pk}&filter[id][7]={c.pk}",
        f"filter%5Bid%5D%5B0%5D={a.pk}&filter%5Bid%5D%5B1%5D={c.pk}",
    ):
        assert ids(api("GET", f"/api/v4/contacts?{query}")) == [a.pk, c.pk], query
    assert ids(api("GET", f"/api/v4/contacts?filter[id]={b.pk}")) == [b.pk]


def test_next_link_repeats_the_query_as_sent(api, amocrm_account):
    made = contacts(amocrm_account, "+79160000001", "+79160000002", "+79160000003")
    query = "&".join(f"filter[id][{i}]={c.pk}" for i, c in enumerate(made))
    first = api("GET", f"/api/v4/contacts?{query}&limit=2").json()

    href = first["_links"]["next"]["href"]
    sent = parse_qsl(urlsplit(href).query)
    assert ("filter[id][2]", str(made[2].pk)) in sent and ("page", "2") in sent
    assert ids(api("GET", href.removeprefix(API))) == [made[2].pk]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("filter[custom_fields_values][1]=x", "filter[custom_fields_values]"),
        ("filter[id][]=abc", "filter[id]"),
        ("filter[id]=1,2", "filter[id]"),
        ("filter=1", "filter"),
        ("sort=id", "sort"),
        ("with=leads,companies", "with"),
        ("order[name]=asc", "order[name]"),
        ("order[id]=up", "order[id]"),
        ("filter[updated_at][since]=1", "filter[updated_at][since]"),
        ("query[]=1", "query"),
    ],
)
def test_what_is_not_implemented_is_refused_by_name(api, amocrm_account, query, named):
    contacts(amocrm_account, "+79160000001")
    body = problem(api("GET", f"/api/v4/contacts?{query}"))
    assert body["detail"].startswith(f"{named}:")
    assert body["validation-errors"][0]["errors"][0]["path"] == named.replace("[", ".").replace(
        "]", ""
    )


def test_query_parameters_on_writes_are_refused_too(api, amocrm_account):
    body = problem(api("POST", "/api/v4/tasks?debug=1", json=[{"text": "x"}]))
    assert body["detail"].startswith("debug:")
    assert not amocrm_account.tasks.exists()


def test_timestamp_ranges(api, amocrm_account, fake_clock):
    old = contacts(amocrm_account, "+79160000001")[0]
    fake_clock.advance(hours=1)
    new = contacts(amocrm_account, "+79160000002")[0]
    cut = int(new.created_at.timestamp())

    assert ids(api("GET", f"/api/v4/contacts?filter[created_at][from]={cut}")) == [new.pk]
    assert ids(api("GET", f"/api/v4/contacts?filter[created_at][to]={cut - 1}")) == [old.pk]
    assert ids(api("GET", f"/api/v4/contacts?filter[updated_at]={cut}")) == [new.pk]


def test_responsible_and_name_filters_and_order(api, amocrm_account, admin):
    a, b = contacts(amocrm_account, "+79160000001", "+79160000002")
    mine = contact_create(account=amocrm_account, name="Свой", responsible=admin)

    assert ids(api("GET", f"/api/v4/contacts?filter[responsible_user_id][]={admin.pk}")) == [
        mine.pk
    ]
    assert ids(api("GET", "/api/v4/contacts?filter[name]=К1")) == [b.pk]
    assert ids(api("GET", "/api/v4/contacts?order[id]=desc")) == [mine.pk, b.pk, a.pk]


# --- account, pipelines ---------------------------------------------------------------------


def test_account_datetime_settings_are_embedded(api, amocrm_account):
    body = api("GET", "/api/v4/account?with=datetime_settings,amojo_rights").json()
    assert "datetime_settings" not in body
    assert body["_embedded"]["datetime_settings"]["timezone"] == "Europe/Moscow"
    assert body["_embedded"]["amojo_rights"] == {"can_direct": False, "can_create_groups": False}
    assert problem(api("GET", "/api/v4/account?with=entity_names"))["detail"].startswith("with:")


def test_pipelines_have_their_statuses(api, amocrm_account):
    body = api("GET", "/api/v4/leads/pipelines").json()
    (pipeline,) = body["_embedded"]["pipelines"]
    statuses = pipeline["_embedded"]["statuses"]
    assert [s["id"] for s in statuses][-2:] == [142, 143]
    assert statuses[0]["name"] == "Неразобранное" and statuses[0]["type"] == 1
    assert all(s["pipeline_id"] == pipeline["id"] for s in statuses)

    amocrm_account.is_unsorted_on = False
    amocrm_account.save()
    again = api("GET", f"/api/v4/leads/pipelines/{pipeline['id']}").json()
    assert "Неразобранное" not in [s["name"] for s in again["_embedded"]["statuses"]]
    problem(api("GET", "/api/v4/leads/pipelines/1"), 404)


# --- tasks ----------------------------------------------------------------------------------


def _task(account: Account, contact_id: int, text: str = "Перезвонить"):
    manager = account.users.order_by("is_admin", "id").first()
    return task_create(
        account=account,
        text=text,
        complete_till=1_900_000_000,
        responsible_user_id=manager.pk,
        entity_type="contacts",
        entity_id=contact_id,
    )


def test_task_is_read_and_completed_with_a_result(api, amocrm_account, fake_clock):
    contact = contacts(amocrm_account, "+79160000001")[0]
    task = _task(amocrm_account, contact.pk)

    before = api("GET", f"/api/v4/tasks/{task.pk}").json()
    assert (before["is_completed"], before["result"], before["entity_id"]) == (
        False,
        [],
        contact.pk,
    )
    fake_clock.advance(minutes=5)
    response = api(
        "PATCH",
        f"/api/v4/tasks/{task.pk}",
        json={"is_completed": True, "result": {"text": "Дозвонились"}},
    )

    assert response.status_code == 200
    assert response.json() == {
        "id": task.pk,
        "updated_at": int(clock.now().timestamp()),
        "_links": {"self": {"href": f"{API}/api/v4/tasks/{task.pk}"}},
    }
    after = api("GET", f"/api/v4/tasks/{task.pk}").json()
    assert after["is_completed"] is True and after["result"] == {"text": "Дозвонились"}
    assert after["updated_at"] > after["created_at"]
    open_ = "filter[entity_type]=contacts&filter[entity_id][0]={}&filter[is_completed]=0"
    assert ids(api("GET", "/api/v4/tasks?" + open_.format(contact.pk))) == []
    done = "filter[is_completed]=1"
    assert ids(api("GET", f"/api/v4/tasks?{done}")) == [task.pk]
    page = Client().get(f"/sandbox/amocrm/accounts/{amocrm_account.pk}/").content.decode()
    assert "да: Дозвонились" in page


def test_task_batch_patch_is_all_or_nothing(api, amocrm_account):
    contact = contacts(amocrm_account, "+79160000001")[0]
    a, b = _task(amocrm_account, contact.pk, "A"), _task(amocrm_account, contact.pk, "B")

    refused = api(
        "PATCH",
        "/api/v4/tasks",
        json=[
            {"id": a.pk, "is_completed": True},
            {"id": 1, "text": "нет такой"},
            {"id": b.pk, "result": {"text": 5}},
        ],
    )
    errors = problem(refused)["validation-errors"]
    assert [(e["request_id"], e["errors"][0]["path"]) for e in errors] == [
        ("1", "id"),
        ("2", "result.text"),
    ]
    a.refresh_from_db()
    assert not a.is_completed

    ok = api("PATCH", "/api/v4/tasks", json=[{"id": a.pk, "text": "A2", "request_id": "x"}])
    assert [(t["id"], t["request_id"]) for t in ok.json()["_embedded"]["tasks"]] == [(a.pk, "x")]
    a.refresh_from_db()
    assert a.text == "A2"


def test_task_patch_and_get_of_an_unknown_or_foreign_task(api, amocrm_account):
    other = Account.objects.create(subdomain="other", name="Other")
    other.users.create(name="A", email="a@o.example", is_admin=True)
    foreign_contact = contact_create(
        account=other, name="Чужой", responsible=other.users.get(), phones=()
    )
    foreign = _task(other, foreign_contact.pk)

    assert api("GET", f"/api/v4/tasks/{foreign.pk}").status_code == 204
    problem(api("PATCH", f"/api/v4/tasks/{foreign.pk}", json={"is_completed": True}), 404)
    foreign.refresh_from_db()
    assert not foreign.is_completed
    assert ids(api("GET", "/api/v4/tasks")) == []
    body = problem(api("PATCH", "/api/v4/tasks/1", json={"is_completed": "yes"}), 404)
    assert body["status"] == 404


def test_task_filters_need_entity_type_with_entity_id(api, amocrm_account):
    body = problem(api("GET", "/api/v4/tasks?filter[entity_id][]=1"))
    assert body["detail"].startswith("filter[entity_id]:")
    body = problem(api("GET", "/api/v4/tasks?filter[entity_type]=deals"))
    assert body["detail"].startswith("filter[entity_type]:")


# --- contacts PATCH -------------------------------------------------------------------------


def test_contact_patch_replaces_phones_and_tags(api, amocrm_account, manager):
    contact = contacts(amocrm_account, "+79160000001")[0]

    response = api(
        "PATCH",
        f"/api/v4/contacts/{contact.pk}",
        json={
            "first_name": "Иван",
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": "+79161112233", "enum_code": "MOB"}]}
            ],
            "_embedded": {"tags": [{"name": "VIP"}]},
        },
    )

    assert response.status_code == 200 and response.json()["id"] == contact.pk
    assert ids(api("GET", "/api/v4/contacts?query=9161112233")) == [contact.pk]
    assert ids(api("GET", "/api/v4/contacts?query=9160000001")) == []
    body = api("GET", f"/api/v4/contacts/{contact.pk}").json()
    assert body["first_name"] == "Иван" and body["name"] == "К0"
    assert [t["name"] for t in body["_embedded"]["tags"]] == ["VIP"]
    assert body["updated_by"] == amocrm_account.users.get(is_admin=True).pk


def test_contact_batch_patch_validation(api, amocrm_account):
    contact = contacts(amocrm_account, "+79160000001")[0]

    response = api(
        "PATCH",
        "/api/v4/contacts",
        json=[{"id": contact.pk, "name": "Новое", "colour": "red"}, {"id": 9, "name": "x"}],
    )

    errors = problem(response)["validation-errors"]
    assert [(e["request_id"], e["errors"][0]["path"]) for e in errors] == [
        ("0", "colour"),
        ("1", "id"),
    ]
    contact.refresh_from_db()
    assert contact.name == "К0"
    problem(api("PATCH", "/api/v4/contacts/1", json={"name": "x"}), 404)
    cleared = api(
        "PATCH",
        "/api/v4/contacts",
        json=[
            {"id": contact.pk, "custom_fields_values": [{"field_code": "PHONE", "values": None}]}
        ],
    )
    assert cleared.status_code == 200
    assert api("GET", f"/api/v4/contacts/{contact.pk}").json()["custom_fields_values"] is None


# --- notes and leads ------------------------------------------------------------------------


def test_notes_on_contacts_and_leads(api, amocrm_account, manager):
    contact = contacts(amocrm_account, "+79160000001")[0]
    lead = lead_create(account=amocrm_account, name="Сделка", responsible=manager)
    call = {"uniq": "u1", "duration": 5, "source": "Звонок Beeline", "phone": "+79160000001"}

    added = api(
        "POST",
        "/api/v4/contacts/notes",
        json=[
            {"entity_id": contact.pk, "note_type": "call_out", "params": call},
            {"entity_id": contact.pk, "note_type": "common", "params": {"text": "Привет"}},
        ],
    )
    on_lead = api(
        "POST",
        f"/api/v4/leads/{lead.pk}/notes",
        json=[{"note_type": "common", "params": {"text": "По сделке"}}],
    )

    assert added.status_code == 200 and on_lead.status_code == 200
    assert ids(api("GET", f"/api/v4/contacts/{contact.pk}/notes?filter[note_type][]=common")) == [
        added.json()["_embedded"]["notes"][1]["id"]
    ]
    notes = api("GET", f"/api/v4/leads/notes?filter[entity_id][0]={lead.pk}").json()
    assert [n["params"]["text"] for n in notes["_embedded"]["notes"]] == ["По сделке"]
    assert api("GET", f"/api/v4/leads/{contact.pk}/notes").status_code == 204


def test_note_validation(api, amocrm_account, manager):
    contact = contacts(amocrm_account, "+79160000001")[0]
    other = Account.objects.create(subdomain="other", name="Other")
    other.users.create(name="A", email="a@o.example", is_admin=True)
    foreign = contact_create(account=other, name="Чужой", responsible=other.users.get())

    response = api(
        "POST",
        "/api/v4/contacts/notes",
        json=[
            {"entity_id": contact.pk, "note_type": "call_in", "params": {"link": None}},
            {"entity_id": foreign.pk, "note_type": "common", "params": {"text": "x"}},
            {"entity_id": contact.pk, "note_type": "sms_in", "params": {}},
        ],
    )

    errors = {
        e["request_id"]: {x["path"] for x in e["errors"]}
        for e in problem(response)["validation-errors"]
    }
    assert {"params.uniq", "params.duration", "params.link"} <= errors["0"]
    assert errors["1"] == {"entity_id"} and errors["2"] == {"note_type"}
    assert not amocrm_account.notes.exists()


def test_leads_create_list_and_contacts_with_leads(api, amocrm_account, manager):
    contact = contacts(amocrm_account, "+79160000001")[0]
    pipeline = api("GET", "/api/v4/leads/pipelines").json()["_embedded"]["pipelines"][0]

    created = api(
        "POST",
        "/api/v4/leads",
        json=[
            {
                "name": "Звонок",
                "price": 500,
                "pipeline_id": pipeline["id"],
                "_embedded": {"contacts": [{"id": contact.pk}], "tags": [{"name": "Beeline"}]},
            }
        ],
    )
    (lead_id,) = [x["id"] for x in created.json()["_embedded"]["leads"]]

    lead = api("GET", f"/api/v4/leads/{lead_id}?with=contacts").json()
    first_open = pipeline["_embedded"]["statuses"][1]["id"]
    assert (lead["status_id"], lead["price"], lead["closed_at"]) == (first_open, 500, None)
    assert lead["_embedded"]["contacts"][0]["id"] == contact.pk
    assert ids(api("GET", f"/api/v4/leads?filter[pipeline_id][]={pipeline['id']}")) == [lead_id]
    assert ids(api("GET", "/api/v4/leads?filter[price][from]=501")) == []
    with_leads = api("GET", f"/api/v4/contacts/{contact.pk}?with=leads").json()
    assert [x["id"] for x in with_leads["_embedded"]["leads"]] == [lead_id]

    bad = api(
        "POST", "/api/v4/leads", json=[{"status_id": 1, "_embedded": {"contacts": [{"id": 1}]}}]
    )
    paths = {e["path"] for e in problem(bad)["validation-errors"][0]["errors"]}
    assert paths == {"status_id", "_embedded.contacts.0.id"}


# --- vendor-format errors everywhere ---------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_paths_and_methods_answer_problem_json(amocrm_account, admin, settings, debug):
    settings.DEBUG = debug
    token = tokens_issue(account=amocrm_account, user=admin)[0]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    for path in (
        "/sandbox/amocrm/api/v4/catalogs",
        "/sandbox/amocrm/no/such/page",
        "/sandbox/amocrm/accounts/1",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json", path
    for method, path in (
        ("delete", "/api/v4/contacts"),
        ("put", "/api/v4/tasks/1"),
        ("post", "/api/v4/leads/pipelines"),
    ):
        response = getattr(client, method)("/sandbox/amocrm" + path)
        assert response.status_code == 405, path
        assert response.json()["status"] == 405
