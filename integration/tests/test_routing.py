"""«Звонок ответственному» end to end against both emulators: ICR rules follow amoCRM's
responsible users (full reconciliation, the pipeline's new contacts, amoCRM webhooks), Beeline's
simulator rings the rule's extension first, and switching the option off removes Beetel's rules
and only those."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client, TestCase

from core.tenancy import organization_scope
from crm.models import AmoWebhook
from crm.testing import install
from crm.webhooks import WEBHOOK_SETTINGS, amo_webhook_url
from integration import routing as routing_module
from integration.call_options import CallOptions, call_options_update
from integration.models import RoutingNumber, RoutingRule
from integration.routing import routing_health, routing_mapping_changed, routing_sync_full
from integration.services import ManagerMappingInput, manager_mappings_save
from integration.testing import World
from pbx.client import BeelineClient
from pbx.connection import beeline_token_save
from pbx.models import Abonent, PbxNumber
from pbx.selectors import abonents_for
from sandbox.amocrm.models import WebhookSubscription
from sandbox.amocrm.services import account_create, contact_create
from sandbox.beeline.models import IcrRoute, Number

CLIENT = "+79031112233"
MARIA = "9161110002@ip.beeline.ru"  # extension 202 in the sandbox PBX
IVAN = "9161110001@ip.beeline.ru"  # extension 201
_subdomains = itertools.count(1)


class RoutingWorld(World):
    """World whose amoCRM users are named as the PBX's abonents: ``anna`` is Иван (9161110001,
    extension 201), ``boris`` is Мария (9161110002, extension 202); Пётр is not mapped."""

    @property
    def ivan(self) -> Any:
        return self.anna

    @property
    def maria(self) -> Any:
        return self.boris

    @property
    def petr(self) -> Any:
        return self.account.users.get(name="Пётр Новиков")

    def contact(self, phone: str = CLIENT, responsible: Any = None, name: str = "Клиент") -> Any:
        return contact_create(
            account=self.account,
            name=name,
            responsible=responsible or self.maria,
            phones=[(phone, "WORK")],
        )

    def routing_on(self, numbers: tuple[str, ...] = ("4950000001",)) -> None:
        with organization_scope(self.organization):
            ids = list(PbxNumber.objects.filter(phone__in=numbers).values_list("pk", flat=True))
        with TestCase.captureOnCommitCallbacks(execute=True):
            call_options_update(
                organization=self.organization,
                options=CallOptions(routing_enabled=True, routing_number_ids=ids),
            )

    def routing_off(self) -> None:
        with TestCase.captureOnCommitCallbacks(execute=True):
            call_options_update(organization=self.organization, options=CallOptions())

    def remote_rules(self) -> dict[str, str]:
        return dict(self.pbx.icr_routes.values_list("inbound_national", "extension"))

    def rules(self) -> dict[str, tuple[str, str]]:
        with organization_scope(self.organization):
            return {
                r.phone_national: (r.extension, r.state)
                for r in RoutingRule.objects.filter(organization=self.organization)
            }

    def page(self, path: str, data: dict[str, Any] | None = None) -> Any:
        """A click on the amoCRM sandbox account page (its webhooks reach us at once)."""
        with TestCase.captureOnCommitCallbacks(execute=True):
            return Client().post(f"/sandbox/amocrm/accounts/{self.account.pk}/{path}", data or {})


def routing_world_make(*, pbx: Any) -> RoutingWorld:
    account = account_create(
        subdomain=f"routing{next(_subdomains)}x",
        name="Маршруты",
        users=[
            {"name": "Админ", "is_admin": True},
            {"name": "Иван Петров", "phone": "9161110001"},
            {"name": "Мария Соколова", "phone": "9161110002"},
            {"name": "Пётр Новиков", "phone": "9161110003"},
        ],
    )
    organization = install(account)
    beeline_token_save(organization=organization, token=pbx.token)
    users = {u.name: u for u in account.users.all()}
    abonents = {a.phone: a for a in abonents_for(organization=organization)}
    manager_mappings_save(
        organization=organization,
        rows=[
            ManagerMappingInput(abonents["9161110001"].pk, True, users["Иван Петров"].pk),
            ManagerMappingInput(abonents["9161110002"].pk, True, users["Мария Соколова"].pk),
            ManagerMappingInput(abonents["9161110003"].pk, True, None),
        ],
    )
    return RoutingWorld(
        organization=organization,
        account=account,
        pbx=pbx,
        anna=users["Иван Петров"],
        boris=users["Мария Соколова"],
    )


@pytest.fixture
def rworld(beeline_pbx: Any, outsider: Any, settings: Any, monkeypatch: Any) -> RoutingWorld:
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    monkeypatch.setattr("crm.client.backoff_seconds", lambda *args, **kwargs: 0.0)
    return routing_world_make(pbx=beeline_pbx)


# --- the acceptance path ------------------------------------------------------------------------


def test_marias_client_rings_maria_first_and_the_rule_follows_amocrm(rworld):
    contact = rworld.contact(responsible=rworld.maria)
    rworld.routing_on()

    assert rworld.remote_rules() == {"9031112233": "202"}
    assert rworld.rules() == {"9031112233": ("202", "synced")}
    assert Number.objects.get(pbx=rworld.pbx, phone="4950000001").icr_enabled

    sim = rworld.simulate(
        scenario="inbound_group_answered",
        abonent_phone="9161110001",  # Иван would have answered without routing
        external_phone=CLIENT,
        via_number="4950000001",
    )
    assert sim.routed_extension == "202" and sim.ringing_order[0] == MARIA
    call = rworld.call(sim.ext_tracking_id)
    assert call.abonent.user_id == MARIA
    assert rworld.delivery(sim.ext_tracking_id).responsible_user_id == rworld.maria.pk
    assert rworld.account.calls.get().responsible_user_id == rworld.maria.pk

    # The responsible user is changed on the amoCRM sandbox page: the hook brings the rule along.
    response = rworld.page(
        f"contacts/{contact.pk}/responsible", {"responsible-responsible": rworld.ivan.pk}
    )
    assert response.status_code == 302
    assert rworld.account.webhook_deliveries.filter(status_code=200).exists()
    assert rworld.remote_rules() == {"9031112233": "201"}
    again = rworld.simulate(
        scenario="inbound_answered",
        abonent_phone="9161110002",
        external_phone=CLIENT,
        via_number="4950000001",
    )
    assert again.routed_extension == "201" and again.ringing_order[0] == IVAN

    # The contact is deleted in amoCRM: its rule goes.
    rworld.page(f"contacts/{contact.pk}/delete")
    assert rworld.remote_rules() == {}
    assert rworld.rules() == {}


def test_switching_off_removes_beetels_rules_and_only_those(rworld, beeline_pbx):
    rworld.contact(responsible=rworld.maria)
    rworld.contact(phone="+79035550000", responsible=rworld.ivan, name="Другой")
    # Rules the customer made in the portal themselves, and ICR on another number.
    _add_remote(beeline_pbx, "+79037770000", "203")
    Number.objects.filter(pbx=beeline_pbx, phone="4950000002").update(icr_enabled=True)
    rworld.routing_on()
    assert rworld.remote_rules() == {"9031112233": "202", "9035550000": "201", "9037770000": "203"}

    rworld.routing_off()

    assert rworld.remote_rules() == {"9037770000": "203"}
    assert rworld.rules() == {}
    with organization_scope(rworld.organization):
        assert not RoutingNumber.objects.exists()
    icr = dict(Number.objects.filter(pbx=beeline_pbx).values_list("phone", "icr_enabled"))
    assert icr == {"4950000001": False, "4950000002": True}  # only the one we switched on
    assert routing_health(organization=rworld.organization).enabled is False


def _rule(number: str, extension: str) -> Any:
    from pbx.client import IcrRule

    return IcrRule.model_validate({"inboundNumber": number, "extension": extension})


# --- kept in step -------------------------------------------------------------------------------


def test_a_contact_the_pipeline_creates_gets_its_rule(rworld):
    rworld.routing_on()
    assert rworld.remote_rules() == {}

    rworld.simulate(scenario="inbound_missed", abonent_phone="9161110002", external_phone=CLIENT)

    contact = rworld.account.contacts.get()
    assert contact.responsible_user_id == rworld.maria.pk
    assert rworld.remote_rules() == {"9031112233": "202"}
    with organization_scope(rworld.organization):
        assert RoutingRule.objects.get().contact_id == contact.pk


def test_full_reconciliation_adds_missing_fixes_wrong_removes_stale(rworld, beeline_pbx):
    rworld.routing_on()
    missing = rworld.contact(phone="+79030000001", responsible=rworld.maria)
    wrong = rworld.contact(phone="+79030000002", responsible=rworld.ivan)
    stale = rworld.contact(phone="+79030000003", responsible=rworld.ivan)
    rworld.contact(phone="+79030000004", responsible=rworld.petr)  # unmapped: no rule
    # A number whose rule someone else made, for another extension: reported, never changed.
    _add_remote(beeline_pbx, "+79030000005", "203")
    rworld.contact(phone="8 (903) 000-00-05", responsible=rworld.maria)
    routing_sync_full(organization=rworld.organization)
    assert rworld.remote_rules() == {
        "9030000001": "202",
        "9030000002": "201",
        "9030000003": "201",
        "9030000005": "203",
    }
    # Behind our back (no hook reaches us): the wrong one's contact handed to Мария, the stale
    # one's to Пётр (not mapped), the missing one's rule deleted in the portal.
    IcrRoute.objects.filter(pbx=beeline_pbx, inbound_national="9030000001").delete()
    stale.responsible_user = rworld.petr
    stale.save()
    wrong.responsible_user = rworld.maria
    wrong.save()

    result = routing_sync_full(organization=rworld.organization)

    assert rworld.remote_rules() == {
        "9030000001": "202",
        "9030000002": "202",
        "9030000005": "203",
    }
    assert (result.added, result.updated, result.removed) == (1, 1, 1)
    rules = rworld.rules()
    assert rules["9030000005"][1] == "refused"
    with organization_scope(rworld.organization):
        reason = RoutingRule.objects.get(phone_national="9030000005").last_error
    assert "203" in reason and "не Beetel" in reason
    with organization_scope(rworld.organization):
        assert RoutingRule.objects.get(phone_national="9030000001").contact_id == missing.pk


def _add_remote(pbx: Any, number: str, extension: str) -> None:
    assert (
        BeelineClient(pbx.token).icr_routes_change([_rule(number, extension)], action="add")[0].ok
    )


def test_beeline_refusal_is_kept_with_its_reason_and_counted(rworld):
    with organization_scope(rworld.organization):
        Abonent.objects.filter(phone="9161110002").update(extension="999")  # gone from the PBX
    rworld.contact(responsible=rworld.maria)
    rworld.contact(phone="+79035550000", responsible=rworld.ivan)

    rworld.routing_on()

    health = routing_health(organization=rworld.organization)
    assert (health.synced, health.pending, health.refused) == (1, 0, 1)
    (refused,) = health.refused_rules
    assert refused.phone_national == "9031112233" and "999" in refused.last_error
    assert rworld.pbx.icr_results.filter(status="FAULT", error_code="ExtensionNotFound").exists()
    assert health.full_sync_at is not None and not health.stale


def test_batched_and_paced(rworld, settings, monkeypatch):
    settings.ROUTING_BATCH_SIZE = 2
    settings.ROUTING_BATCH_PAUSE_SECONDS = 0.25
    pauses: list[float] = []
    monkeypatch.setattr(
        routing_module, "_pause", lambda: pauses.append(settings.ROUTING_BATCH_PAUSE_SECONDS)
    )
    for i in range(5):
        rworld.contact(phone=f"+7903111000{i}", responsible=rworld.maria)
    writes: list[int] = []
    original = BeelineClient.icr_routes_change

    def counted(self: BeelineClient, rules: Any, *, action: str) -> Any:
        writes.append(len(rules))
        return original(self, rules, action=action)

    monkeypatch.setattr(BeelineClient, "icr_routes_change", counted)

    rworld.routing_on()

    assert writes == [2, 2, 1] and pauses == [0.25, 0.25]
    assert len(rworld.remote_rules()) == 5


def test_a_rule_sent_before_a_crash_is_adopted_not_sent_twice(rworld, monkeypatch):
    rworld.contact(responsible=rworld.maria)
    original = BeelineClient.icr_routes_change

    def dies_after(self: BeelineClient, rules: Any, *, action: str) -> Any:
        original(self, rules, action=action)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(BeelineClient, "icr_routes_change", dies_after)
    with pytest.raises(RuntimeError):
        rworld.routing_on()
    assert rworld.rules() == {"9031112233": ("202", "pending")}
    monkeypatch.setattr(BeelineClient, "icr_routes_change", original)

    routing_sync_full(organization=rworld.organization)

    assert rworld.rules() == {"9031112233": ("202", "synced")}
    assert rworld.pbx.icr_results.filter(action="route add").count() == 1
    rworld.routing_off()  # and it is ours: switching off removes it
    assert rworld.remote_rules() == {}


def test_ten_digit_rules_in_beeline_are_matched_too(rworld, beeline_pbx):
    """How Beeline writes the client number is a GUESS: a rule it keeps as 10 digits (or 8…)
    is the same number."""
    rworld.contact(responsible=rworld.maria)
    _add_remote(beeline_pbx, "9031112233", "202")
    rworld.routing_on()
    assert rworld.rules() == {"9031112233": ("202", "synced")}
    assert rworld.pbx.icr_results.filter(action="route add").count() == 1  # ours: none sent


# --- amoCRM webhooks ---------------------------------------------------------------------------


def test_install_subscribes_the_secret_webhook_url_once(rworld):
    with organization_scope(rworld.organization):
        webhook = AmoWebhook.objects.get()
    subscription = WebhookSubscription.objects.get(account=rworld.account)
    assert subscription.destination == amo_webhook_url(webhook=webhook)
    assert subscription.destination.startswith("https://beetel.test/amocrm/webhooks/")
    assert subscription.settings == list(WEBHOOK_SETTINGS)
    assert webhook.subscribed_at is not None

    install(rworld.account)  # re-install: the same URL, subscribed again

    assert WebhookSubscription.objects.filter(account=rworld.account).count() == 1
    with organization_scope(rworld.organization):
        assert AmoWebhook.objects.get().secret == webhook.secret


def _hook(world: RoutingWorld, body: dict[str, Any], secret: str | None = None) -> Any:
    with organization_scope(world.organization):
        webhook = AmoWebhook.objects.get()
    path = amo_webhook_url(webhook=webhook).removeprefix("https://beetel.test")
    if secret is not None:
        path = path.rsplit("/", 1)[0] + "/" + secret
    with TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(
            path, urlencode(body), content_type="application/x-www-form-urlencoded"
        )


def test_every_hook_is_checked_against_amocrm_before_acting(rworld):
    contact = rworld.contact(responsible=rworld.maria)
    rworld.routing_on()
    account = {"account[id]": str(rworld.account.pk), "account[subdomain]": "x"}
    # A forged hook claiming the contact moved to Иван (or was deleted): amoCRM says otherwise.
    for action in ("responsible", "delete"):
        forged = {
            f"contacts[{action}][0][id]": str(contact.pk),
            f"contacts[{action}][0][responsible_user_id]": str(rworld.ivan.pk),
            **account,
        }
        assert _hook(rworld, forged).status_code == 200
        assert rworld.remote_rules() == {"9031112233": "202"}
    # The change really made in amoCRM (without a hook of its own reaching us) is picked up
    # from the API by the next hook naming the contact.
    contact.responsible_user = rworld.ivan
    contact.save()
    assert _hook(rworld, {"contacts[update][0][id]": str(contact.pk), **account}).status_code == 200
    assert rworld.remote_rules() == {"9031112233": "201"}


def test_hooks_we_cannot_read_are_refused(rworld, outsider):
    contact = rworld.contact()
    assert _hook(rworld, {"contacts[update][0][id]": "x"}).status_code == 400
    other_account = {"contacts[update][0][id]": str(contact.pk), "account[id]": "1"}
    assert _hook(rworld, other_account).status_code == 400
    assert _hook(rworld, {"leads[status][0][id]": "5"}).status_code == 200  # not followed
    assert _hook(rworld, {}, secret="wrong-secret").status_code == 404
    with organization_scope(rworld.organization):
        assert AmoWebhook.objects.get().last_received_at is not None
    assert Client().get("/amocrm/webhooks/anything").status_code == 405


def test_hooks_while_routing_is_off_change_nothing(rworld):
    contact = rworld.contact(responsible=rworld.maria)
    body = {"contacts[update][0][id]": str(contact.pk), "account[id]": str(rworld.account.pk)}
    assert _hook(rworld, body).status_code == 200
    assert rworld.remote_rules() == {} and rworld.rules() == {}


def test_rules_follow_a_new_manager_mapping(rworld):
    rworld.contact(responsible=rworld.maria)
    rworld.routing_on()
    assert rworld.remote_rules() == {"9031112233": "202"}
    with organization_scope(rworld.organization):
        abonents = {a.phone: a.pk for a in Abonent.objects.all()}
    # «Менеджеры»: Мария now answers on 9161110003 (extension 203), Иван's number is off.
    manager_mappings_save(
        organization=rworld.organization,
        rows=[
            ManagerMappingInput(abonents["9161110002"], True, None),
            ManagerMappingInput(abonents["9161110003"], True, rworld.maria.pk),
        ],
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert routing_mapping_changed(organization=rworld.organization)
    assert rworld.remote_rules() == {"9031112233": "203"}
