"""The names of the company's numbers («Организация» in the cabinet): Beeline sends none, so the
admin types them, and the pipeline tags contacts with them.

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.models import Organization
from core.services import audit_record
from core.tenancy import organization_scope
from pbx.models import PbxNumber


def pbx_number_rename(*, organization: Organization, number_id: str, name: str) -> PbxNumber:
    """Name a company number the way the PBX portal shows it («Организация» in the cabinet).

    ``number_id`` is Beeline's numberId. GET /numbers carries no name (docs/beeline-api.md §3), so
    the admin types it; the pipeline tags contacts with it (an empty name falls back to the
    phone). Raises ``PbxNumber.DoesNotExist`` for a number that is not the organization's.
    """
    name = " ".join(name.split())[:255]
    with organization_scope(organization):
        number = PbxNumber.objects.get(organization=organization, number_id=number_id)
        if number.name != name:
            number.name = name
            number.save(update_fields=["name"])
            audit_record(
                organization=organization,
                kind="beeline.number_renamed",
                message=_("Номер %(phone)s назван «%(name)s».")
                % {"phone": number.phone, "name": name or number.phone},
            )
    return number
