"""Test builder of the join: an organization wired to both emulators, the way a customer sets
it up: installed from the emulated amoCRM (real install flow), Beeline token saved against the
emulated PBX (abonents synced, event subscription pointing at our webhook), managers mapped in
«Менеджеры».

amoCRM users: Анна (9161110001) and Борис (9161110002) are mapped to the abonents with those
numbers; abonent 9161110003 (Олег) is left unmapped. Calls are played by the Beeline
simulator through our webhook and handed to the pipeline exactly as in production (eager
Celery runs each task in line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings as django_settings
from django.test import Client, TestCase
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from crm.testing import amo_account_make, install
from integration.models import CallDelivery
from integration.services import ManagerMappingInput, call_settings_update, manager_mappings_save
from pbx.calls import call_finalize_due
from pbx.connection import beeline_token_save
from pbx.credentials import webhook_url
from pbx.models import PbxCall
from pbx.selectors import abonents_for, credentials_for
from sandbox.beeline.services import call_simulate


@dataclass
class World:
    organization: Organization
    account: Any  # sandbox.amocrm.models.Account
    pbx: Any  # sandbox.beeline.models.Pbx
    anna: Any  # sandbox amoCRM user mapped to 9161110001
    boris: Any  # … to 9161110002

    def simulate(self, *, finalize: bool = True, stepwise: bool = True, **kwargs: Any) -> Any:
        """Play a call through the webhook; with ``finalize`` also pass the settle delay.

        ``stepwise``: each event is processed before the next one arrives, as in production
        (the simulator renders the events, we post them one by one); otherwise the simulator
        posts them all and processing runs after the last one (a worker lagging behind).
        """
        kwargs.setdefault("abonent_phone", "9161110001")
        if not stepwise:
            with TestCase.captureOnCommitCallbacks(execute=True):
                sim = call_simulate(pbx=self.pbx, **kwargs)
        else:
            drop = kwargs.pop("drop", False)
            duplicate = kwargs.pop("duplicate", False)
            reorder = kwargs.pop("reorder", False)
            sim = call_simulate(pbx=self.pbx, drop=True, **kwargs)
            documents = list(reversed(sim.documents) if reorder else sim.documents)
            for body in [] if drop else documents:
                for _ in range(2 if duplicate else 1):
                    self.post_event(body)
        if finalize:
            self.finalize()
        return sim

    def post_event(self, body: str) -> None:
        credentials = credentials_for(organization=self.organization)
        assert credentials is not None
        path = webhook_url(credentials=credentials).removeprefix(django_settings.PUBLIC_URL)
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = Client().generic(
                "POST", path, data=body.encode(), content_type="application/xml; charset=UTF-8"
            )
        assert response.status_code == 200, response.content

    def finalize(self) -> int:
        later = timezone.now() + timedelta(seconds=60)
        with TestCase.captureOnCommitCallbacks(execute=True):
            return call_finalize_due(now=later)

    def call(self, ext_tracking_id: str) -> PbxCall:
        with organization_scope(self.organization):
            return PbxCall.objects.get(ext_tracking_id=ext_tracking_id)

    def delivery(self, ext_tracking_id: str) -> CallDelivery:
        with organization_scope(self.organization):
            return CallDelivery.objects.get(pbx_call__ext_tracking_id=ext_tracking_id)

    def settings_set(self, **values: bool) -> None:
        call_settings_update(organization=self.organization, values=values)


def world_make(*, name: str = "Рога и копыта", pbx: Any) -> World:
    account = amo_account_make(name)
    organization = install(account)
    beeline_token_save(organization=organization, token=pbx.token)
    anna = next(u for u in account.users.all() if u.name.startswith("Анна"))
    boris = next(u for u in account.users.all() if u.name.startswith("Борис"))
    abonents = {a.phone: a for a in abonents_for(organization=organization)}
    manager_mappings_save(
        organization=organization,
        rows=[
            ManagerMappingInput(abonents["9161110001"].pk, True, anna.pk),
            ManagerMappingInput(abonents["9161110002"].pk, True, boris.pk),
            ManagerMappingInput(abonents["9161110003"].pk, True, None),
        ],
    )
    return World(organization=organization, account=account, pbx=pbx, anna=anna, boris=boris)
