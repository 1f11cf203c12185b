"""«Настройки звонков» come with every organization and are tenant data like any other."""

from __future__ import annotations

import pytest
from django_scopes import ScopeError

from core.tenancy import organization_scope, scopes_disabled
from crm.testing import amo_account_make, install
from integration.models import CallSettings


def test_call_settings_are_scoped(org):
    with pytest.raises(ScopeError):
        CallSettings.objects.filter(organization=org).count()


def test_every_organization_gets_default_call_settings(org, outsider):
    with scopes_disabled():
        assert CallSettings.objects.count() == 2
    with organization_scope(org):
        settings = CallSettings.objects.get()
    assert settings.organization_id == org.pk
    assert all(
        getattr(settings, name)
        for name in (
            "notify_incoming",
            "create_contact_incoming",
            "log_call_incoming",
            "notify_outgoing",
            "create_contact_outgoing",
            "log_call_outgoing",
            "create_task_missed",
        )
    )


def test_reinstall_keeps_the_call_settings(sandbox_http, outsider):
    account = amo_account_make()
    org = install(account)
    with organization_scope(org):
        CallSettings.objects.filter(organization=org).update(notify_incoming=False)

    again = install(account)

    assert again.pk == org.pk
    with organization_scope(again):
        assert CallSettings.objects.get(organization=again).notify_incoming is False
