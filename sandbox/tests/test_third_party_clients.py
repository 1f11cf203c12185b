"""Contract tests: API clients written by other people, driven against the emulators.

If a client built from the vendors' documentation by someone else cannot use an emulator, the
emulator is wrong somewhere our own client happens not to look. Each test walks every call the
product makes (crm/client.py, pbx/client.py) plus the endpoints the emulators add for other
features, through the client's own models.

- Beeline: ``beeline-portal`` (requests) through the in-process routing of sandbox.testing.
- amoCRM: ``aioamocrm`` (async httpx) and ``amocrm-api-wrapper`` (sync httpx) over real HTTP
  against pytest-django's ``live_server``.

Client bugs are worked around here, never in the emulators; each workaround says which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
from aioamocrm import (
    AmoCRMClient,
    AmoCRMError,
    Contact,
    Embedded,
    Lead,
    LongLivedToken,
    Note,
    NotFoundError,
    Tag,
    Task,
)
from aioamocrm import ValidationError as AmoValidationError
from amocrm_api.errors import AmoException
from amocrm_api.oauth_client import AmoOAuthClient
from beeline_portal import BeelinePBX
from beeline_portal.errors import BeelinePBXException
from beeline_portal.models import Cfb, CfsRule, IcrRouteRule, SubscriptionRequest
from django.conf import settings

from sandbox.amocrm import ratelimit
from sandbox.amocrm.models import Account, User
from sandbox.amocrm.services import account_create, contact_create, tokens_issue
from sandbox.amocrm.testing import AMOCRM_TEST_USERS
from sandbox.beeline.models import Abonent, Number
from sandbox.beeline.services import call_simulate

CLIENT = "+79031234567"


# --- Beeline: beeline-portal 0.0.5 ---------------------------------------------------------


class PortalClient(BeelinePBX):
    """beeline-portal pointed at the emulator.

    Workaround for a client bug: ``get_icr_route_rules`` and the ICR rule writes pass
    ``'/icr/route'`` with a leading slash, which the client glues onto ``API_URL`` (ending in
    ``/``) as ``…/portal//icr/route``. The endpoint is stripped of it here.
    """

    API_URL = settings.BEELINE_API_URL.rstrip("/") + "/"

    def _generate_request_url(self, endpoint: str, params: dict | None = None) -> str:
        return super()._generate_request_url(endpoint.lstrip("/"), params)


@pytest.fixture
def portal_client(beeline_pbx) -> PortalClient:
    return PortalClient(beeline_pbx.token)


def test_beeline_portal_abonents_and_numbers(portal_client, beeline_pbx):
    abonents = list(portal_client.get_abonents())  # pbx/client.py abonents_list
    assert {a.user_id for a in abonents} == set(
        Abonent.objects.filter(pbx=beeline_pbx).values_list("user_id", flat=True)
    )
    ivan = portal_client.find_abonent("201")
    assert (ivan.phone, ivan.first_name, ivan.last_name) == ("9161110001", "Иван", "Петров")

    numbers = list(portal_client.get_incoming_numbers())  # numbers_list
    assert {n.phone for n in numbers} == {"4950000001", "4950000002"}
    assert portal_client.find_incoming_number("+74950000002").phone == "4950000002"


def test_beeline_portal_subscription_lifecycle(portal_client):
    granted = portal_client.create_subscription(
        SubscriptionRequest(
            pattern="",
            expires=3600,
            subscription_type="BASIC_CALL",
            url="https://beetel.test/beeline/events/secret",
        )
    )
    assert set(granted) == {"subscriptionId", "expires"}

    info = portal_client.get_subscription(granted["subscriptionId"])
    assert (info.target_type, info.subscription_type) == ("GROUP", "BASIC_CALL")
    assert info.url == "https://beetel.test/beeline/events/secret"

    assert portal_client.stop_subscrption(granted["subscriptionId"]) == {}
    with pytest.raises(BeelinePBXException) as gone:
        portal_client.get_subscription(granted["subscriptionId"])
    assert gone.value.error_code == "SubscriptionNotFound"


def test_beeline_portal_click_to_call(portal_client, beeline_pbx):
    answer = portal_client.call_from_abonent("9161110001@ip.beeline.ru", "9031234567")
    assert isinstance(answer["response"], str) and answer["response"]  # the call's id
    assert portal_client.call_from_abonent_v2("202", "9031234567")["response"]
    with pytest.raises(BeelinePBXException) as unknown:
        portal_client.call_from_abonent("999", "9031234567")
    assert unknown.value.error_code == "AbonentNotFound"


def test_beeline_portal_records_reference_and_delete(portal_client, beeline_pbx, settings):
    settings.SANDBOX_BEELINE_RECORD_DELAY = 0
    call = call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
    )
    user_id = "9161110001@ip.beeline.ru"

    (record,) = portal_client.get_records({"userId": user_id})
    assert (record.external_id, record.phone, record.direction) == (
        call.ext_tracking_id,
        "9031234567",
        "INBOUND",
    )
    assert record.abonent.user_id == user_id and record.file_size > 0
    assert portal_client.get_record(record.id_) == record
    assert portal_client.get_record_by_external_id(call.ext_tracking_id, user_id) == record

    # pbx/client.py record_download: by tracking id and abonent.
    audio = portal_client.download_record_by_external_id(call.ext_tracking_id, user_id)
    assert audio[:2] == b"\xff\xfb" and len(audio) == record.file_size
    assert portal_client.download_record(record.id_) == audio

    # Temporary links: JSON {"url": …} that downloads without the API token.
    link = portal_client.get_record_link(record.id_)
    assert set(link) == {"url"}
    assert requests.get(link["url"], timeout=5).content == audio
    by_tracking = portal_client.get_record_link_by_external_id(call.ext_tracking_id, user_id)
    assert requests.get(by_tracking["url"], timeout=5).content == audio

    assert portal_client.delete_record(record.id_) == {}
    assert list(portal_client.get_records({"userId": user_id})) == []
    with pytest.raises(BeelinePBXException) as deleted:
        portal_client.get_record(record.id_)
    assert deleted.value.error_code == "RecordNotFound"


def test_beeline_portal_statistics(portal_client, beeline_pbx):
    call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
    )
    # The client formats local naive datetimes as if UTC: give it UTC ones.
    now = datetime.now(UTC).replace(tzinfo=None)
    window = {"date_from": now - timedelta(hours=1), "date_to": now + timedelta(hours=1)}
    user_id = "9161110001@ip.beeline.ru"

    (row,) = portal_client.get_v2_statistic(user_id, **window)  # pbx/client.py statistics
    assert (row.direction, row.status, row.phone_from) == ("INBOUND", "RECIEVED", CLIENT)
    assert row.abonent.user_id == user_id and row.duration > 0
    (v1,) = portal_client.get_statistic(user_id, **window)
    assert v1.phone == "9031234567"


def test_beeline_portal_recording_switch(portal_client, beeline_pbx):
    assert portal_client.get_abonent_recording_status("201") == {"status": "ON"}
    assert portal_client.stop_abonent_recording("201") == {}
    assert portal_client.get_abonent_recording_status("201") == {"status": "OFF"}
    assert not Abonent.objects.get(pbx=beeline_pbx, extension="201").recording
    assert portal_client.enable_abonent_recording("201") == {}
    assert portal_client.get_abonent_recording_status("201") == {"status": "ON"}


def test_beeline_portal_icr_numbers_and_rules(portal_client, beeline_pbx):
    assert list(portal_client.get_icr_numbers()) == []
    results = list(portal_client.enable_icr_for_number(["+74950000001", "+74959999999"]))
    assert [(r.phone_number, r.status) for r in results] == [
        ("+74950000001", "SUCCESS"),
        ("+74959999999", "FAULT"),
    ]
    assert results[1].error["errorCode"] == "NumberNotFound"
    assert [n.phone for n in portal_client.get_icr_numbers()] == ["4950000001"]

    added = list(
        portal_client.add_list_of_icr_rules(
            [
                IcrRouteRule(inbound_number=CLIENT, extension="201"),
                IcrRouteRule(inbound_number="+79035550000", extension="999"),
            ]
        )
    )
    assert [(r.rule.inbound_number, r.status) for r in added] == [
        (CLIENT, "SUCCESS"),
        ("+79035550000", "FAULT"),
    ]
    assert added[1].error["errorCode"] == "ExtensionNotFound"
    assert list(portal_client.get_icr_route_rules()) == [IcrRouteRule(CLIENT, "201")]

    (updated,) = portal_client.update_list_of_icr_rules([IcrRouteRule(CLIENT, "202")])
    assert updated.status == "SUCCESS"
    assert list(portal_client.get_icr_route_rules()) == [IcrRouteRule(CLIENT, "202")]
    (deleted,) = portal_client.delete_list_of_icr_rules([IcrRouteRule(CLIENT, "202")])
    assert deleted.status == "SUCCESS"
    assert list(portal_client.get_icr_route_rules()) == []

    (stopped,) = portal_client.stop_icr_for_number(["+74950000001"])
    assert stopped.status == "SUCCESS"
    assert not Number.objects.get(pbx=beeline_pbx, phone="4950000001").icr_enabled


def test_beeline_portal_forwarding(portal_client):
    assert portal_client.get_cfb("201").status == "OFF"
    cfb = Cfb(forward_busy_phone="9035550001", forward_not_answer_phone="9035550002")
    cfb.forward_not_answer_timeout = "20"
    assert portal_client.enable_cfb("201", cfb) == {}
    current = portal_client.get_cfb("201")
    assert current.status == "ON" and current.cfb == cfb
    assert portal_client.stop_cfb("201") == {}
    assert portal_client.get_cfb("201").status == "OFF"

    rule = CfsRule(
        name="VIP",
        forward_to_phone="9035550003",
        schedule="WORKING_TIME",
        phone_list=[CLIENT],
    )
    rule_id = portal_client.add_cfs_rule("201", rule)["number"]
    assert portal_client.enable_cfs("201") == {}
    state = portal_client.get_cfs_rules("201")
    assert state.is_cfs_service_enabled is True
    assert [(r.id_, r.name, r.phone_list) for r in state.rule_list] == [(rule_id, "VIP", [CLIENT])]
    rule.name = "VIP 2"
    assert portal_client.update_cfs_rule("201", rule_id, rule) == {}
    assert portal_client.get_cfs_rules("201").rule_list[0].name == "VIP 2"
    assert portal_client.delete_cfs_rule("201", rule_id) == {}
    assert portal_client.stop_cfs("201") == {}
    assert portal_client.get_cfs_rules("201").rule_list == []


def test_beeline_portal_sees_unknown_endpoints_as_errors(portal_client):
    """An endpoint the emulator does not have answers Beeline's JSON error: the client raises
    instead of taking an HTML page for a successful answer."""
    with pytest.raises(BeelinePBXException) as missing:
        portal_client.get_abonent_agent_status("201")
    assert missing.value.error_code == "NotFound"
    with pytest.raises(BeelinePBXException):
        list(portal_client.get_voice_campaigns())


# --- amoCRM: shared live-server setup --------------------------------------------------------


@dataclass
class LiveAmo:
    base_url: str  # what a client gets as the account's address
    account: Account
    admin: User
    manager: User
    token: str


@pytest.fixture
def live_amo(live_server, settings, monkeypatch, transactional_db) -> LiveAmo:
    """An emulated account served over real HTTP. The emulator's 7 req/s limit is lifted: the
    clients' own pacing is not under test here (the limit has its own tests)."""
    monkeypatch.setattr(ratelimit, "rate_limit_admit", lambda **_: True)
    base_url = f"{live_server.url}/sandbox/amocrm"
    settings.AMOCRM_API_BASE_URL = base_url  # so _links point back at the live server
    account = account_create(subdomain="acme", name="ООО «Акме»", users=AMOCRM_TEST_USERS)
    admin = account.users.get(is_admin=True)
    manager = account.users.filter(is_admin=False).order_by("id").first()
    assert manager is not None
    token = tokens_issue(account=account, user=admin)[0]
    return LiveAmo(base_url, account, admin, manager, token)


