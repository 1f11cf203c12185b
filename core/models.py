"""The tenant and its diagnostic log: what every other app hangs its rows on."""

from __future__ import annotations

from typing import ClassVar
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField
from core.tenancy import TenantModel

DEFAULT_TIME_ZONE = "Europe/Moscow"


def _time_zone_valid(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(_("Неизвестный часовой пояс: %(zone)s"), params={"zone": value})


class Organization(models.Model):
    """One connected amoCRM account: the tenant. Everything else belongs to one of these."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Активна")
        NEEDS_REAUTH = "needs_reauth", _("Нужна повторная авторизация")
        DISCONNECTED = "disconnected", _("Отключена")

    amo_account_id = models.BigIntegerField(_("ID аккаунта amoCRM"), unique=True)
    amo_subdomain = models.CharField(_("поддомен amoCRM"), max_length=255, blank=True)
    amo_host = models.CharField(
        _("хост аккаунта amoCRM"), max_length=255, blank=True, help_text="acme.amocrm.ru"
    )
    name = models.CharField(_("название"), max_length=255)
    status = models.CharField(
        _("статус"), max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    status_reason = models.TextField(_("причина статуса"), blank=True)
    installed_at = models.DateTimeField(_("установлена"), null=True, blank=True)
    # Every date and time the cabinet shows is in this zone (IANA name).
    time_zone = models.CharField(
        _("часовой пояс"), max_length=64, default=DEFAULT_TIME_ZONE, validators=[_time_zone_valid]
    )
    disconnected_at = models.DateTimeField(_("отключена"), null=True, blank=True)
    access_key_hash = models.CharField(max_length=64, unique=True, editable=False)
    access_key_encrypted = EncryptedTextField(editable=False)
    # Bumped by «Сменить ключ»: a cabinet session remembers the generation it unlocked, so every
    # session opened with the old key is logged out (cabinet/access.py).
    access_key_generation = models.PositiveIntegerField(default=1, editable=False)
    # Carried inside every recording link; bumping it revokes all links made before
    # (pbx/recording_links.py).
    recording_links_generation = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("организация")
        verbose_name_plural = _("организации")
        ordering = ["name", "id"]
        permissions = [
            (
                "act_for_customer",
                _("Может действовать от имени клиента (настройки, менеджеры, повтор, токены)"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.amo_subdomain or self.amo_account_id})"

    @property
    def access_key(self) -> str:
        return self.access_key_encrypted

    @property
    def amo_origin(self) -> str:
        """The account's own address, ``https://<subdomain>.amocrm.ru``: who it is (the widget
        token's ``iss``), wherever its pages are served."""
        return f"https://{self.amo_host}" if self.amo_host else ""

    @property
    def amo_url(self) -> str:
        """The account's web pages (``/contacts/detail/<id>`` …): its own host, or the amoCRM
        sandbox while AMOCRM_API_BASE_URL sends amoCRM traffic there (demo, tests), which
        serves the same paths."""
        if not self.amo_host:
            return ""
        return settings.AMOCRM_API_BASE_URL or f"https://{self.amo_host}"


class AuditEntry(TenantModel):
    """What happened to an organization, for Диагностика and support (no secrets, ever)."""

    objects: ClassVar[models.Manager[AuditEntry]]

    class Level(models.TextChoices):
        INFO = "info", _("инфо")
        WARNING = "warning", _("предупреждение")
        ERROR = "error", _("ошибка")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(_("событие"), max_length=64, db_index=True)
    level = models.CharField(_("уровень"), max_length=10, choices=Level.choices, default=Level.INFO)
    message = models.TextField(_("сообщение"))
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("запись журнала")
        verbose_name_plural = _("журнал организации")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"
