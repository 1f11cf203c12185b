from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationConfig(AppConfig):
    name = "integration"
    verbose_name = _("Интеграция")

    def ready(self) -> None:
        from core.signals import organization_created
        from crm.signals import amo_contacts_changed, amo_installed
        from integration import receivers
        from pbx.signals import call_finished, call_ringing

        organization_created.connect(
            receivers.on_organization_created, dispatch_uid="integration.organization_created"
        )
        call_ringing.connect(receivers.on_call_ringing, dispatch_uid="integration.ringing")
        call_finished.connect(receivers.on_call_finished, dispatch_uid="integration.finished")
        amo_installed.connect(receivers.on_amo_installed, dispatch_uid="integration.installed")
        amo_contacts_changed.connect(
            receivers.on_amo_contacts_changed, dispatch_uid="integration.contacts_changed"
        )
