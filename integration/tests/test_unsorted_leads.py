"""New callers land where the team works: unknown inbound callers in «Неразобранное» (or, when the
account has Unsorted off, a contact and a warning), a lead for a new client, and a known
client's call on their only open lead — end to end through both emulators."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from core.models import AuditEntry
from core.tenancy import organization_scope
from crm.errors import AmoTransientError
from crm.services import amo_pipelines_refresh
from integration.call_options import CallOptions, call_options_update
from integration.delivery.rules import AUDIT_UNSORTED_OFF, FLAG_UNSORTED_OFF
from integration.models import CallDelivery
from integration.selectors import call_journal
from integration.tests.test_pipeline_failures import drain
from sandbox.amocrm.pipelines import main_pipeline, pipeline_add
from sandbox.amocrm.services import contact_create, lead_create
from sandbox.beeline import clock as beeline_clock

CLIENT = "+79031112233"
Step = CallDelivery.Step


def options(world: Any, **values: Any) -> None:
    amo_pipelines_refresh(organization=world.organization)
    call_options_update(organization=world.organization, options=CallOptions(**values))


@pytest.fixture
def incoming(world: Any) -> Any:
    """A second pipeline «Входящие» in the world's amoCRM account."""
    return pipeline_add(account=world.account, name="Входящие", stage_names=["Новый", "В работе"])


def recording_plays(link: str, monkeypatch: Any) -> bool:
    ready = timezone.now() + timedelta(seconds=django_settings.SANDBOX_BEELINE_RECORD_DELAY + 5)
    monkeypatch.setattr(beeline_clock, "now", lambda: ready)
    response = Client().get(link.removeprefix(django_settings.PUBLIC_URL))
    return response.status_code == 200 and response["Content-Type"] == "audio/mpeg"


# --- «Неразобранное» -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delivery",
    [{}, {"duplicate": True}, {"reorder": True}, {"duplicate": True, "reorder": True}],
    ids=["plain", "duplicated", "reordered", "both"],
)
def test_unknown_caller_lands_in_unsorted_once(world, incoming, monkeypatch, delivery):
    options(world, unsorted_enabled=True, unsorted_pipeline_id=incoming.id)

    sim = world.simulate(
        scenario="inbound_group_answered",
        abonent_phone="9161110001",
        external_phone=CLIENT,
        talk_seconds=42,
        **delivery,
    )
    world.finalize()  # a second hand-off attempt changes nothing
    drain(world, minutes=10)

    (entry,) = world.account.unsorted.all()
    assert not world.account.contacts.exists()
    assert not world.account.calls.exists() and not world.account.tasks.exists()
    assert (entry.pipeline_id, entry.source_uid) == (incoming.id, sim.ext_tracking_id)
    metadata = entry.metadata
    assert metadata["from"] == CLIENT
    assert metadata["phone"] == "+74950000001"  # the multichannel number called
    assert metadata["duration"] == 42 and metadata["uniq"] == sim.ext_tracking_id
    assert metadata["is_call_event_needed"] is True
    assert recording_plays(metadata["link"], monkeypatch)
    delivery_row = world.delivery(sim.ext_tracking_id)
    assert delivery_row.status == CallDelivery.Status.DONE
    assert (delivery_row.unsorted_state, delivery_row.unsorted_uid) == (Step.DONE, entry.uid)
    assert delivery_row.contact_id is None
    row = call_journal(organization=world.organization, call_id=world.call(sim.ext_tracking_id).pk)
    assert row.rows[0].landed == "unsorted"


def test_a_known_caller_still_goes_to_their_contact(world, incoming):
    options(world, unsorted_enabled=True, unsorted_pipeline_id=incoming.id)
    contact = contact_create(
        account=world.account, name="Клиент", responsible=world.anna, phones=[(CLIENT, "WORK")]
    )
    world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    assert not world.account.unsorted.exists()
    assert world.account.calls.get().contact_id == contact.pk


def test_an_unanswered_unsorted_post_is_looked_up_not_repeated(world, monkeypatch):
    options(world, unsorted_enabled=True)
    from crm.client import AmoClient

    original = AmoClient.unsorted_sip_add
    calls: list[int] = []

    def times_out_after(self: AmoClient, items: Any) -> Any:
        calls.append(1)
        original(self, items)
        if len(calls) == 1:
            raise AmoTransientError("amoCRM не ответил вовремя.")
        raise AssertionError("posted twice")

    monkeypatch.setattr(AmoClient, "unsorted_sip_add", times_out_after)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    assert world.delivery(sim.ext_tracking_id).unsorted_state == Step.POSTING

    drain(world, minutes=10)

    entry = world.account.unsorted.get()
    assert entry.pipeline_id == main_pipeline(world.account).id
    delivery = world.delivery(sim.ext_tracking_id)
    assert (delivery.status, delivery.unsorted_uid) == (CallDelivery.Status.DONE, entry.uid)


def test_unsorted_switched_off_in_the_account_falls_back_to_a_contact_and_warns(world):
    options(world, unsorted_enabled=True)
    world.account.is_unsorted_on = False
    world.account.save()

    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)

    assert not world.account.unsorted.exists()
    contact = world.account.contacts.get()
    assert {t.name for t in contact.tags.all()} == {"BeelineConnector"}
    assert world.account.calls.get().contact_id == contact.pk
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.DONE and FLAG_UNSORTED_OFF in delivery.flags
    with organization_scope(world.organization):
        warning = AuditEntry.objects.get(kind=AUDIT_UNSORTED_OFF)
    assert warning.level == AuditEntry.Level.WARNING and "Неразобранное" in warning.message


