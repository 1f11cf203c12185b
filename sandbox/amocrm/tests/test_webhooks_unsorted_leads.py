"""Entity webhooks (subscriptions and the contact events sent when a contact is added, handed to
another user or deleted), Unsorted decisions, extra pipelines, and calls on a contact's only
open lead — what the routing, Unsorted and lead features rely on."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses
from django.test import Client

from sandbox.amocrm.models import Account, UnsortedEntry
from sandbox.amocrm.pipelines import LOST, main_pipeline, pipeline_add
from sandbox.amocrm.services import (
    contact_create,
    contact_delete,
    contact_responsible_change,
    lead_create,
)
from sandbox.amocrm.webhooks import php_form_pairs

HOOK = "https://hooks.example/amo/secret-1"


@pytest.fixture(autouse=True)
def _unlimited(no_rate_limit):
    """Bursts of requests; the 7 req/s limit has its own tests."""


@pytest.fixture
def hooks(sandbox_http: responses.RequestsMock) -> list[dict[str, str]]:
    """Bodies POSTed to HOOK, parsed as flat PHP-bracket pairs."""
    received: list[dict[str, str]] = []

    def record(request: Any) -> tuple[int, dict[str, str], bytes]:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        received.append(dict(parse_qsl(body)))
        return 200, {}, b"ok"

    sandbox_http.add_callback("POST", HOOK, callback=record)
    return received


def problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.json()


def subscribe(api, *settings: str, destination: str = HOOK):
    return api("POST", "/api/v4/webhooks", json={"destination": destination, "settings": settings})


# --- subscriptions ----------------------------------------------------------------------------


def test_subscribe_list_resubscribe_unsubscribe(api, amocrm_account):
    created = subscribe(api, "update_contact", "delete_contact")
    assert created.status_code == 200, created.content
    assert created.json()["settings"] == ["update_contact", "delete_contact"]
    assert created.json()["destination"] == HOOK

    again = subscribe(api, "responsible_contact")
    assert again.json()["id"] == created.json()["id"]  # one hook per destination
    listed = api("GET", "/api/v4/webhooks").json()["_embedded"]["webhooks"]
    assert [(w["destination"], w["settings"]) for w in listed] == [(HOOK, ["responsible_contact"])]
    assert (
        api("GET", "/api/v4/webhooks?filter[destination]=https://other.example").status_code == 204
    )
    problem(api("GET", "/api/v4/webhooks?filter[id]=1"))

    assert api("DELETE", "/api/v4/webhooks", json={"destination": HOOK}).status_code == 204
    assert api("GET", "/api/v4/webhooks").status_code == 204
    problem(api("DELETE", "/api/v4/webhooks", json={"destination": HOOK}), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"destination": HOOK, "settings": ["update_kontakt"]},
        {"destination": HOOK, "settings": []},
        {"destination": "not a url", "settings": ["update_contact"]},
        {"destination": HOOK, "settings": ["update_contact"], "colour": "red"},
    ],
)
def test_bad_subscriptions_are_refused(api, amocrm_account, body):
    problem(api("POST", "/api/v4/webhooks", json=body))
    assert not amocrm_account.webhooks.exists()


# --- contact events ---------------------------------------------------------------------------


def test_responsible_change_on_the_page_sends_the_events_subscribed(
    api, amocrm_account, hooks, admin, manager
):
    subscribe(api, "responsible_contact", "update_contact")
    contact = contact_create(
        account=amocrm_account, name="Клиент", responsible=admin, phones=[("+79031112233", "WORK")]
    )
    page = f"/sandbox/amocrm/accounts/{amocrm_account.pk}/contacts/{contact.pk}/responsible"

    response = Client().post(page, {"responsible-responsible": manager.pk})

    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.responsible_user_id == manager.pk
    (body,) = hooks
    assert body["contacts[responsible][0][id]"] == str(contact.pk)
    assert body["contacts[responsible][0][responsible_user_id]"] == str(manager.pk)
    assert body["contacts[responsible][0][old_responsible_user_id]"] == str(admin.pk)
    assert body["contacts[update][0][id]"] == str(contact.pk)
    assert body["contacts[update][0][custom_fields][0][code]"] == "PHONE"
    assert body["contacts[update][0][custom_fields][0][values][0][value]"] == "+79031112233"
    assert body["account[id]"] == str(amocrm_account.pk)
    assert body["account[subdomain]"] == amocrm_account.subdomain
    log = amocrm_account.webhook_deliveries.get()
    assert log.status_code == 200 and log.event == "responsible_contact, update_contact"
    # The same user again: nothing changes, nothing is sent.
    assert not contact_responsible_change(contact=contact, responsible=manager)
    assert len(hooks) == 1


def test_each_subscription_gets_only_its_events(api, amocrm_account, hooks, admin, manager):
    subscribe(api, "delete_contact")
    contact = contact_create(account=amocrm_account, name="К", responsible=admin)
    contact_responsible_change(contact=contact, responsible=manager)
    assert hooks == []
    contact_id = contact.pk

    contact_delete(contact=contact)

    (body,) = hooks
    assert body == {
        "contacts[delete][0][id]": str(contact_id),
        "contacts[delete][0][type]": "contact",
        "account[subdomain]": amocrm_account.subdomain,
        "account[id]": str(amocrm_account.pk),
        "account[_links][self]": f"https://{amocrm_account.host}",
    }
    assert api("GET", f"/api/v4/contacts/{contact_id}").status_code == 204


def test_api_writes_send_events_too(api, amocrm_account, hooks, admin, manager):
    subscribe(api, "add_contact", "responsible_contact")
    created = api("POST", "/api/v4/contacts", json=[{"name": "Новый"}]).json()
    contact_id = created["_embedded"]["contacts"][0]["id"]
    assert hooks[0]["contacts[add][0][id]"] == str(contact_id)

    api("PATCH", f"/api/v4/contacts/{contact_id}", json={"responsible_user_id": manager.pk})
    assert hooks[1]["contacts[responsible][0][responsible_user_id]"] == str(manager.pk)
    api("PATCH", f"/api/v4/contacts/{contact_id}", json={"name": "Другое имя"})
    assert len(hooks) == 2  # update_contact is not subscribed


def test_a_failing_destination_is_logged_not_raised(api, amocrm_account, admin, manager):
    subscribe(api, "responsible_contact", destination="https://unreachable.example/hook")
    contact = contact_create(account=amocrm_account, name="К", responsible=admin)
    assert contact_responsible_change(contact=contact, responsible=manager)
    log = amocrm_account.webhook_deliveries.get()
    assert log.status_code is None and "ConnectionError" in log.error


def test_php_form_pairs():
    assert php_form_pairs({"a": [{"b": 1, "c": None}], "d": "x"}) == [
        ("a[0][b]", "1"),
        ("a[0][c]", ""),
        ("d", "x"),
    ]


# --- Unsorted ---------------------------------------------------------------------------------


def sip(**overrides: Any) -> dict[str, Any]:
    item = {
        "source_uid": "track-1",
        "source_name": "Звонок Beeline",
        "metadata": {
            "uniq": "track-1",
            "duration": 42,
            "service_code": "beetel",
            "link": "https://beetel.test/recordings/abc",
            "phone": "+74950000001",
            "called_at": 1_700_000_000,
            "from": "+79031112233",
            "is_call_event_needed": True,
        },
        "_embedded": {
            "leads": [{"name": "Звонок с +79031112233"}],
            "contacts": [
                {
                    "name": "+79031112233",
                    "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": "+79031112233"}]}
                    ],
                }
            ],
        },
    }
    return item | overrides


def test_unsorted_accept_makes_lead_contact_and_call(api, amocrm_account, manager):
    extra = pipeline_add(account=amocrm_account, name="Входящие", stage_names=["Новый", "Дальше"])
    uid = api("POST", "/api/v4/leads/unsorted/sip", json=[sip(pipeline_id=extra.id)]).json()[
        "_embedded"
    ]["unsorted"][0]["uid"]
    listed = api("GET", f"/api/v4/leads/unsorted?filter[pipeline_id]={extra.id}").json()
    (entry,) = listed["_embedded"]["unsorted"]
    assert (entry["uid"], entry["source_uid"], entry["category"]) == (uid, "track-1", "sip")
    assert entry["metadata"]["link"] == "https://beetel.test/recordings/abc"
    assert api("GET", f"/api/v4/leads/unsorted/{uid}").json()["pipeline_id"] == extra.id
    assert not amocrm_account.contacts.exists()  # nothing real until accepted

    accepted = api(
        "POST", f"/api/v4/leads/unsorted/{uid}/accept", json={"user_id": manager.pk}
    ).json()

    lead = amocrm_account.leads.get(pk=accepted["_embedded"]["leads"][0]["id"])
    assert (lead.pipeline_id, lead.status_id) == (extra.id, extra.first_open_stage.id)
    assert lead.responsible_user_id == manager.pk
    contact = lead.contacts.get()
    assert contact.phones.get().value == "+79031112233"
    call = amocrm_account.calls.get()
    assert (call.lead_id, call.duration, call.uniq) == (lead.pk, 42, "track-1")
    assert amocrm_account.notes.get().entity_type == "leads"
    assert api("GET", "/api/v4/leads/unsorted").status_code == 204  # it left Unsorted
    problem(api("POST", f"/api/v4/leads/unsorted/{uid}/accept"), 404)


def test_unsorted_decline_and_filters(api, amocrm_account):
    uid = api("POST", "/api/v4/leads/unsorted/sip", json=[sip()]).json()["_embedded"]["unsorted"][
        0
    ]["uid"]
    assert amocrm_account.unsorted.get().pipeline_id == main_pipeline(amocrm_account).id
    assert api("GET", "/api/v4/leads/unsorted?filter[category][]=mail").status_code == 204
    problem(api("GET", "/api/v4/leads/unsorted?filter[category][]=letters"))
    problem(api("GET", "/api/v4/leads/unsorted?filter[source_uid]=track-1"))

    assert api("DELETE", f"/api/v4/leads/unsorted/{uid}/decline").status_code == 200

    assert amocrm_account.unsorted.get().status == UnsortedEntry.Status.DECLINED
    assert not amocrm_account.leads.exists() and not amocrm_account.contacts.exists()


def test_unsorted_page_buttons(api, amocrm_account):
    uid = api("POST", "/api/v4/leads/unsorted/sip", json=[sip()]).json()["_embedded"]["unsorted"][
        0
    ]["uid"]
    base = f"/sandbox/amocrm/accounts/{amocrm_account.pk}/unsorted/{uid}"
    page = Client().get(f"/sandbox/amocrm/accounts/{amocrm_account.pk}/")
    assert "Принять" in page.content.decode()
    assert Client().post(f"{base}/accept").status_code == 302
    assert amocrm_account.leads.count() == 1
    assert Client().post(f"{base}/accept").status_code == 404


def test_unsorted_switched_off_or_foreign_pipeline_is_refused(api, amocrm_account):
    other = Account.objects.create(subdomain="other", name="Другой")
    foreign = pipeline_add(account=other, name="Чужая", stage_names=["Этап"])
    problem(api("POST", "/api/v4/leads/unsorted/sip", json=[sip(pipeline_id=foreign.id)]))
    amocrm_account.is_unsorted_on = False
    amocrm_account.save()
    body = problem(api("POST", "/api/v4/leads/unsorted/sip", json=[sip()]))
    assert "Unsorted" in body["detail"]
    assert not amocrm_account.unsorted.exists()
    stages = api("GET", "/api/v4/leads/pipelines").json()["_embedded"]["pipelines"][0]
    assert stages["is_unsorted_on"] is False
    assert "Неразобранное" not in [s["name"] for s in stages["_embedded"]["statuses"]]


# --- pipelines, leads, calls on a lead --------------------------------------------------------


def test_extra_pipeline_and_leads_in_it(api, amocrm_account, manager):
    extra = pipeline_add(account=amocrm_account, name="Входящие", stage_names=["Новый"])
    pipelines = api("GET", "/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    assert [(p["name"], p["is_main"]) for p in pipelines] == [
        ("Воронка", True),
        ("Входящие", False),
    ]
    new_stage = extra.first_open_stage.id
    ok = api(
        "POST",
        "/api/v4/leads",
        json=[{"name": "Сделка", "pipeline_id": extra.id, "status_id": new_stage}],
    )
    assert ok.status_code == 200, ok.content
    lead = amocrm_account.leads.get()
    assert (lead.pipeline_id, lead.status_id) == (extra.id, new_stage)
    main_stage = main_pipeline(amocrm_account).first_open_stage.id
    for bad in (
        {"pipeline_id": extra.id, "status_id": main_stage},  # a stage of another pipeline
        {"pipeline_id": extra.id, "status_id": extra.unsorted_stage.id},
        {"pipeline_id": 1},
    ):
        problem(api("POST", "/api/v4/leads", json=[{"name": "x", **bad}]))


@pytest.mark.parametrize(
    ("open_leads", "closed_leads", "entity"),
    [(1, 0, "leads"), (2, 0, "contacts"), (0, 1, "contacts"), (1, 1, "leads")],
)
def test_a_call_goes_on_the_only_open_lead(
    api, amocrm_account, manager, open_leads, closed_leads, entity
):
    contact = contact_create(
        account=amocrm_account, name="К", responsible=manager, phones=[("+79031112233", "WORK")]
    )
    leads = [
        lead_create(
            account=amocrm_account, name="Открытая", responsible=manager, contacts=[contact]
        )
        for _ in range(open_leads)
    ]
    for _ in range(closed_leads):
        lead_create(
            account=amocrm_account,
            name="Закрытая",
            responsible=manager,
            status_id=LOST,
            contacts=[contact],
        )
    call = {"direction": "inbound", "duration": 5, "source": "x", "phone": "+79031112233"}

    body = api("POST", "/api/v4/calls", json=[call]).json()["_embedded"]["calls"][0]

    expected = leads[0].pk if entity == "leads" else contact.pk
    assert (body["entity_type"], body["entity_id"]) == (entity, expected)
    note = amocrm_account.notes.get()
    assert (note.entity_type, note.entity_id) == (entity, expected)
