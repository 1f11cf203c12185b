"""The widget API's port to the telephony side. crm knows nothing of Beeline: the integration
layer implements ``TelephonyBackend`` and names it in ``settings.WIDGET_TELEPHONY_BACKEND``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from core.models import Organization
from core.phones import Phone


@dataclass(frozen=True, slots=True)
class TelephonyStatus:
    """What the widget's status card needs from the telephony side for one amoCRM user."""

    mapped: bool  # an enabled PBX number is mapped to this amoCRM user
    abonent_phone: str = ""  # the work number shown as «Рабочий телефон: …» (10 digits)
    manager_name: str = ""  # the name the PBX knows (used when amoCRM's is unknown)
    token_ok: bool = False  # the PBX API token is saved and accepted
    error_code: str = ""  # no_mapping | number_disabled | token_missing | token_invalid | …
    error_message: str = ""  # a sentence for the admin/manager, in the UI language

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TelephonyBackend(Protocol):
    def status(self, *, organization: Organization, amo_user_id: int) -> TelephonyStatus:
        """Mapping and PBX health for this amoCRM user. Must not raise for "not mapped"."""
        ...

    def call(self, *, organization: Organization, amo_user_id: int, phone: Phone) -> None:
        """Ask the PBX to ring the user's number, then ``phone``. Raises crm.errors
        WidgetNoMapping (404), WidgetNumberDisabled (409), WidgetBadNumber (400),
        WidgetTelephonyRefused (502, message = the PBX's description)."""
        ...


class TelephonyUnavailable(Exception):
    """WIDGET_TELEPHONY_BACKEND names nothing importable (the integration is not deployed)."""


def telephony_backend() -> TelephonyBackend:
    try:
        backend_class = import_string(settings.WIDGET_TELEPHONY_BACKEND)
    except ImportError as exc:
        raise TelephonyUnavailable(settings.WIDGET_TELEPHONY_BACKEND) from exc
    backend: TelephonyBackend = backend_class()
    return backend
