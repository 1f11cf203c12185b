from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from sandbox.beeline.models import Pbx
from sandbox.beeline.simulator import SCENARIOS, STORIES

DEFAULT_ABONENTS = "9161110001 Иван Петров 201\n9161110002 Мария Соколова 202\n"
DEFAULT_NUMBERS = "4950000001 Отдел продаж *\n4950000002 Основной\n"


class PbxCreateForm(forms.Form):
    name = forms.CharField(label=_("Название"), max_length=200, initial="Тестовая АТС")
    token = forms.CharField(
        label=_("API-токен"),
        max_length=64,
        required=False,
        help_text=_("Пусто — будет создан новый UUID"),
    )
    abonents = forms.CharField(
        label=_("Абоненты"),
        widget=forms.Textarea(attrs={"rows": 4}),
        initial=DEFAULT_ABONENTS,
        help_text=_("По одному в строке: телефон (10 цифр) имя фамилия [добавочный]"),
    )
    numbers = forms.CharField(
        label=_("Входящие номера"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        initial=DEFAULT_NUMBERS,
        help_text=_("По одному в строке: номер название; «*» в конце — многоканальный"),
    )

    def clean_token(self) -> str:
        token: str = self.cleaned_data["token"].strip()
        if token and Pbx.objects.filter(token=token).exists():
            raise forms.ValidationError(_("АТС с таким токеном уже есть"))
        return token

    def clean_abonents(self) -> list[dict[str, Any]]:
        rows = []
        for line_no, line in enumerate(self.cleaned_data["abonents"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3 or not parts[0].isdigit() or len(parts[0]) != 10:
                raise forms.ValidationError(
                    _("Строка %(n)s: ожидается «телефон имя фамилия [добавочный]»"),
                    params={"n": line_no},
                )
            row = {"phone": parts[0], "first_name": parts[1], "last_name": parts[2]}
            if len(parts) > 3:
                row["extension"] = parts[3]
            rows.append(row)
        if not rows:
            raise forms.ValidationError(_("Нужен хотя бы один абонент"))
        return rows

    def clean_numbers(self) -> list[dict[str, Any]]:
        rows = []
        for line_no, line in enumerate(self.cleaned_data["numbers"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            multichannel = parts[-1] == "*"
            if multichannel:
                parts = parts[:-1]
            if not parts or not parts[0].isdigit() or len(parts[0]) != 10:
                raise forms.ValidationError(
                    _("Строка %(n)s: ожидается «номер (10 цифр) название [*]»"),
                    params={"n": line_no},
                )
            rows.append(
                {"phone": parts[0], "name": " ".join(parts[1:]), "multichannel": multichannel}
            )
        return rows


class CallForm(forms.Form):
    scenario = forms.ChoiceField(label=_("Сценарий"), choices=list(SCENARIOS.items()))
    abonent = forms.ChoiceField(label=_("Абонент"))
    external_phone = forms.CharField(
        label=_("Номер клиента"), max_length=20, initial="+79031234567"
    )
    via_number = forms.ChoiceField(label=_("Через номер"), required=False)
    group = forms.MultipleChoiceField(
        label=_("Группа (для многоканального)"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    talk_seconds = forms.IntegerField(label=_("Разговор, с"), min_value=1, initial=30)
    duplicate = forms.BooleanField(label=_("Дублировать события"), required=False)
    reorder = forms.BooleanField(label=_("Перемешать порядок"), required=False)
    drop = forms.BooleanField(label=_("Потерять все события"), required=False)

    def __init__(self, *args: Any, pbx: Pbx, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        abonents = [(a.phone, f"{a.phone} — {a}") for a in pbx.abonents.all()]
        numbers = [(n.phone, str(n)) for n in pbx.numbers.all()]
        cast(forms.ChoiceField, self.fields["abonent"]).choices = abonents
        cast(forms.MultipleChoiceField, self.fields["group"]).choices = abonents
        cast(forms.ChoiceField, self.fields["via_number"]).choices = [
            ("", _("— напрямую —")),
            *numbers,
        ]


class StoryForm(forms.Form):
    """Several calls of one client minutes apart (call-back tracking, docs/callbacks.md)."""

    story = forms.ChoiceField(label=_("История"), choices=list(STORIES.items()))
    abonent = forms.ChoiceField(label=_("Абонент"))
    external_phone = forms.CharField(
        label=_("Номер клиента"), max_length=20, initial="+79031234567"
    )
    minutes = forms.IntegerField(label=_("Через, минут"), min_value=1, max_value=10080, initial=12)
    talk_seconds = forms.IntegerField(label=_("Разговор, с"), min_value=1, initial=151)

    def __init__(self, *args: Any, pbx: Pbx, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["abonent"]).choices = [
            (a.phone, f"{a.phone} — {a}") for a in pbx.abonents.all()
        ]


class FaultsForm(forms.Form):
    latency_ms = forms.IntegerField(label=_("Задержка, мс"), min_value=0, max_value=60_000)
    fail_next = forms.IntegerField(label=_("Ошибка на следующих N запросах"), min_value=0)
    fail_status = forms.IntegerField(label=_("Статус ошибки"), min_value=400, max_value=599)
    error_rate = forms.FloatField(label=_("Доля ошибок 5xx"), min_value=0.0, max_value=1.0)
    timeout = forms.BooleanField(label=_("Таймаут"), required=False)
    down = forms.BooleanField(label=_("Недоступен (503)"), required=False)
