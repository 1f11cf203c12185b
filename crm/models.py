"""amoCRM state per organization: tokens, the users cache, the phone→contact index, and whether
traffic to the account is paused. All tenant-owned (fail-closed scopes)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField
from core.models import Organization
from core.tenancy import TenantModel


class AmoCredentials(TenantModel):
    """The OAuth pair of one organization. Refreshed only under ``SELECT … FOR UPDATE``."""

    objects: ClassVar[models.Manager[AmoCredentials]]

    class Status(models.TextChoices):
        OK = "ok", _("действителен")
        NEEDS_REAUTH = "needs_reauth", _("нужна повторная авторизация")

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="amo_credentials"
    )
    access_token = EncryptedTextField(_("access token"), blank=True)
    refresh_token = EncryptedTextField(_("refresh token"), blank=True)
    expires_at = models.DateTimeField(_("действует до"), null=True, blank=True)
    refreshed_at = models.DateTimeField(_("обновлён"), null=True, blank=True)
    status = models.CharField(
        _("состояние"), max_length=20, choices=Status.choices, default=Status.OK, db_index=True
    )
    last_error = models.TextField(_("последняя ошибка"), blank=True)
    # A signed uninstall hook arrived but amoCRM could not yet confirm that our access is really
    # revoked (it was unreachable): the tokens are kept and the check is retried.
    disconnect_requested_at = models.DateTimeField(
        _("запрошено отключение"), null=True, blank=True, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("токены amoCRM")
        verbose_name_plural = _("токены amoCRM")

    def __str__(self) -> str:
        return f"AmoCredentials<{self.organization_id}>"


class AmoAccountState(TenantModel):
    """Whether we stopped calling this account (402 unpaid, 403 banned, revoked tokens)."""

    objects: ClassVar[models.Manager[AmoAccountState]]

    class PauseReason(models.TextChoices):
        NONE = "", _("нет")
        UNPAID = "unpaid", _("аккаунт amoCRM не оплачен (402)")
        BANNED = "banned", _("amoCRM ограничил доступ (403)")
        REVOKED = "revoked", _("доступ отозван")

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="amo_state"
    )
    paused_reason = models.CharField(
        _("приостановлено"), max_length=20, choices=PauseReason.choices, blank=True, default=""
    )
    paused_at = models.DateTimeField(_("приостановлено в"), null=True, blank=True)
    paused_detail = models.TextField(_("подробности"), blank=True)
    # amoCRM answering 5xx or not at all: set by the first such failure, cleared by the next
    # answer (Диагностика «Подключение к amoCRM» is green only while this is empty).
    failing_since = models.DateTimeField(_("не отвечает с"), null=True, blank=True)
    last_failure = models.TextField(_("последний сбой"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("состояние аккаунта amoCRM")
        verbose_name_plural = _("состояния аккаунтов amoCRM")

    def __str__(self) -> str:
        return f"AmoAccountState<{self.organization_id}:{self.paused_reason or 'ok'}>"


class AmoUser(TenantModel):
    """A cached amoCRM user (for «Менеджеры» and mapping suggestions)."""

    objects: ClassVar[models.Manager[AmoUser]]

    amo_id = models.BigIntegerField(_("ID пользователя amoCRM"))
    name = models.CharField(_("имя"), max_length=255, blank=True)
    email = models.CharField(_("e-mail"), max_length=255, blank=True)
    phone_raw = models.CharField(_("телефон в профиле"), max_length=64, blank=True)
    phone_national = models.CharField(_("телефон (10 цифр)"), max_length=15, blank=True)
    is_admin = models.BooleanField(_("администратор"), default=False)
    active = models.BooleanField(_("активен"), default=True)
    fetched_at = models.DateTimeField(_("загружен"))

    class Meta:
        verbose_name = _("пользователь amoCRM")
        verbose_name_plural = _("пользователи amoCRM")
        ordering = ["name", "amo_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "amo_id"], name="crm_amouser_unique")
        ]
        indexes = [models.Index(fields=["organization", "phone_national"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.amo_id})"


class ContactIndex(TenantModel):
    """Phone (national digits) → amoCRM contact id, so we search amoCRM once per number."""

    objects: ClassVar[models.Manager[ContactIndex]]

    phone_national = models.CharField(_("телефон (10 цифр)"), max_length=15)
    contact_id = models.BigIntegerField(_("ID контакта amoCRM"))
    created_by_us = models.BooleanField(_("создан нами"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("контакт по телефону")
        verbose_name_plural = _("индекс контактов")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "phone_national"], name="crm_contactindex_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.phone_national} → {self.contact_id}"


class AmoWebhook(TenantModel):
    """Our subscription to the account's entity webhooks (``POST /api/v4/webhooks``): the
    secret in ``PUBLIC_URL/amocrm/webhooks/<secret>`` and how subscribing went."""

    objects: ClassVar[models.Manager[AmoWebhook]]

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="amo_webhook"
    )
    # Encrypted to build the URL again (re-installs subscribe the same URL), hashed (sha256)
    # for the lookup on every incoming hook.
    secret = EncryptedTextField(editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    settings = models.JSONField(_("события"), default=list, blank=True)
    subscribed_at = models.DateTimeField(_("подписка оформлена"), null=True, blank=True)
    last_error = models.TextField(_("последняя ошибка"), blank=True)
    last_received_at = models.DateTimeField(_("последний вебхук"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("вебхук amoCRM")
        verbose_name_plural = _("вебхуки amoCRM")

    def __str__(self) -> str:
        return f"AmoWebhook<{self.organization_id}>"


class AmoPipeline(TenantModel):
    """A cached lead pipeline of the account with its stages (``statuses``: id, name, type),
    loaded on «Настройки звонков»; the saved choices are checked against it."""

    objects: ClassVar[models.Manager[AmoPipeline]]

    pipeline_id = models.BigIntegerField(_("ID воронки"))
    name = models.CharField(_("название"), max_length=255)
    sort = models.IntegerField(default=0)
    is_main = models.BooleanField(default=False)
    is_unsorted_on = models.BooleanField(default=False)
    statuses = models.JSONField(default=list)
    fetched_at = models.DateTimeField(_("загружена"))

    class Meta:
        verbose_name = _("воронка amoCRM")
        verbose_name_plural = _("воронки amoCRM")
        ordering = ["sort", "pipeline_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "pipeline_id"], name="crm_amopipeline_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def open_statuses(self) -> list[dict[str, object]]:
        """Stages a lead can be created in: not «Неразобранное» (type 1), not won/lost."""
        return [s for s in self.statuses if s.get("type") != 1 and s.get("id") not in (142, 143)]
