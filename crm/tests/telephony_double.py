"""A test double at the Beeline boundary for the widget API (WIDGET_TELEPHONY_BACKEND).

It lets crm/tests/test_widget_api.py pin the HTTP/JWT contract of the widget API without the
integration layer. The real backend (integration.widget.TelephonyBackend) is tested against
both emulators in integration/tests/test_widget.py and, in Chromium, in
integration/tests/test_widget_browser.py. Mappings are set per test through ``MAPPINGS``; calls are
recorded in ``CALLS``.
"""

from __future__ import annotations

from core.models import Organization
from core.phones import Phone
from crm.errors import WidgetNoMapping, WidgetNumberDisabled, WidgetTelephonyRefused
from crm.telephony import TelephonyStatus

# (organization id, amo user id) -> (abonent phone, enabled)
MAPPINGS: dict[tuple[int, int], tuple[str, bool]] = {}
CALLS: list[tuple[int, int, str]] = []
REFUSE_WITH: list[str] = []
TOKEN_OK = [True]


def reset() -> None:
    MAPPINGS.clear()
    CALLS.clear()
    REFUSE_WITH.clear()
    TOKEN_OK[:] = [True]


class RecordingTelephony:
    def status(self, *, organization: Organization, amo_user_id: int) -> TelephonyStatus:
        mapping = MAPPINGS.get((organization.pk, amo_user_id))
        if not TOKEN_OK[0]:
            return TelephonyStatus(
                mapped=mapping is not None,
                token_ok=False,
                error_code="token_missing",
                error_message="Не сохранён Beeline API Token.",
            )
        if mapping is None:
            return TelephonyStatus(
                mapped=False,
                token_ok=True,
                error_code="no_mapping",
                error_message="Ваш номер не привязан.",
            )
        return TelephonyStatus(
            mapped=True, abonent_phone=mapping[0], manager_name="Из АТС", token_ok=True
        )

    def call(self, *, organization: Organization, amo_user_id: int, phone: Phone) -> None:
        mapping = MAPPINGS.get((organization.pk, amo_user_id))
        if mapping is None:
            raise WidgetNoMapping("Ваш номер не привязан.")
        if not mapping[1]:
            raise WidgetNumberDisabled("Номер выключен.")
        if REFUSE_WITH:
            raise WidgetTelephonyRefused(REFUSE_WITH[0])
        CALLS.append((organization.pk, amo_user_id, phone.national))
