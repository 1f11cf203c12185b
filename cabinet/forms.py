from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from django import forms
from django.utils.translation import gettext_lazy as _

from core.models import Organization
from integration.call_options import CallOptions
from integration.models import CallbackSettings, CallSettings
from integration.services import ManagerMappingInput

if TYPE_CHECKING:
    from crm.models import AmoPipeline, AmoUser
    from integration.selectors import ManagerRow
    from pbx.models import PbxNumber

# One line per switch: what happens, and what switching it off costs
# (docs/architecture.md «The seven call settings»).
CALL_SETTING_HINTS = {
    "notify_incoming": _(
        "Менеджер видит всплывающее уведомление о входящем звонке. "
        "Выключено — менеджер не увидит входящий звонок."
    ),
    "create_contact_incoming": _(
        "Звонок с неизвестного номера создаёт контакт с тегом BeelineConnector (и тегом "
        "многоканального номера). Выключено — контакт не создаётся, и звонок с неизвестного "
        "номера не записывается в amoCRM: история останется в Билайн и в журнале кабинета."
    ),
    "log_call_incoming": _(
        "Входящий звонок добавляется в историю звонков amoCRM с записью разговора. "
        "Выключено — входящие звонки в amoCRM не записываются."
    ),
    "notify_outgoing": _(
        "Исходящий звонок показывает менеджеру уведомление в amoCRM. "
        "Выключено — уведомлений об исходящих звонках нет."
    ),
    "create_contact_outgoing": _(
        "Звонок на номер, которого нет в amoCRM, создаёт контакт с тегом BeelineConnector. "
        "Внимание: контакты появятся и для личных звонков сотрудников."
    ),
    "log_call_outgoing": _(
        "Исходящий звонок добавляется в историю звонков amoCRM. Если создание контакта "
        "выключено, звонок на неизвестный номер не записывается."
    ),
    "create_task_missed": _(
        "Пропущенный звонок создаёт задачу «Перезвонить» ответственному менеджеру. "
        "Выключено — о пропущенных звонках напомнит только журнал."
    ),
}


class LoginForm(forms.Form):
    key = forms.CharField(
        label=_("Ключ доступа"),
        max_length=64,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )


class CallSettingsForm(forms.ModelForm):
    class Meta:
        model = CallSettings
        fields = list(CALL_SETTING_HINTS)
        help_texts = CALL_SETTING_HINTS


# One line each for the options beyond the manual
# (docs/architecture.md «Options beyond the manual»).
CALL_OPTION_HINTS = {
    "routing_enabled": _(
        "Звонок известного клиента сначала идёт его ответственному менеджеру: Beetel держит "
        "правила маршрутизации Билайн (ICR) в соответствии с ответственными в amoCRM."
    ),
    "unsorted_enabled": _(
        "Звонок с неизвестного номера попадает в «Неразобранное» выбранной воронки вместо "
        "нового контакта; менеджер принимает или отклоняет его в amoCRM."
    ),
    "lead_enabled": _(
        "Для звонка нового клиента создаётся сделка в выбранной воронке и на выбранном этапе, "
        "с контактом, теми же тегами и ответственным менеджером."
    ),
}


def pipeline_choices(pipelines: list[AmoPipeline]) -> list[tuple[str, str]]:
    return [(str(p.pipeline_id), p.name) for p in pipelines]


def stage_choices(pipelines: list[AmoPipeline]) -> list[tuple[str, Any]]:
    """Stages grouped by pipeline; a value names both: ``<pipeline id>:<stage id>``."""
    return [
        (
            p.name,
            [(f"{p.pipeline_id}:{s['id']}", f"{p.name} → {s['name']}") for s in p.open_statuses],
        )
        for p in pipelines
        if p.open_statuses
    ]