def test_unsorted_falls_back_even_with_contact_creation_off(world):
    """The admin chose Unsorted over contacts; with Unsorted off the call is not lost."""
    world.settings_set(create_contact_incoming=False)
    options(world, unsorted_enabled=True)
    world.account.is_unsorted_on = False
    world.account.save()
    world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    assert world.account.contacts.count() == 1 and world.account.calls.count() == 1


# --- leads ------------------------------------------------------------------------------------


def test_lead_mode_new_client_gets_one_lead_with_contact_tags_and_manager(world, incoming):
    stage = incoming.first_open_stage.id
    options(world, lead_enabled=True, lead_pipeline_id=incoming.id, lead_status_id=stage)

    sim = world.simulate(
        scenario="inbound_group_missed", abonent_phone="9161110001", external_phone=CLIENT
    )
    drain(world, minutes=10)

    contact = world.account.contacts.get()
    lead = world.account.leads.get()
    assert (lead.pipeline_id, lead.status_id) == (incoming.id, stage)
    assert list(lead.contacts.all()) == [contact]
    tags = {t.name for t in contact.tags.all()}
    assert tags == {"BeelineConnector", "4950000001"}  # the multichannel number (unnamed)
    assert {t.name for t in lead.tags.all()} == tags
    assert lead.responsible_user_id == contact.responsible_user_id
    call = world.account.calls.get()
    assert call.lead_id == lead.pk  # amoCRM put the call on the only open lead
    delivery = world.delivery(sim.ext_tracking_id)
    assert (delivery.lead_state, delivery.lead_id) == (Step.DONE, lead.pk)
    assert (delivery.call_entity_type, delivery.call_entity_id) == ("leads", lead.pk)
    row = call_journal(organization=world.organization, call_id=world.call(sim.ext_tracking_id).pk)
    assert row.rows[0].landed == "lead"
    assert row.rows[0].lead_url.endswith(f"/leads/detail/{lead.pk}")


def test_lead_mode_known_client_goes_on_their_only_open_lead(world, incoming):
    stage = incoming.first_open_stage.id
    options(world, lead_enabled=True, lead_pipeline_id=incoming.id, lead_status_id=stage)
    contact = contact_create(
        account=world.account, name="Клиент", responsible=world.anna, phones=[(CLIENT, "WORK")]
    )
    open_lead = lead_create(
        account=world.account, name="Текущая", responsible=world.anna, contacts=[contact]
    )

    first = world.simulate(scenario="inbound_answered", external_phone=CLIENT)

    assert world.account.leads.count() == 1  # not a new client: no new lead
    assert world.account.calls.get().lead_id == open_lead.pk
    delivery = world.delivery(first.ext_tracking_id)
    assert (delivery.call_entity_type, delivery.call_entity_id) == ("leads", open_lead.pk)
    assert delivery.lead_state == Step.NOT_NEEDED

    lead_create(account=world.account, name="Вторая", responsible=world.anna, contacts=[contact])
    second = world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    delivery = world.delivery(second.ext_tracking_id)
    assert (delivery.call_entity_type, delivery.call_entity_id) == ("contacts", contact.pk)
    journal = call_journal(organization=world.organization, call_id=delivery.pbx_call_id)
    assert journal.rows[0].landed == "contact"


def test_an_unanswered_lead_post_is_looked_up_not_repeated(world, monkeypatch):
    pipeline = main_pipeline(world.account)
    options(
        world,
        lead_enabled=True,
        lead_pipeline_id=pipeline.id,
        lead_status_id=pipeline.first_open_stage.id,
    )
    from crm.client import AmoClient

    original = AmoClient.leads_add
    calls: list[int] = []

    def times_out_after(self: AmoClient, drafts: Any) -> Any:
        calls.append(1)
        original(self, drafts)
        if len(calls) == 1:
            raise AmoTransientError("amoCRM не ответил вовремя.")
        raise AssertionError("posted twice")

    monkeypatch.setattr(AmoClient, "leads_add", times_out_after)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    assert world.delivery(sim.ext_tracking_id).lead_state == Step.POSTING

    drain(world, minutes=10)

    lead = world.account.leads.get()
    delivery = world.delivery(sim.ext_tracking_id)
    assert (delivery.status, delivery.lead_id) == (CallDelivery.Status.DONE, lead.pk)
    assert world.account.calls.get().lead_id == lead.pk


def test_a_lead_amocrm_refuses_does_not_cost_the_call(world, incoming):
    stage = incoming.first_open_stage.id
    options(world, lead_enabled=True, lead_pipeline_id=incoming.id, lead_status_id=stage)
    incoming_row = world.account.extra_pipelines.get()
    incoming_row.delete()  # deleted in amoCRM after it was chosen

    sim = world.simulate(scenario="inbound_answered", external_phone=CLIENT)

    assert not world.account.leads.exists()
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.DONE
    assert "lead_refused" in delivery.flags
    assert world.account.calls.get().lead_id is None
