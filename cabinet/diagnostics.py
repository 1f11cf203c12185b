"""«Диагностика»: the checklist, each item with what is wrong and how to fix it.

Built only from what the services can tell: ``pbx_health`` (Beeline), ``amo_health`` (amoCRM)
and the manager mapping. ``diagnostics_refresh`` first asks both APIs again (the «Проверить»
button), so the checklist reflects the live state rather than the last background run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from cabinet import formatting
from core.models import AuditEntry, Organization
from core.tenancy import organization_scope
from crm.errors import AmoError
from crm.selectors import AmoHealth, amo_health, amo_users_for
from crm.services import amo_users_refresh
from integration.delivery.rules import AUDIT_LEAD_REFUSED, AUDIT_UNSORTED_OFF
from integration.routing import RoutingHealth, routing_health
from integration.selectors import (
    ManagerRow,
    UndeliveredCalls,
    call_settings_for,
    calls_undelivered,
    manager_rows_for,
)
from pbx.connection import pbx_sync
from pbx.errors import BeelineError, BeelineNotConfigured
from pbx.selectors import PbxHealth, pbx_health
from pbx.subscriptions import subscription_ensure

logger = logging.getLogger(__name__)

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    title: str
    status: str  # ok | warning | error
    detail: str
    hint: str = ""
    link_url: str = ""
    link_label: str = ""
    items_title: str = ""
    items: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == OK


def _when(value: datetime | None) -> str:
    return formatting.when(value) if value else "—"


def _listed(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" … (+{len(items) - limit})" if len(items) > limit else "")


def diagnostics_refresh(*, organization: Organization) -> list[str]:
    """Ask Beeline and amoCRM again (sync abonents and numbers, make sure the event
    subscription exists, reload amoCRM users). Failures are not raised: they are recorded by the
    services and show up in the checklist; the returned list says which calls failed."""
    problems = []
    try:
        pbx_sync(organization=organization)
        subscription_ensure(organization=organization)
    except BeelineNotConfigured:
        pass  # the checklist says the token is missing
    except BeelineError as exc:
        problems.append(_("Билайн: %(reason)s") % {"reason": exc.message})
    try:
        amo_users_refresh(organization=organization)
    except AmoError as exc:
        problems.append(_("amoCRM: %(reason)s") % {"reason": exc.message})
    return problems


def diagnostic_checks(*, organization: Organization) -> list[Check]:
    install_url = reverse("cabinet:install")
    amo = amo_health(organization=organization, reauthorize_url=install_url)
    pbx = pbx_health(organization=organization)
    amo_users = amo_users_for(organization=organization)
    rows = manager_rows_for(organization=organization, amo_users=amo_users)
    org_id = organization.pk
    keys_url = reverse("cabinet:keys", args=[org_id])
    managers_url = reverse("cabinet:managers", args=[org_id])
    return [
        _amo_connection(amo, install_url),
        _amo_limits(amo),
        _beeline_token(pbx, keys_url),
        _beeline_subscription(pbx, keys_url),
        _abonents(pbx),
        _multichannel(pbx),
        _mapping(rows, managers_url),
        _profile_phones(rows, amo, managers_url),
        _beeline_events(pbx),
        _undelivered(
            calls_undelivered(organization=organization),
            reverse("cabinet:dashboard", args=[org_id]) + "?outcome=undelivered#journal",
        ),
        _routing(
            routing_health(organization=organization),
            reverse("cabinet:call_settings", args=[org_id]),
        ),
        _new_callers(organization, reverse("cabinet:call_settings", args=[org_id])),
    ]


def _amo_connection(amo: AmoHealth, install_url: str) -> Check:
    title = _("Подключение к amoCRM")
    if not amo.connected:
        return Check(
            "amo_connection",
            title,
            ERROR,
            _("Интеграция не авторизована в amoCRM."),
            _("Установите виджет «Звонок Beeline» в amoCRM и нажмите «Разрешить»."),
            amo.reauthorize_url or install_url,
            _("Установить в amoCRM"),
        )
    if amo.needs_reauth:
        return Check(
            "amo_connection",
            title,
            ERROR,
            amo.last_error or _("Доступ к amoCRM отозван или истёк."),
            _("Авторизуйте интеграцию в amoCRM заново: настройки сохранятся."),
            amo.reauthorize_url or install_url,
            _("Авторизовать заново"),
        )
    if amo.paused_reason:
        return Check(
            "amo_connection",
            title,
            ERROR,
            _("Обмен с amoCRM приостановлен: %(reason)s") % {"reason": amo.paused_label},
            _(
                "Оплатите аккаунт amoCRM или обратитесь в поддержку amoCRM; после этого обмен "
                "возобновит поддержка Beetel."
            ),
        )
    if amo.failing_since:
        return Check(
            "amo_connection",
            title,
            ERROR,
            _("amoCRM не отвечает с %(since)s: %(reason)s")
            % {"since": _when(amo.failing_since), "reason": amo.last_failure},
            _(
                "Это сбой на стороне amoCRM, настройки менять не нужно. Звонки ждут в очереди и "
                "уйдут в amoCRM сами, когда он снова ответит. «Проверить» спросит amoCRM сейчас."
            ),
        )
    detail = _("Токен действует до %(expires)s, обновлён %(refreshed)s.") % {
        "expires": _when(amo.expires_at),
        "refreshed": _when(amo.refreshed_at),
    }
    if not amo.token_valid:
        return Check(
            "amo_connection",
            title,
            WARNING,
            f"{detail} {amo.last_error}".strip(),
            _(
                "Токен обновляется автоматически; если предупреждение не проходит, нажмите "
                "«Проверить»."
            ),
        )
    return Check("amo_connection", title, OK, detail)


def _amo_limits(amo: AmoHealth) -> Check:
    title = _("Ограничения amoCRM за 24 часа")
    detail = _(
        "Превышений лимита запросов (429): %(rate)s; блокировок (402/403): %(banned)s; "
        "ошибок: %(errors)s."
    ) % {"rate": amo.rate_limited_24h, "banned": amo.banned_24h, "errors": amo.errors_24h}
    if amo.banned_24h:
        return Check(
            "amo_limits",
            title,
            ERROR,
            detail,
            _(
                "amoCRM ограничил доступ к аккаунту. Проверьте оплату аккаунта и обратитесь в "
                "поддержку amoCRM."
            ),
        )
    if amo.rate_limited_24h or amo.errors_24h:
        hints = []
        if amo.rate_limited_24h:
            hints.append(
                _(
                    "Частые 429 значат, что к аккаунту обращаются и другие интеграции: лимит "
                    "amoCRM — 7 запросов в секунду на аккаунт."
                )
            )
        if amo.errors_24h:
            hints.append(
                _(
                    "Ошибки — это сбои на стороне amoCRM (ответы 5xx или нет ответа), а не "
                    "превышение лимита; запросы повторяются автоматически."
                )
            )
        return Check("amo_limits", title, WARNING, detail, " ".join(hints))
    return Check("amo_limits", title, OK, detail)


def _beeline_token(pbx: PbxHealth, keys_url: str) -> Check:
    title = _("Токен Beeline API")
    if not pbx.token_saved:
        return Check(
            "beeline_token",
            title,
            ERROR,
            _("Токен не сохранён."),
            _(
                "В портале Билайн: «Настройки» → «API» → версия 2.0, «Интеграция по API», "
                "«Создать новый токен». Вставьте его в «Настройки ключей»."
            ),
            keys_url,
            _("Настройки ключей"),
        )
    if not pbx.token_valid:
        return Check(
            "beeline_token",
            title,
            ERROR,
            pbx.last_error or _("Билайн не принимает токен."),
            _(
                "Создайте в портале Билайн новый токен, который нигде раньше не использовался, и "
                "сохраните его в «Настройки ключей»."
            ),
            keys_url,
            _("Настройки ключей"),
        )
    return Check(
        "beeline_token",
        title,
        OK,
        _("Токен принят, проверен %(when)s.") % {"when": _when(pbx.verified_at)},
    )


def _beeline_subscription(pbx: PbxHealth, keys_url: str) -> Check:
    title = _("Подписка на события Билайн")
    last = (
        _("последнее событие: %(when)s") % {"when": _when(pbx.last_event_at)}
        if pbx.last_event_at
        else _("событий ещё не было")
    )
    if not pbx.subscription_active:
        return Check(
            "beeline_subscription",
            title,
            ERROR,
            _("Подписки нет: Билайн не сообщает нам о звонках (%(last)s).") % {"last": last},
            _(
                "Подписка оформляется при сохранении токена и продлевается автоматически. Нажмите "
                "«Проверить»; если ошибка останется, сохраните токен заново."
            ),
            keys_url,
            _("Настройки ключей"),
        )
    return Check(
        "beeline_subscription",
        title,
        OK,
        _("Активна до %(expires)s; %(last)s.")
        % {"expires": _when(pbx.subscription_expires_at), "last": last},
    )


def _abonents(pbx: PbxHealth) -> Check:
    title = _("Абоненты Билайн")
    if not pbx.token_saved:
        return Check("abonents", title, WARNING, _("Абоненты загрузятся после сохранения токена."))
    if not pbx.abonent_count:
        return Check(
            "abonents",
            title,
            ERROR,
            _("В АТС нет ни одного абонента с номером."),
            _(
                "В портале Билайн: «Номера» → «Абоненты», кнопка «Добавить сотрудников». Нужен "
                "хотя бы один номер."
            ),
        )
    detail = ngettext("%(count)s абонент в АТС.", "Абонентов в АТС: %(count)s.", pbx.abonent_count)
    return Check("abonents", title, OK, detail % {"count": pbx.abonent_count})


def _multichannel(pbx: PbxHealth) -> Check:
    title = _("Номера абонентов среди многоканальных")
    phones = pbx.abonent_phones_also_multichannel
    if phones:
        return Check(
            "multichannel",
            title,
            ERROR,
            _("Эти номера есть и в «Абоненты», и в «Многоканальные номера»: %(phones)s.")
            % {"phones": _listed(phones)},
            _(
                "Виджет не работает с многоканальными номерами: номер из «Абоненты» не должен "
                "входить в «Многоканальные номера». Уберите его оттуда в портале Билайн."
            ),
        )
    return Check("multichannel", title, OK, _("Пересечений нет."))


def _mapping(rows: list[ManagerRow], managers_url: str) -> Check:
    title = _("Сопоставление менеджеров")
    mapped = [r for r in rows if r.mapping and r.mapping.enabled and r.amo_user]
    unmapped = [
        r.abonent.phone or r.abonent.user_id
        for r in rows
        if not (r.mapping and r.mapping.amo_user_id and r.amo_user) and r.enabled
    ]
    detail = _("Сопоставлено номеров: %(mapped)s из %(total)s.") % {
        "mapped": len(mapped),
        "total": len(rows),
    }
    if rows and not mapped:
        return Check(
            "mapping",
            title,
            ERROR,
            detail,
            _(
                "Откройте «Менеджеры», загрузите менеджеров amoCRM, выберите менеджера для "
                "каждого номера и нажмите «Сохранить»."
            ),
            managers_url,
            _("Менеджеры"),
        )
    if unmapped:
        return Check(
            "mapping",
            title,
            WARNING,
            f"{detail} " + _("Без менеджера: %(phones)s.") % {"phones": _listed(unmapped)},
            _(
                "Звонки этих номеров попадут в amoCRM без ответственного, уведомлений не будет. "
                "Выберите менеджера или снимите «Вкл.»."
            ),
            managers_url,
            _("Менеджеры"),
        )
    if not rows:
        return Check("mapping", title, WARNING, _("Нет номеров для сопоставления."))
    return Check("mapping", title, OK, detail)


def _profile_phones(rows: list[ManagerRow], amo: AmoHealth, managers_url: str) -> Check:
    """The widget's «Рабочий телефон» comes from the profile: a mapped manager whose profile
    phone is missing or differs from the mapped number sees an error card."""
    title = _("Телефоны в профилях amoCRM")
    if not amo.users_count:
        return Check(
            "profile_phones",
            title,
            WARNING,
            _("Менеджеры amoCRM ещё не загружены."),
            _("Откройте «Менеджеры» и нажмите «Загрузить менеджеров amoCRM»."),
            managers_url,
            _("Менеджеры"),
        )
    missing, mismatched = [], []
    for row in rows:
        user = row.amo_user
        if user is None or not (row.mapping and row.mapping.enabled):
            continue
        if not user.phone_national:
            missing.append(user.name)
        elif user.phone_national != row.abonent.phone:
            mismatched.append(f"{user.name} ({user.phone_national} ≠ {row.abonent.phone})")
    if not (missing or mismatched):
        return Check(
            "profile_phones", title, OK, _("У всех выбранных менеджеров номер указан верно.")
        )
    parts = []
    if missing:
        parts.append(_("не указан телефон: %(names)s") % {"names": _listed(missing)})
    if mismatched:
        parts.append(
            _("телефон не совпадает с номером Билайн: %(names)s") % {"names": _listed(mismatched)}
        )
    return Check(
        "profile_phones",
        title,
        WARNING,
        "; ".join(parts).capitalize() + ".",
        _(
            "В профиле amoCRM, третье поле «Телефон моб.»: 10 цифр без 8, 7, +7, пробелов и "
            "дефисов, например 9613314538. Номер должен быть в «Абоненты» в АТС Билайн. Затем "
            "нажмите «Загрузить менеджеров amoCRM»."
        ),
        managers_url,
        _("Менеджеры"),
    )


def _beeline_events(pbx: PbxHealth) -> Check:
    title = _("События Билайн за 24 часа")
    detail = _("Получено событий: %(events)s, с ошибкой обработки: %(errors)s.") % {
        "events": pbx.events_24h,
        "errors": pbx.event_errors_24h,
    }
    # Malformed events are set aside with the reason; their calls are built from the others.
    quarantined = tuple(
        _("%(when)s · %(type)s · звонок %(call)s — %(reason)s")
        % {
            "when": _when(event.received_at),
            "type": event.event_type or "—",
            "call": event.ext_tracking_id or "—",
            "reason": event.reason,
        }
        for event in pbx.events_quarantined
    )
    if pbx.event_errors_24h:
        return Check(
            "beeline_events",
            title,
            WARNING,
            detail,
            _("Часть событий не удалось обработать; поддержка Beetel видит подробности."),
            items_title=_("Отложены как ошибочные (звонки собраны без них):")
            if quarantined
            else "",
            items=quarantined,
        )
    return Check("beeline_events", title, OK, detail)


def _undelivered(calls: UndeliveredCalls, journal_url: str) -> Check:
    """Every call Beeline reported must end in amoCRM, skipped by a setting, or here: the same
    rows the journal shows, so a call the journal shows as not delivered is never green here."""
    title = _("Недоставленные звонки")
    link = _("Журнал недоставленных звонков")
    if not calls.total:
        return Check(
            "undelivered",
            title,
            OK,
            _("Все звонки переданы в amoCRM или пропущены по настройке."),
        )
    if not calls.problems:
        return Check(
            "undelivered",
            title,
            WARNING,
            ngettext(
                "%(count)s звонок передаётся в amoCRM прямо сейчас.",
                "Звонков передаётся в amoCRM прямо сейчас: %(count)s.",
                calls.queued,
            )
            % {"count": calls.queued},
            _("Обновите страницу через минуту."),
            journal_url,
            link,
        )
    detail = _(
        "С ошибкой: %(failed)s; ждут повтора после сбоя: %(retrying)s; приостановлены: "
        "%(paused)s; ждут дольше 15 минут: %(stale)s; передаются сейчас: %(queued)s "
        "(самый старый с %(oldest)s)."
    ) % {
        "failed": calls.failed,
        "retrying": calls.retrying,
        "paused": calls.paused,
        "stale": calls.stale,
        "queued": calls.queued,
        "oldest": _when(calls.oldest_at),
    }
    if calls.last_error:
        detail += " " + _("Последняя ошибка: %(error)s") % {"error": calls.last_error}
    if calls.paused:
        hint = _(
            "Передача приостановлена, пока amoCRM не принимает запросы (оплата, блокировка или "
            "отозванный доступ — см. «Подключение к amoCRM»). Потом звонки уйдут сами."
        )
    elif calls.retrying and not calls.failed:
        hint = _(
            "amoCRM не принял звонки из-за сбоя на своей стороне; повторы идут сами (до суток), "
            "затем звонок получит кнопку «Повторить» в журнале."
        )
    else:
        hint = _(
            "Откройте журнал: у каждого звонка указана причина. Исправьте её и нажмите «Повторить»."
        )
    return Check(
        "undelivered",
        title,
        ERROR if calls.failed else WARNING,
        detail,
        hint,
        journal_url,
        link,
    )


def _routing(health: RoutingHealth, settings_url: str) -> Check:
    """«Звонок ответственному»: how many rules are in Beeline, waiting or refused (with
    Beeline's reason), when amoCRM was last fully compared, and whether its hooks reach us."""
    title = _("Звонок ответственному")
    if not health.enabled and not (health.synced or health.pending or health.refused):
        return Check("routing", title, OK, _("Выключено."))
    if not health.enabled:
        return Check(
            "routing",
            title,
            WARNING,
            _("Выключено; правила Beetel удаляются из Билайн (осталось: %(n)s).")
            % {"n": health.synced + health.pending + health.refused},
            _("Удаление повторяется автоматически, пока Билайн не примет его."),
        )
    parts = [
        _("Правил в Билайн: %(synced)s; ожидают отправки: %(pending)s; отклонено: %(refused)s.")
        % {"synced": health.synced, "pending": health.pending, "refused": health.refused},
        _("Номера: %(numbers)s.") % {"numbers": ", ".join(health.numbers) or "—"},
        _("Полная сверка с amoCRM: %(when)s.") % {"when": _when(health.full_sync_at)},
    ]
    if health.webhook_subscribed_at:
        parts.append(
            _("Вебхуки amoCRM: подписка с %(since)s, последний получен %(last)s.")
            % {
                "since": _when(health.webhook_subscribed_at),
                "last": _when(health.webhook_last_received_at),
            }
        )
    else:
        parts.append(
            _("Вебхуки amoCRM не подключены: %(reason)s")
            % {"reason": health.webhook_error or _("подписка ещё не оформлена.")}
        )
    refused = [
        f"{rule.phone_e164 or rule.phone_national} → {rule.extension or '—'}: {rule.last_error}"
        for rule in health.refused_rules
    ] + [f"ICR {n.phone_national}: {n.last_error}" for n in health.numbers_refused]
    if refused:
        parts.append(_("Отклонены: %(rules)s") % {"rules": "; ".join(refused[:5])})
    detail = " ".join(parts)
    if health.last_error and health.stale:
        return Check(
            "routing",
            title,
            ERROR,
            f"{detail} " + _("Ошибка: %(e)s") % {"e": health.last_error},
            _("Проверьте подключение к amoCRM и токен Билайн выше; сверка повторится сама."),
            settings_url,
            _("Настройки звонков"),
        )
    if refused or health.stale or not health.webhook_subscribed_at:
        return Check(
            "routing",
            title,
            WARNING,
            detail,
            _(
                "Отклонённые правила Билайн объяснил сам: чаще всего у менеджера нет "
                "добавочного номера в АТС или правило для номера уже создано вручную."
            ),
            settings_url,
            _("Настройки звонков"),
        )
    return Check("routing", title, OK, detail)


def _new_callers(organization: Organization, settings_url: str) -> Check:
    """«Неразобранное» and leads: warn when amoCRM refused what the options ask for."""
    title = _("Неразобранное и сделки")
    settings = call_settings_for(organization=organization)
    if not (settings.unsorted_enabled or settings.lead_enabled):
        return Check("new_callers", title, OK, _("Не используются."))
    since = timezone.now() - timedelta(days=7)
    with organization_scope(organization):
        recent = AuditEntry.objects.filter(organization=organization, created_at__gte=since)
        unsorted_off = (
            recent.filter(kind=AUDIT_UNSORTED_OFF).order_by("-created_at").first()
            if settings.unsorted_enabled
            else None
        )
        lead_refused = (
            recent.filter(kind=AUDIT_LEAD_REFUSED).order_by("-created_at").first()
            if settings.lead_enabled
            else None
        )
    if unsorted_off is not None:
        return Check(
            "new_callers",
            title,
            WARNING,
            _(
                "В аккаунте amoCRM выключено «Неразобранное»: звонки с неизвестных номеров "
                "записываются в новые контакты (последний раз %(when)s)."
            )
            % {"when": _when(unsorted_off.created_at)},
            _(
                "Включите «Неразобранное» в настройках воронки amoCRM или выключите эту опцию "
                "в «Настройки звонков»."
            ),
            settings_url,
            _("Настройки звонков"),
        )
    if lead_refused is not None:
        return Check(
            "new_callers",
            title,
            WARNING,
            lead_refused.message,
            _("Загрузите воронки из amoCRM и выберите этап заново."),
            settings_url,
            _("Настройки звонков"),
        )
    return Check("new_callers", title, OK, _("amoCRM принимает звонки новых клиентов."))