def _call(phone: str, uniq: str) -> dict[str, Any]:
    return {
        "direction": "inbound",
        "duration": 42,
        "source": "Звонок Beeline",
        "phone": phone,
        "uniq": uniq,
        "link": "https://beetel.test/recordings/abc",
        "call_status": 4,
    }


def _sip_unsorted(uid: str) -> dict[str, Any]:
    return {
        "source_uid": uid,
        "source_name": "Звонок Beeline",
        "metadata": {
            "uniq": uid,
            "service_code": "beetel",
            "phone": "201",
            "from": "+79035550000",
            "called_at": 1_900_000_000,
            "duration": 0,
        },
    }


# --- amoCRM: aioamocrm 0.1.1 (async, httpx, PHP-indexed filters: filter[id][0]=…) -------------


def _aio(live: LiveAmo, scenario: Callable[[AmoCRMClient], Awaitable[Any]]) -> Any:
    """Run ``scenario(amo)`` with a fresh client (the ORM stays outside the event loop)."""

    async def run() -> Any:
        async with AmoCRMClient(
            base_url=live.base_url, auth=LongLivedToken(live.token), rate_limit=None
        ) as amo:
            return await scenario(amo)

    return asyncio.run(run())


def test_aioamocrm_account_users_and_pipelines(live_amo):
    async def scenario(amo: AmoCRMClient) -> Any:
        account = await amo.account.get(with_=["datetime_settings", "task_types", "version"])
        users = [u async for u in amo.users.iterate(with_=["phone_number"])]
        pipelines = await amo.pipelines.list()
        one = await amo.pipelines.get(pipelines[0].id)
        statuses = await amo.pipelines.statuses(pipelines[0].id)
        return account, users, pipelines, one, statuses

    account, users, pipelines, one, statuses = _aio(live_amo, scenario)

    assert (account.id, account.current_user_id) == (live_amo.account.pk, live_amo.admin.pk)
    assert account.version == 26
    assert account.embedded["datetime_settings"]["timezone"] == "Europe/Moscow"
    assert [t["id"] for t in account.embedded["task_types"]] == [1, 2]
    phones = {u.id: u.model_extra["phone_number"] for u in users}
    assert phones[live_amo.manager.pk] == "9161230001"
    assert phones[live_amo.admin.pk] is None
    (pipeline,) = pipelines
    assert pipeline.is_main and one.id == pipeline.id
    ids = [s.id for s in pipeline.statuses]
    assert ids[-2:] == [142, 143] and pipeline.statuses[0].name == "Неразобранное"
    assert [s.id for s in statuses] == ids


