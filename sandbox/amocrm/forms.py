from __future__ import annotations

from typing import Any

from django import forms

from sandbox.amocrm.models import Account, User
from sandbox.amocrm.services import SUBDOMAIN_RE


class AccountCreateForm(forms.Form):
    subdomain = forms.CharField(label="Поддомен", max_length=63, help_text="acme → acme.amocrm.ru")
    name = forms.CharField(label="Название компании", max_length=255)
    admin_name = forms.CharField(label="Имя администратора", max_length=255, initial="Админ")
    admin_email = forms.EmailField(label="E-mail администратора", required=False)
    admin_phone = forms.CharField(label="Телефон моб. администратора", required=False)

    def clean_subdomain(self) -> str:
        value = self.cleaned_data["subdomain"].strip().lower()
        if not SUBDOMAIN_RE.match(value):
            raise forms.ValidationError("Только латинские буквы, цифры и дефис")
        if Account.objects.filter(subdomain=value).exists():
            raise forms.ValidationError("Такой поддомен уже есть")
        return value


class UserAddForm(forms.Form):
    name = forms.CharField(label="Имя", max_length=255)
    email = forms.EmailField(label="E-mail", required=False)
    phone = forms.CharField(label="Телефон моб.", required=False, max_length=64)
    is_admin = forms.BooleanField(label="Администратор", required=False)


class ContactAddForm(forms.Form):
    name = forms.CharField(label="Имя", max_length=255)
    phone = forms.CharField(label="Телефон", max_length=64)
    responsible = forms.ModelChoiceField(label="Ответственный", queryset=User.objects.none())
    tags = forms.CharField(label="Теги (через запятую)", required=False)

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["responsible"].queryset = account.users.all()  # type: ignore[attr-defined]


class ContactResponsibleForm(forms.Form):
    responsible = forms.ModelChoiceField(label="Ответственный", queryset=User.objects.none())

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["responsible"].queryset = account.users.all()  # type: ignore[attr-defined]


class PipelineAddForm(forms.Form):
    name = forms.CharField(label="Название воронки", max_length=255)
    stages = forms.CharField(
        label="Этапы (через запятую)", max_length=1000, initial="Новый звонок, В работе"
    )

    def stage_names(self) -> list[str]:
        return [s.strip() for s in self.cleaned_data["stages"].split(",") if s.strip()]


class FaultsForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = [
            "latency_ms",
            "fail_next",
            "fail_status",
            "error_rate",
            "timeout",
            "timeout_seconds",
            "down",
            "ban_mode",
            "unpaid",
            "is_unsorted_on",
        ]

    def clean_fail_status(self) -> int:
        value = int(self.cleaned_data["fail_status"])
        if not 400 <= value <= 599:
            raise forms.ValidationError("Код ошибки: 400–599")
        return value

    def clean_error_rate(self) -> float:
        value = float(self.cleaned_data["error_rate"])
        if not 0 <= value <= 1:
            raise forms.ValidationError("Доля ошибок: от 0 до 1")
        return value

    def clean_latency_ms(self) -> int:
        return min(int(self.cleaned_data["latency_ms"]), 10_000)

    def clean_timeout_seconds(self) -> int:
        return min(int(self.cleaned_data["timeout_seconds"]), 60)


class AuthorizeForm(forms.Form):
    grant = forms.ChoiceField(label="Аккаунт")
    consent = forms.BooleanField(
        label="Подтвердите согласие на передачу данных аккаунта на сторонний сервер",
        required=False,
    )

    def __init__(self, *args: Any, account_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = []
        for user in User.objects.select_related("account").order_by("account_id", "id"):
            role = "администратор" if user.is_admin else "пользователь"
            label = f"{user.account.name} ({user.account.host}) — {user.name}, {role}"
            choices.append((f"{user.account_id}:{user.pk}", label))
            # Installing from an account's page: that account's first administrator.
            if account_id == user.account_id and user.is_admin and not self.initial.get("grant"):
                self.initial["grant"] = f"{user.account_id}:{user.pk}"
        self.fields["grant"].choices = choices  # type: ignore[attr-defined]

    def chosen(self) -> tuple[Account, User]:
        account_id, user_id = (int(x) for x in self.cleaned_data["grant"].split(":"))
        user = User.objects.select_related("account").get(pk=user_id, account_id=account_id)
        return user.account, user
