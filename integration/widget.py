"""The widget API's telephony side (crm.telephony.TelephonyBackend), for real: «Менеджеры»
(ManagerMapping) says which Beeline abonent an amoCRM user is, pbx rings it.

Named in settings.WIDGET_TELEPHONY_BACKEND; crm stays ignorant of Beeline.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from core.models import Organization
from core.phones import Phone
from core.tenancy import organization_scope
from crm.errors import (
    WidgetBadNumber,
    WidgetNoMapping,
    WidgetNumberDisabled,
    WidgetTelephonyRefused,
)
from crm.telephony import TelephonyStatus
from integration.models import ManagerMapping
from pbx.click_to_call import click_to_call
from pbx.errors import ClickToCallError, InvalidPhoneNumber
from pbx.models import BeelineCredentials
from pbx.selectors import credentials_for


def _mapping(organization: Organization, amo_user_id: int) -> ManagerMapping | None:
    """The user's mapping, enabled or not (a disabled one explains itself to the manager)."""
    with organization_scope(organization):
        return (
            ManagerMapping.objects.select_related("abonent")
            .filter(organization=organization, amo_user_id=amo_user_id)
            .order_by("-enabled", "pk")
            .first()
        )


class TelephonyBackend:
    def status(self, *, organization: Organization, amo_user_id: int) -> TelephonyStatus:
        credentials = credentials_for(organization=organization)
        mapping = _mapping(organization, amo_user_id)
        mapped = mapping is not None and mapping.enabled and mapping.abonent.active
        phone = mapping.abonent.phone if mapping is not None else ""
        name = mapping.abonent.full_name if mapping is not None else ""
        if credentials is None or not credentials.api_token:
            return TelephonyStatus(
                mapped=mapped,
                abonent_phone=phone,
                manager_name=name,
                token_ok=False,
                error_code="token_missing",
                error_message=_(
                    "Не сохранён Beeline API Token: администратор вставляет его в личном "
                    "кабинете, вкладка «Настройки ключей»."
                ),
            )
        if credentials.status == BeelineCredentials.Status.REJECTED:
            return TelephonyStatus(
                mapped=mapped,
                abonent_phone=phone,
                manager_name=name,
                token_ok=False,
                error_code="token_invalid",
                error_message=_("Beeline не принимает API Token: %(e)s")
                % {"e": credentials.last_error or _("создайте новый токен в портале Beeline")},
            )
        if mapping is None or not mapping.abonent.active:
            return TelephonyStatus(
                mapped=False,
                token_ok=True,
                error_code="no_mapping",
                error_message=_(
                    "Ваш номер Beeline не привязан к пользователю amoCRM: администратор выбирает "
                    "менеджера на вкладке «Менеджеры» личного кабинета."
                ),
            )
        if not mapping.enabled:
            return TelephonyStatus(
                mapped=False,
                abonent_phone=phone,
                manager_name=name,
                token_ok=True,
                error_code="number_disabled",
                error_message=_(
                    "Ваш номер Beeline выключен на вкладке «Менеджеры» (колонка «Вкл.»)."
                ),
            )
        return TelephonyStatus(mapped=True, abonent_phone=phone, manager_name=name, token_ok=True)

    def call(self, *, organization: Organization, amo_user_id: int, phone: Phone) -> None:
        mapping = _mapping(organization, amo_user_id)
        if mapping is None or not mapping.abonent.active:
            raise WidgetNoMapping(_("Ваш номер Beeline не привязан на вкладке «Менеджеры»."))
        if not mapping.enabled:
            raise WidgetNumberDisabled(_("Ваш номер Beeline выключен на вкладке «Менеджеры»."))
        try:
            click_to_call(organization=organization, abonent=mapping.abonent, phone=phone.e164)
        except InvalidPhoneNumber as exc:
            raise WidgetBadNumber(exc.message) from None
        except ClickToCallError as exc:
            raise WidgetTelephonyRefused(exc.message) from None