def test_aioamocrm_contacts_search_filters_and_update(live_amo):
    async def create(amo: AmoCRMClient) -> list[int]:
        drafts = []
        for name, phone in (
            ("Иван", "+79161234567"),
            ("Ольга", "8 (916) 765-43-21"),
            ("Тёзка по 7 цифрам", "+7 (999) 123-45-67"),
        ):
            contact = Contact(name=name, responsible_user_id=live_amo.manager.pk)
            contact.set_field("PHONE", phone, enum_code="WORK")
            contact.embedded.tags.append(Tag(name="Beeline"))
            drafts.append(contact)
        return [ref.id for ref in await amo.contacts.create(drafts)]

    ivan, olga, namesake = _aio(live_amo, create)

    async def read(amo: AmoCRMClient) -> Any:
        # The product's lookup (crm/client.py contacts_find_by_phone): query = 10 digits.
        by_ten = [c async for c in amo.contacts.iterate(query="9161234567")]
        by_eight = [c async for c in amo.contacts.iterate(query="89167654321")]
        # aioamocrm writes PHP indexes: filter[id][0]=…&filter[id][1]=…
        page = await amo.contacts.get_page(filter={"id": [olga, namesake]})
        by_responsible = await amo.contacts.get_page(
            filter={"responsible_user_id": [live_amo.admin.pk]}
        )
        ordered = await amo.contacts.get_page(order={"id": "desc"}, limit=2)
        return by_ten, by_eight, page, by_responsible, ordered

    by_ten, by_eight, page, by_responsible, ordered = _aio(live_amo, read)

    assert [c.id for c in by_ten] == [ivan, namesake]  # last 7 digits; the product confirms 10
    assert by_ten[0].field_value("PHONE") == "+79161234567"
    assert [t.name for t in by_ten[0].embedded.tags] == ["Beeline"]
    assert [c.id for c in by_eight] == [olga]
    assert [c.id for c in page] == [olga, namesake]
    assert list(by_responsible) == []  # all three belong to the manager
    assert [c.id for c in ordered] == [namesake, olga] and ordered.has_next

    async def update(amo: AmoCRMClient) -> Any:
        contact = Contact(id=ivan, name="Иван Петров")
        contact.set_field("PHONE", "+79160000001", enum_code="MOB")
        refs = await amo.contacts.update([contact])
        found = [c async for c in amo.contacts.iterate(query="9160000001")]
        gone = [c async for c in amo.contacts.iterate(query="9161234567")]
        return refs, found, gone

    refs, found, gone = _aio(live_amo, update)
    assert [r.id for r in refs] == [ivan] and refs[0].updated_at
    assert [(c.id, c.name, c.field_value("PHONE", enum_code="MOB")) for c in found] == [
        (ivan, "Иван Петров", "+79160000001")
    ]
    assert [c.id for c in gone] == [namesake]  # the old number was replaced


