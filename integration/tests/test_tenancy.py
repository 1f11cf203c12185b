from __future__ import annotations

import pytest
from django_scopes import ScopeError

from integration.models import AuditEntry, CallSettings
from integration.services import audit_record
from integration.tenancy import organization_scope, scopes_disabled


def test_unscoped_query_on_tenant_model_raises(org):
    with pytest.raises(ScopeError):
        list(AuditEntry.objects.all())
    with pytest.raises(ScopeError):
        CallSettings.objects.filter(organization=org).count()


def test_scoped_query_sees_only_its_organization(org, outsider):
    audit_record(organization=org, kind="test", message="mine")
    audit_record(organization=outsider, kind="test", message="theirs")
    with organization_scope(org):
        assert [e.message for e in AuditEntry.objects.all()] == ["mine"]
        # Even an explicit filter for the other tenant finds nothing inside this scope.
        assert not AuditEntry.objects.filter(organization=outsider).exists()
    with organization_scope(outsider):
        assert [e.message for e in AuditEntry.objects.all()] == ["theirs"]


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
