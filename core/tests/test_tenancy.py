from __future__ import annotations

import pytest
from celery import shared_task
from django_scopes import ScopeError

from core.models import AuditEntry
from core.services import audit_record
from core.tenancy import OrganizationTask, organization_scope


def test_unscoped_query_on_tenant_model_raises(org):
    with pytest.raises(ScopeError):
        list(AuditEntry.objects.all())


def test_scoped_query_sees_only_its_organization(org, outsider):
    audit_record(organization=org, kind="test", message="mine")
    audit_record(organization=outsider, kind="test", message="theirs")
    with organization_scope(org):
        assert [e.message for e in AuditEntry.objects.all()] == ["mine"]
        # Even an explicit filter for the other tenant finds nothing inside this scope.
        assert not AuditEntry.objects.filter(organization=outsider).exists()
    with organization_scope(outsider):
        assert [e.message for e in AuditEntry.objects.all()] == ["theirs"]


# --- the tenant-aware task base ------------------------------------------------------------


@shared_task(base=OrganizationTask, name="core.tests.audit_messages_probe")
def audit_messages_probe(organization_id: int, suffix: str = "") -> list[str]:
    # No scope entered here: the base class entered the organization's.
    return [entry.message + suffix for entry in AuditEntry.objects.all()]


@shared_task(base=OrganizationTask, name="core.tests.no_organization_probe")
def no_organization_probe(call_id: int) -> int:
    return call_id


def test_organization_task_runs_inside_the_scope_of_its_organization(org, outsider):
    audit_record(organization=org, kind="test", message="mine")
    audit_record(organization=outsider, kind="test", message="theirs")

    assert audit_messages_probe.delay(org.pk).get() == ["mine"]
    assert audit_messages_probe.apply_async(
        kwargs={"organization_id": outsider.pk, "suffix": "!"}
    ).get() == ["theirs!"]
    # The scope ends with the task.
    with pytest.raises(ScopeError):
        list(AuditEntry.objects.all())


def test_organization_task_refuses_arguments_without_an_organization_id(org):
    with pytest.raises(TypeError, match="organization_id"):
        no_organization_probe.delay(7)
    with pytest.raises(TypeError, match="organization_id"):
        audit_messages_probe.delay(str(org.pk))