def test_aioamocrm_calls_notes_and_unsorted(live_amo):
    contact = contact_create(
        account=live_amo.account,
        name="Иван",
        responsible=live_amo.manager,
        phones=[("+79161234567", "WORK")],
    )

    async def scenario(amo: AmoCRMClient) -> Any:
        # No call resource in aioamocrm: its generic request() (auth, errors, JSON) it is.
        logged = await amo.request("POST", "calls", json=[_call("89161234567", "track-1")])
        await amo.contacts.notes.create([Note.common(contact.pk, "Клиент просил перезвонить")])
        calls = [
            n
            async for n in amo.contacts.notes.iterate(
                entity_id=contact.pk, filter={"note_type": ["call_in", "call_out"]}
            )
        ]
        every = [n async for n in amo.contacts.notes.iterate(filter={"entity_id": [contact.pk]})]
        one = await amo.contacts.notes.get(calls[0].id, entity_id=contact.pk)
        unsorted = await amo.request("POST", "leads/unsorted/sip", json=[_sip_unsorted("u-1")])
        return logged, calls, every, one, unsorted

    logged, calls, every, one, unsorted = _aio(live_amo, scenario)

    assert logged["_embedded"]["calls"][0]["entity_id"] == contact.pk
    assert [(n.note_type, n.params["uniq"]) for n in calls] == [("call_in", "track-1")]
    # A logged call is a call note: one id (the pipeline relies on it after a lost answer).
    assert calls[0].id == logged["_embedded"]["calls"][0]["id"]
    assert [n.note_type for n in every] == ["call_in", "common"]
    assert every[1].text == "Клиент просил перезвонить"
    assert one.id == calls[0].id and one.params["duration"] == 42
    assert unsorted["_embedded"]["unsorted"][0]["uid"]


