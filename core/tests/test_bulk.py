"""rows_update: each row gets its own values of several field types in one statement, and
only rows of the organization it is given."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.bulk import rows_update
from core.models import AuditEntry
from core.services import audit_record
from core.tenancy import scopes_disabled

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_in_one_statement(org, outsider):
    first = audit_record(organization=org, kind="a", message="one")
    second = audit_record(organization=org, kind="b", message="two")
    theirs = audit_record(organization=outsider, kind="c", message="theirs")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first.message, first.data, first.created_at = "first's", {"n": [1, None]}, when
    second.message, second.data, second.created_at = "второе 'quoted'", {}, when
    theirs.message = "overwritten?"

    with CaptureQueriesContext(connection) as queries:
        rows_update(
            [first, second, theirs], ["message", "data", "created_at"], organization_id=org.pk
        )

    assert len(queries) == 1
    with scopes_disabled():
        stored = {e.pk: e for e in AuditEntry.objects.all()}
    assert (stored[first.pk].message, stored[first.pk].data) == ("first's", {"n": [1, None]})
    assert (stored[second.pk].message, stored[second.pk].data) == ("второе 'quoted'", {})
    assert stored[first.pk].created_at == stored[second.pk].created_at == when
    assert stored[theirs.pk].message == "theirs"  # another organization's row is not touched
