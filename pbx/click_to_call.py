"""Click-to-call: Beeline rings the abonent, then connects them to the number clicked in amoCRM
(the widget API reaches it through integration's telephony backend).

Keyword-only, typed, ``<entity>_<action>`` (docs/architecture.md «Code conventions»).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from core.models import Organization
from core.phones import phone_parse
from core.services import audit_record
from pbx.credentials import beeline_client_for
from pbx.errors import (
    BeelineError,
    BeelineNotConfigured,
    ClickToCallError,
    ClickToCallRefused,
    InvalidPhoneNumber,
)
from pbx.models import Abonent


@dataclass(frozen=True, slots=True)
class ClickToCallResult:
    phone: str  # E.164 of the number dialled
    beeline_response: str


def click_to_call(*, organization: Organization, abonent: Abonent, phone: str) -> ClickToCallResult:
    """Ask Beeline to ring the abonent, then connect them to ``phone``.

    Raises ``InvalidPhoneNumber`` (status 400) for a number we cannot read,
    ``ClickToCallRefused`` with Beeline's description when Beeline says no, and
    ``ClickToCallError`` (502) when Beeline is unreachable or the token is missing.
    """
    if abonent.organization_id != organization.pk:
        raise ClickToCallError(_("Абонент не принадлежит этой организации."))
    parsed = phone_parse(phone)
    if parsed is None:
        raise InvalidPhoneNumber(_("Не удалось распознать номер телефона «%s».") % phone[:40])
    # Beeline expects 10 national digits for Russian numbers (docs/beeline-api.md §4).
    dial = parsed.national if parsed.e164.startswith("+7") else parsed.e164.lstrip("+")
    try:
        client = beeline_client_for(organization)[1]
    except BeelineNotConfigured as exc:
        raise ClickToCallError(str(exc)) from None
    try:
        answer = client.abonent_call(pattern=abonent.user_id, phone_number=dial)
    except BeelineError as exc:
        # Beeline said no (its description tells the manager why), or could not be asked now.
        failure = ClickToCallRefused if exc.permanent else ClickToCallError
        raise failure(exc.message) from None
    audit_record(
        organization=organization,
        kind="beeline.click_to_call",
        message=_("Звонок из amoCRM: %(abonent)s → %(phone)s")
        % {"abonent": abonent.phone or abonent.user_id, "phone": parsed.e164},
    )
    return ClickToCallResult(phone=parsed.e164, beeline_response=answer)