def test_aioamocrm_leads_with_contacts_and_lead_notes(live_amo):
    contact = contact_create(
        account=live_amo.account, name="Иван", responsible=live_amo.manager, phones=()
    )

    async def scenario(amo: AmoCRMClient) -> Any:
        (pipeline,) = await amo.pipelines.list()
        first_stage = pipeline.statuses[1].id  # after «Неразобранное»
        lead = Lead(
            name="Входящий звонок",
            price=1000,
            pipeline_id=pipeline.id,
            status_id=first_stage,
            responsible_user_id=live_amo.manager.pk,
            embedded=Embedded(contacts=[Contact(id=contact.pk)]),
        )
        (ref,) = await amo.leads.create([lead])
        fetched = await amo.leads.get(ref.id, with_=["contacts"])
        in_stage = await amo.leads.get_page(
            filter={"statuses": [{"pipeline_id": pipeline.id, "status_id": first_stage}]}
        )
        won = await amo.leads.get_page(
            filter={"statuses": [{"pipeline_id": pipeline.id, "status_id": 142}]}
        )
        of_contact = await amo.contacts.get(contact.pk, with_=["leads"])
        (note,) = await amo.leads.notes.create([Note.common(ref.id, "Перезвонить завтра")])
        notes = [n async for n in amo.leads.notes.iterate(entity_id=ref.id)]
        return ref, fetched, in_stage, won, of_contact, note, notes

    ref, fetched, in_stage, won, of_contact, note, notes = _aio(live_amo, scenario)

    assert fetched.price == 1000 and [c.id for c in fetched.embedded.contacts] == [contact.pk]
    assert fetched.embedded.contacts[0].is_main is True
    assert [lead.id for lead in in_stage] == [ref.id] and list(won) == []
    assert [lead.id for lead in of_contact.embedded.leads] == [ref.id]
    assert note.entity_id == ref.id and [n.text for n in notes] == ["Перезвонить завтра"]