class CallOptionsForm(forms.Form):
    """The options of «Настройки звонков» beyond the seven switches (saved with them)."""

    routing_enabled = forms.BooleanField(
        label=_("Звонок ответственному"),
        required=False,
        help_text=CALL_OPTION_HINTS["routing_enabled"],
    )
    routing_numbers = forms.MultipleChoiceField(
        label=_("На каких входящих номерах"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    unsorted_enabled = forms.BooleanField(
        label=_("Звонки с неизвестных номеров — в «Неразобранное»"),
        required=False,
        help_text=CALL_OPTION_HINTS["unsorted_enabled"],
    )
    unsorted_pipeline = forms.ChoiceField(label=_("Воронка"), required=False)
    lead_enabled = forms.BooleanField(
        label=_("Сделка для нового клиента"),
        required=False,
        help_text=CALL_OPTION_HINTS["lead_enabled"],
    )
    lead_stage = forms.ChoiceField(label=_("Воронка и этап"), required=False)

    def __init__(
        self,
        *args: Any,
        numbers: list[PbxNumber],
        pipelines: list[AmoPipeline],
        settings: CallSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None and not args and kwargs.get("data") is None:
            kwargs["initial"] = {
                "routing_enabled": settings.routing_enabled,
                "routing_numbers": [
                    str(pk) for pk in settings.routing_numbers.values_list("pk", flat=True)
                ],
                "unsorted_enabled": settings.unsorted_enabled,
                "unsorted_pipeline": str(settings.unsorted_pipeline_id or ""),
                "lead_enabled": settings.lead_enabled,
                "lead_stage": (
                    f"{settings.lead_pipeline_id}:{settings.lead_status_id}"
                    if settings.lead_pipeline_id and settings.lead_status_id
                    else ""
                ),
            }
        super().__init__(*args, **kwargs)
        self.pipelines = pipelines
        self.fields["routing_numbers"].choices = [  # type: ignore[attr-defined]
            (str(n.pk), f"+7 {n.phone}" + (f" · {n.name}" if n.name else "")) for n in numbers
        ]
        self.fields["unsorted_pipeline"].choices = [  # type: ignore[attr-defined]
            ("", _("Главная воронка")),
            *pipeline_choices(pipelines),
        ]
        self.fields["lead_stage"].choices = [  # type: ignore[attr-defined]
            ("", _("— выберите этап —")),
            *stage_choices(pipelines),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("routing_enabled") and not data.get("routing_numbers"):
            self.add_error(
                "routing_numbers",
                _("Выберите номера, на которых работает «Звонок ответственному»."),
            )
        if data.get("lead_enabled") and not data.get("lead_stage"):
            self.add_error(
                "lead_stage",
                _("Выберите воронку и этап (кнопка «Загрузить воронки из amoCRM»)."),
            )
        return data

    def options(self) -> CallOptions:
        data = self.cleaned_data
        pipeline_id, status_id = (None, None)
        if data.get("lead_stage"):
            pipeline_raw, status_raw = data["lead_stage"].split(":", 1)
            pipeline_id, status_id = int(pipeline_raw), int(status_raw)
        return CallOptions(
            routing_enabled=bool(data.get("routing_enabled")),
            routing_number_ids=[int(pk) for pk in data.get("routing_numbers") or []],
            unsorted_enabled=bool(data.get("unsorted_enabled")),
            unsorted_pipeline_id=int(data["unsorted_pipeline"])
            if data.get("unsorted_pipeline")
            else None,
            lead_enabled=bool(data.get("lead_enabled")),
            lead_pipeline_id=pipeline_id,
            lead_status_id=status_id,
        )


# --- «Настройки звонков»: call-back tracking (docs/callbacks.md) ---------------------------------

WEEKDAYS = [
    _("Понедельник"),
    _("Вторник"),
    _("Среда"),
    _("Четверг"),
    _("Пятница"),
    _("Суббота"),
    _("Воскресенье"),
]


@dataclass(frozen=True, slots=True)
class WorkdayFields:
    """One row of the working-hours table."""

    name: str
    on: forms.BoundField
    start: forms.BoundField
    end: forms.BoundField
    errors: list[str]


class CallbackSettingsForm(forms.Form):
    """«Перезвон пропущенных»: what counts as a call-back, the SLA, working hours."""

    count_unanswered_attempts = forms.BooleanField(
        label=_("Считать перезвоном и неотвеченный исходящий"),
        required=False,
        help_text=_(
            "Включено — пропущенный закрыт, как только менеджер набрал клиента, даже если тот не "
            "ответил. Выключено — только состоявшийся разговор."
        ),
    )
    target_minutes = forms.IntegerField(
        label=_("Срок перезвона, рабочих минут"),
        min_value=1,
        max_value=7 * 24 * 60,
        help_text=_(
            "Сколько рабочих минут есть у менеджера, чтобы перезвонить; к этому сроку ставится "
            "задача «Перезвонить»."
        ),
    )
    notify_overdue = forms.BooleanField(
        label=_("Уведомлять о просроченном перезвоне"),
        required=False,
        help_text=_(
            "Не перезвонили в срок — ответственный менеджер (и руководитель) получает одно "
            "уведомление в amoCRM, только в рабочее время."
        ),
    )
    supervisor = forms.TypedChoiceField(
        label=_("Руководитель"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_("Пользователь amoCRM, которому уведомление о просрочке приходит тоже."),
    )

    def __init__(
        self,
        *args: Any,
        amo_users: list[AmoUser],
        settings: CallbackSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None:
            kwargs.setdefault("initial", self.initial_from(settings))
        super().__init__(*args, **kwargs)
        supervisor = self.fields["supervisor"]
        assert isinstance(supervisor, forms.TypedChoiceField)
        supervisor.choices = [("", _("Нет")), *((str(u.amo_id), u.name) for u in amo_users)]
        for index in range(7):
            self.fields[f"day_{index}_on"] = forms.BooleanField(required=False)
            self.fields[f"day_{index}_start"] = forms.TimeField(
                required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
            )
            self.fields[f"day_{index}_end"] = forms.TimeField(
                required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
            )

    @staticmethod
    def initial_from(settings: CallbackSettings) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "count_unanswered_attempts": settings.count_unanswered_attempts,
            "target_minutes": settings.target_minutes,
            "notify_overdue": settings.notify_overdue,
            "supervisor": settings.supervisor_amo_user_id,
        }
        for index, hours in enumerate(settings.working_hours):
            initial[f"day_{index}_on"] = hours is not None
            initial[f"day_{index}_start"] = hours[0] if hours else "09:00"
            initial[f"day_{index}_end"] = hours[1] if hours else "18:00"
        return initial

    def workdays(self) -> list[WorkdayFields]:
        return [
            WorkdayFields(
                name=str(WEEKDAYS[index]),
                on=self[f"day_{index}_on"],
                start=self[f"day_{index}_start"],
                end=self[f"day_{index}_end"],
                errors=[str(e) for e in self.errors.get(f"day_{index}_on", [])],
            )
            for index in range(7)
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        hours: list[list[str] | None] = []
        for index in range(7):
            start, end = cleaned.get(f"day_{index}_start"), cleaned.get(f"day_{index}_end")
            if not cleaned.get(f"day_{index}_on"):
                hours.append(None)
            elif start is None or end is None or start >= end:
                self.add_error(
                    f"day_{index}_on", _("Укажите время начала и окончания: начало раньше конца.")
                )
                hours.append(None)
            else:
                hours.append([start.strftime("%H:%M"), end.strftime("%H:%M")])
        if all(day is None for day in hours) and not self.errors:
            self.add_error(None, _("Отметьте хотя бы один рабочий день."))
        cleaned["working_hours"] = hours
        return cleaned

    def values(self) -> dict[str, Any]:
        """What ``callback_settings_update`` takes."""
        data = self.cleaned_data
        return {
            "count_unanswered_attempts": data["count_unanswered_attempts"],
            "target_minutes": data["target_minutes"],
            "notify_overdue": data["notify_overdue"],
            "supervisor_amo_user_id": data["supervisor"],
            "working_hours": data["working_hours"],
        }


class MissedPeriodForm(forms.Form):
    """The period of «Пропущенные» (GET ``days``): today, 7 or 30 days."""

    days = forms.TypedChoiceField(
        choices=[("1", "1"), ("7", "7"), ("30", "30")], coerce=int, required=False
    )

    def period(self) -> int:
        return self.cleaned_data.get("days") or 7


class BeelineTokenForm(forms.Form):
    token = forms.CharField(
        label=_("Beeline API Token"),
        max_length=512,
        strip=True,
        # A rejected token comes back in the field: the admin corrects it instead of pasting
        # again (it is their own token, sent back only to the session that just typed it).
        widget=forms.PasswordInput(
            attrs={"autocomplete": "off", "spellcheck": "false"}, render_value=True
        ),
    )


# Russia's zones first, by offset (the product's customers), then every other IANA zone.
RUSSIAN_TIME_ZONES = [
    ("Europe/Kaliningrad", _("Калининград (UTC+2)")),
    ("Europe/Moscow", _("Москва (UTC+3)")),
    ("Europe/Samara", _("Самара (UTC+4)")),
    ("Asia/Yekaterinburg", _("Екатеринбург (UTC+5)")),
    ("Asia/Omsk", _("Омск (UTC+6)")),
    ("Asia/Novosibirsk", _("Новосибирск (UTC+7)")),
    ("Asia/Krasnoyarsk", _("Красноярск (UTC+7)")),
    ("Asia/Irkutsk", _("Иркутск (UTC+8)")),
    ("Asia/Yakutsk", _("Якутск (UTC+9)")),
    ("Asia/Vladivostok", _("Владивосток (UTC+10)")),
    ("Asia/Magadan", _("Магадан (UTC+11)")),
    ("Asia/Kamchatka", _("Камчатка (UTC+12)")),
]


def _time_zone_choices() -> list[tuple[Any, Any]]:
    russian = {zone for zone, _label in RUSSIAN_TIME_ZONES}
    others = sorted(zone for zone in available_timezones() if zone not in russian)
    return [*RUSSIAN_TIME_ZONES, (_("Другие"), [(zone, zone) for zone in others])]


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Часовой пояс"), choices=_time_zone_choices)


class OrganizationDeleteForm(forms.Form):
    """Deleting is permanent: the admin types the organization's name to confirm."""

    confirmation = forms.CharField(label=_("Название организации"), max_length=255, strip=True)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_confirmation(self) -> str:
        value: str = self.cleaned_data["confirmation"]
        if value != self.organization.name:
            raise forms.ValidationError(
                _("Введите название организации точно так, как оно написано выше.")
            )
        return value


@dataclass(frozen=True, slots=True)
class ManagerLine:
    """What the «Менеджеры» template draws for one number (selects are drawn by hand: 500 rows
    of Django widgets would take seconds to render)."""

    row: ManagerRow
    enabled_name: str
    amo_user_name: str
    enabled: bool
    amo_user_id: int | None
    errors: list[str]


class ManagersForm(forms.Form):
    """The «Менеджеры» table: per abonent, «Вкл.» and «Менеджер Amo CRM» (empty = «Нет»)."""

    def __init__(
        self, *args: Any, rows: list[ManagerRow], amo_users: list[AmoUser], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rows = rows
        choices = [("", _("Нет")), *((str(user.amo_id), user.name) for user in amo_users)]
        for row in rows:
            pk = row.abonent.pk
            self.fields[f"enabled_{pk}"] = forms.BooleanField(required=False, initial=row.enabled)
            self.fields[f"amo_user_{pk}"] = forms.TypedChoiceField(
                choices=choices,
                coerce=int,
                empty_value=None,
                required=False,
                initial=row.amo_user_id,
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        seen: dict[int, str] = {}
        for row in self.rows:
            name = f"amo_user_{row.abonent.pk}"
            amo_id = cleaned.get(name)
            if amo_id is None:
                continue
            if amo_id in seen:
                message = _("Этот менеджер уже выбран для другого номера.")
                self.add_error(name, message)
                if seen[amo_id] not in self.errors:
                    self.add_error(seen[amo_id], message)
            else:
                seen[amo_id] = name
        return cleaned

    def mapping_inputs(self) -> list[ManagerMappingInput]:
        return [
            ManagerMappingInput(
                abonent_id=row.abonent.pk,
                enabled=bool(self.cleaned_data.get(f"enabled_{row.abonent.pk}")),
                amo_user_id=self.cleaned_data.get(f"amo_user_{row.abonent.pk}"),
            )
            for row in self.rows
        ]

    def lines(self) -> list[ManagerLine]:
        lines = []
        for row in self.rows:
            enabled_name = f"enabled_{row.abonent.pk}"
            amo_name = f"amo_user_{row.abonent.pk}"
            if self.is_bound:
                enabled = bool(self.data.get(enabled_name))
                raw = self.data.get(amo_name) or ""
                amo_user_id = int(raw) if raw.isdigit() else None
            else:
                enabled, amo_user_id = row.enabled, row.amo_user_id
            lines.append(
                ManagerLine(
                    row=row,
                    enabled_name=enabled_name,
                    amo_user_name=amo_name,
                    enabled=enabled,
                    amo_user_id=amo_user_id,
                    errors=[str(e) for e in self.errors.get(amo_name, [])],
                )
            )
        return lines


# --- Dashboard: the call journal's filters ------------------------------------------------------

OUTCOME_CHOICES = [
    ("", _("Все")),
    (_("Звонок"), [
        ("answered", _("Отвечен")),
        ("missed", _("Пропущен")),
        ("busy", _("Занято")),
        ("failed", _("Не удался")),
    ]),
    (_("amoCRM"), [
        ("delivered", _("Передан в amoCRM")),
        ("skipped", _("Пропущен по настройке")),
        ("delivery_failed", _("Ошибка передачи")),
        ("queued", _("В очереди")),
        ("undelivered", _("Не доставлен в amoCRM")),
    ]),
]  # fmt: skip


class JournalFilterForm(forms.Form):
    """The journal's filters (GET). Bad values are reported and ignored, never a 500."""

    # type=date inputs take and give ISO dates, whatever the language.
    date_from = forms.DateField(
        label=_("С"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label=_("По"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    direction = forms.ChoiceField(
        label=_("Направление"),
        required=False,
        choices=[("", _("Все")), ("in", _("Входящие")), ("out", _("Исходящие"))],
    )
    outcome = forms.ChoiceField(label=_("Итог"), required=False, choices=OUTCOME_CHOICES)
    manager = forms.TypedChoiceField(
        label=_("Менеджер"), required=False, coerce=int, empty_value=None
    )
    number = forms.CharField(
        label=_("Номер"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "placeholder": _("цифры номера")}),
    )

    def __init__(self, *args: Any, amo_users: list[AmoUser], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.fields["manager"]
        assert isinstance(manager, forms.TypedChoiceField)
        manager.choices = [("", _("Все")), *((str(u.amo_id), u.name) for u in amo_users)]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("Дата «По» раньше даты «С»."))
        return cleaned

    def filters(self) -> dict[str, Any]:
        """The valid filters as ``call_journal`` keywords (invalid ones are left out)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        names = ("date_from", "date_to", "direction", "outcome", "manager", "number")
        return {name: cleaned[name] for name in names if cleaned.get(name) not in (None, "")}


# --- «Организация»: names of the multichannel numbers --------------------------------------------


class NumberNamesForm(forms.Form):
    """«Название» per company number (Beeline's /numbers has none); empty = the phone."""

    def __init__(self, *args: Any, numbers: list[PbxNumber], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.numbers = numbers
        for number in numbers:
            self.fields[self.field_name(number)] = forms.CharField(
                label=number.phone,
                required=False,
                max_length=255,
                initial=number.name,
                widget=forms.TextInput(attrs={"placeholder": number.phone}),
            )

    @staticmethod
    def field_name(number: PbxNumber) -> str:
        return f"name_{number.pk}"

    def rows(self) -> list[tuple[PbxNumber, forms.BoundField]]:
        return [(number, self[self.field_name(number)]) for number in self.numbers]

    def changed_names(self) -> list[tuple[str, str]]:
        """``(numberId, new name)`` for each number whose name was edited."""
        return [
            (number.number_id, self.cleaned_data[self.field_name(number)].strip())
            for number in self.numbers
            if self.cleaned_data[self.field_name(number)].strip() != number.name
        ]
