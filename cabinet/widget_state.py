"""The «Звонок Beeline» widget as far as Beetel can tell (shown on «Организация»).

Beetel does not record the widget's own requests (``/amocrm/widget/status`` answers and keeps
nothing), so "the widget last talked to us at …" is not known. What is known honestly: whether
amoCRM installed and authorized the integration (the install callback and our tokens), when,
and which widget version this server ships. The live check is the one the manual gives: open a
contact card in amoCRM and look for «Соединение установлено».
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from core.models import Organization
from crm.selectors import amo_health
from crm.widget_bundle import widget_file

INSTALLED, NEEDS_REAUTH, NOT_INSTALLED = "ok", "warning", "error"


@dataclass(frozen=True, slots=True)
class WidgetState:
    status: str  # ok | warning | error (badge colour)
    label: str
    installed_at: datetime | None
    version: str
    hint: str


def _shipped_version() -> str:
    try:
        manifest = json.loads(widget_file("manifest.json"))
        return str(manifest["widget"]["version"])
    except (FileNotFoundError, KeyError, ValueError):
        return ""


def widget_state(*, organization: Organization) -> WidgetState:
    amo = amo_health(organization=organization)
    check = _(
        "Проверка: откройте в amoCRM любую карточку контакта или сделки и обновите страницу — "
        "справа внизу должна появиться карточка «Соединение установлено»."
    )
    if organization.status == Organization.Status.DISCONNECTED or not amo.connected:
        return WidgetState(
            NOT_INSTALLED,
            _("Не установлен"),
            None,
            _shipped_version(),
            _(
                "amoCRM → Настройки → Интеграции, найдите «Звонок Beeline», нажмите «Установить» "
                "и «Разрешить»."
            ),
        )
    if amo.needs_reauth:
        return WidgetState(
            NEEDS_REAUTH,
            _("Установлен, нужна повторная авторизация"),
            organization.installed_at,
            _shipped_version(),
            _("Авторизуйте интеграцию в amoCRM заново: настройки сохранятся."),
        )
    return WidgetState(
        INSTALLED, _("Установлен"), organization.installed_at, _shipped_version(), check
    )