def test_aioamocrm_tasks_filters_and_completion(live_amo):
    ivan = contact_create(account=live_amo.account, name="Иван", responsible=live_amo.manager)
    olga = contact_create(account=live_amo.account, name="Ольга", responsible=live_amo.manager)

    async def create(amo: AmoCRMClient) -> list[int]:
        tasks = [
            Task(
                text=f"Перезвонить: {who}",
                complete_till=1_900_000_000,
                entity_type="contacts",
                entity_id=contact_id,
                task_type_id=1,
                responsible_user_id=live_amo.manager.pk,
            )
            for who, contact_id in (("Иван", ivan.pk), ("Ольга", olga.pk))
        ]
        return [ref.id for ref in await amo.tasks.create(tasks)]

    ivan_task, olga_task = _aio(live_amo, create)

    async def scenario(amo: AmoCRMClient) -> Any:
        # The product's "already posted?" check (crm/client.py tasks_for_contact).
        open_for_ivan = [
            t
            async for t in amo.tasks.iterate(
                filter={"entity_type": "contacts", "entity_id": [ivan.pk], "is_completed": False}
            )
        ]
        done = await amo.tasks.complete(ivan_task, result="Дозвонились, всё решили")
        completed = await amo.tasks.get(ivan_task)
        still_open = [t async for t in amo.tasks.iterate(filter={"is_completed": False})]
        (moved,) = await amo.tasks.update([Task(id=olga_task, complete_till=1_900_003_600)])
        olga_now = await amo.tasks.get(olga_task)
        return open_for_ivan, done, completed, still_open, moved, olga_now

    open_for_ivan, done, completed, still_open, moved, olga_now = _aio(live_amo, scenario)

    assert [t.id for t in open_for_ivan] == [ivan_task]
    assert done.id == ivan_task and done.updated_at
    assert completed.is_completed is True
    assert completed.result is not None and completed.result.text == "Дозвонились, всё решили"
    assert [t.id for t in still_open] == [olga_task]
    assert moved.id == olga_task and olga_now.complete_till == 1_900_003_600
    assert olga_now.result is None and olga_now.is_completed is False


def test_aioamocrm_unsupported_filter_and_unknown_path_are_refused(live_amo):
    async def scenario(amo: AmoCRMClient) -> Any:
        errors = []
        for call in (
            amo.contacts.get_page(filter={"closest_task_at": 1}),
            amo.tasks.get_page(filter={"entity_id": [1]}),  # needs entity_type
            amo.request("GET", "catalogs"),
        ):
            try:
                await call
            except AmoCRMError as exc:
                errors.append(exc)
        return errors

    unsupported, entity_without_type, unknown = _aio(live_amo, scenario)

    assert isinstance(unsupported, AmoValidationError) and unsupported.status_code == 400
    assert "filter[closest_task_at]" in str(unsupported)
    assert entity_without_type.status_code == 400 and "filter[entity_id]" in str(
        entity_without_type
    )
    assert isinstance(unknown, NotFoundError) and unknown.status_code == 404


# --- amoCRM: amocrm-api-wrapper 1.0.1 (sync httpx, filters as filter[id][]=…) ---------------


