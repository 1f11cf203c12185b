"""«Звонок ответственному» with a REAL Celery worker: the option switched on, the responsible
user changed and the contact deleted on the amoCRM sandbox page, the option switched off — each
time the worker (another process, talking to both emulators over HTTP on the live server)
brings Beeline's ICR rules in step, and the simulator rings the rule's extension first."""

from __future__ import annotations

import pytest
from django.test import Client

from core.tenancy import organization_scope
from integration.call_options import CallOptions, call_options_update
from integration.routing import routing_due_dispatch
from integration.tests.test_routing import CLIENT, IVAN, MARIA, routing_world_make
from pbx.models import PbxNumber
from sandbox.amocrm.models import WebhookSubscription
from sandbox.beeline.models import Pbx
from sandbox.beeline.services import call_simulate
from sandbox.beeline.simulator import SimulatedCall
from tests.test_pipeline_worker import queued_for_real, start_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

__all__ = ["queued_for_real", "start_worker"]  # fixtures shared with the pipeline worker test


def _client_calls(beeline_pbx: Pbx, *, abonent_phone: str) -> SimulatedCall:
    """The client dials the routed company number; the call is answered and dropped."""
    return call_simulate(
        pbx=beeline_pbx,
        scenario="inbound_answered",
        abonent_phone=abonent_phone,
        external_phone=CLIENT,
        via_number="4950000001",
        drop=True,
    )


def test_rules_follow_amocrm_through_a_real_worker(
    beeline_pbx, outsider, start_worker, queued_for_real
):
    world = routing_world_make(pbx=beeline_pbx)
    start_worker()
    contact = world.contact(responsible=world.maria)
    wait_for(
        "the worker to subscribe to amoCRM's webhooks at install",
        lambda: WebhookSubscription.objects.filter(account=world.account).exists(),
    )
    with organization_scope(world.organization):
        number = PbxNumber.objects.get(phone="4950000001")

    def remote() -> dict[str, str]:
        return dict(beeline_pbx.icr_routes.values_list("inbound_national", "extension"))

    call_options_update(
        organization=world.organization,
        options=CallOptions(routing_enabled=True, routing_number_ids=[number.pk]),
    )
    wait_for("the full sync to add Мария's rule", lambda: remote() == {"9031112233": "202"})
    routed = _client_calls(beeline_pbx, abonent_phone="9161110001")
    assert routed.routed_extension == "202" and routed.ringing_order[0] == MARIA

    page = f"/sandbox/amocrm/accounts/{world.account.pk}/contacts/{contact.pk}"
    Client().post(f"{page}/responsible", {"responsible-responsible": world.ivan.pk})
    wait_for("the hook's sync to move the rule to Иван", lambda: remote() == {"9031112233": "201"})
    again = _client_calls(beeline_pbx, abonent_phone="9161110002")
    assert again.ringing_order[0] == IVAN

    Client().post(f"{page}/delete")
    wait_for("the deleted contact's rule to go", lambda: remote() == {})

    # A contact made while no hook reaches us: the periodic full reconciliation adds its rule.
    world.contact(phone="+79035550000", responsible=world.maria, name="Другой")
    assert routing_due_dispatch() == [world.organization.pk]  # what the beat does
    wait_for("the reconciliation to add the rule", lambda: remote() == {"9035550000": "202"})

    call_options_update(organization=world.organization, options=CallOptions())
    wait_for("switching off to remove Beetel's rules", lambda: remote() == {})
    wait_for(
        "ICR to be switched off again on the number",
        lambda: not beeline_pbx.numbers.get(phone="4950000001").icr_enabled,
    )