class _BodylessVerbsTolerated(httpx.Client):
    """Workaround for a client bug: amocrm-api-wrapper sends every request as
    ``session.<verb>(url, json=data)``, but httpx's ``get``/``delete`` take no body, so every
    GET and DELETE raises TypeError before reaching any server. Here they accept the
    ``json=None`` the wrapper passes (and refuse a real body, which the wrapper never sends)."""

    def get(self, url: Any, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        assert json is None
        return super().get(url, **kwargs)

    def delete(self, url: Any, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        assert json is None
        return super().delete(url, **kwargs)


class WrapperClient(AmoOAuthClient):
    def _init_session(self, params: dict | None = None) -> httpx.Client:
        session = _BodylessVerbsTolerated(timeout=self.timeout)
        session.headers.update(self._auth_headers())
        session.headers.update(params or {})
        return session


@pytest.fixture
def wrapper(live_amo) -> AmoOAuthClient:
    client = WrapperClient(
        access_token=live_amo.token,
        refresh_token="unused",
        crm_url=live_amo.base_url,
        client_id=settings.AMOCRM_CLIENT_ID,
        client_secret=settings.AMOCRM_CLIENT_SECRET,
        redirect_uri=f"{settings.PUBLIC_URL}/amocrm/oauth/callback",
    )
    yield client
    client.close()


def test_amocrm_api_wrapper_drives_every_product_call(wrapper, live_amo):
    manager = live_amo.manager.pk
    account = wrapper.get_account_info(with_datetime_settings=True, with_amojo_id=True)
    assert account["_embedded"]["datetime_settings"]["timezone_offset"] == "+03:00"
    assert "datetime_settings" not in account
    users = wrapper.get_users()["_embedded"]["users"]
    assert {u["id"] for u in users} == set(live_amo.account.users.values_list("pk", flat=True))

    created = wrapper.create_contacts(
        [
            {
                "name": name,
                "responsible_user_id": manager,
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]}
                ],
                "request_id": name,
            }
            for name, phone in (("Иван", "+79161234567"), ("Ольга", "+79167654321"))
        ]
    )["_embedded"]["contacts"]
    ivan, olga = (c["id"] for c in created)
    found = wrapper.get_contacts(query="89161234567")["_embedded"]["contacts"]
    assert [c["id"] for c in found] == [ivan]
    by_id = wrapper.get_contacts(filters={"id": [olga]})["_embedded"]["contacts"]  # filter[id][]
    assert [c["id"] for c in by_id] == [olga]
    (patched,) = wrapper.update_contacts([{"id": olga, "name": "Ольга Н."}])["_embedded"][
        "contacts"
    ]
    assert patched["id"] == olga and wrapper.get_contact(olga)["name"] == "Ольга Н."

    logged = wrapper.create_calls([_call("+79161234567", "track-9")])
    assert logged["_embedded"]["calls"][0]["entity_id"] == ivan
    notes = wrapper.get_notes_by_entity_type_and_entity_id(
        "contacts", ivan, filter_by_note_type=["call_in", "call_out"]
    )["_embedded"]["notes"]
    assert [n["params"]["uniq"] for n in notes] == ["track-9"]

    (task,) = wrapper.add_tasks(
        [
            {
                "text": "Перезвонить",
                "complete_till": 1_900_000_000,
                "entity_type": "contacts",
                "entity_id": ivan,
                "responsible_user_id": manager,
            }
        ]
    )["_embedded"]["tasks"]
    mine = wrapper.get_tasks(
        filters={"entity_type": "contacts", "entity_id": [ivan], "is_completed": 0}
    )["_embedded"]["tasks"]
    assert [t["id"] for t in mine] == [task["id"]]
    assert wrapper.get_tasks(filters={"entity_type": "contacts", "entity_id": [olga]}) == {}
    assert wrapper.execution_task(task["id"], True, "Поговорили")["id"] == task["id"]
    done = wrapper.get_task(task["id"])
    assert done["is_completed"] is True and done["result"] == {"text": "Поговорили"}
    (batch,) = wrapper.update_tasks([{"id": task["id"], "text": "Перезвонить ещё раз"}])[
        "_embedded"
    ]["tasks"]
    assert batch["id"] == task["id"] and wrapper.get_task(task["id"])["text"].endswith("раз")

    sip = _sip_unsorted("u-2")
    unsorted = wrapper.create_unsorted_by_sip(
        source_uid=sip["source_uid"],
        source_name=sip["source_name"],
        metadata=sip["metadata"],
        contact={"name": "+79035550000"},
        lead={"name": "Звонок"},
        company={},
    )
    assert unsorted["_embedded"]["unsorted"][0]["uid"]

    # POST /api/v2/events: no method in the wrapper; its own request door (auth, errors).
    event = wrapper._send_api_request(
        "post",
        f"{live_amo.base_url}/api/v2/events",
        {"add": [{"type": "phone_call", "phone_number": "+79161234567", "users": [manager]}]},
    )
    assert event["_embedded"]["items"][0]["element_id"] == ivan

    (pipeline,) = wrapper.get_pipelines()["_embedded"]["pipelines"]
    assert [s["id"] for s in pipeline["_embedded"]["statuses"]][-2:] == [142, 143]
    (lead,) = wrapper.create_leads([{"name": "Сделка", "_embedded": {"contacts": [{"id": ivan}]}}])[
        "_embedded"
    ]["leads"]
    (note,) = wrapper.create_entity_note(
        "leads", [{"entity_id": lead["id"], "note_type": "common", "params": {"text": "Ок"}}]
    )["_embedded"]["notes"]
    assert note["entity_id"] == lead["id"]


def test_amocrm_api_wrapper_gets_problem_json_for_unknown_paths(wrapper, live_amo):
    with pytest.raises(AmoException) as unknown:
        wrapper._send_api_request("get", f"{live_amo.base_url}/api/v4/catalogs")
    assert unknown.value.code == 404
    with pytest.raises(AmoException) as wrong_method:
        wrapper._send_api_request("delete", f"{live_amo.base_url}/api/v4/contacts")
    assert wrong_method.value.code == 405
