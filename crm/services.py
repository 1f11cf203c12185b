"""Writes of the amoCRM half: install, token lifecycle, users cache, disconnect (contacts by
phone are `crm/contacts.py`).

Do not call the services that talk to amoCRM inside ``transaction.atomic()``: they hold row and
advisory locks of their own and must commit what they learn (a new token pair, a revoked state)
even when the caller's work fails.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.models import AuditEntry, Organization
from core.phones import phone_parse
from core.services import audit_record, organization_set_status, organization_upsert_from_amo
from core.task_queue import task_enqueue
from core.tenancy import organization_scope, scopes_disabled
from crm.client import (
    AmoAccount,
    AmoClient,
    AmoUnauthorized,
    StaticToken,
    TokenPair,
    api_base_url,
    oauth_exchange_code,
    oauth_refresh,
    token_probe,
)
from crm.errors import (
    AmoAuthError,
    AmoBanned,
    AmoError,
    AmoInstallError,
    AmoPaused,
    AmoSignatureInvalid,
    AmoUnpaid,
)
from crm.models import AmoAccountState, AmoCredentials, AmoPipeline, AmoUser
from crm.signals import amo_disconnected, amo_installed

logger = logging.getLogger(__name__)

# Refresh before use when the access token has less than this left.
REFRESH_MARGIN = timedelta(minutes=10)
# The beat job refreshes every token with less than this left: access tokens live 24 h, so each
# pair is renewed daily and no refresh token ever nears its 3-month death.
DUE_MARGIN = timedelta(hours=6)
# amoCRM gives the install request 3 s in all (docs/amocrm-api.md §1.2); we keep a margin.
INSTALL_BUDGET = 2.5
REFRESH_TIMEOUT = (3.05, 10.0)

_REFERER_RE = re.compile(r"^[a-z0-9-]+\.(amocrm\.ru|amocrm\.com|kommo\.com)$")

AUDIT_RATE_LIMITED = "amo.rate_limited"
AUDIT_BANNED = "amo.banned"
AUDIT_UNPAID = "amo.unpaid"
AUDIT_ERROR = "amo.error"


# --- hosts -------------------------------------------------------------------------------------


def amo_referer_validate(referer: str) -> str:
    """The account host from the callback's ``referer``, or AmoInstallError.

    Only amoCRM/Kommo account hosts pass (the client secret must never go anywhere else); the
    sandbox host is accepted only while AMOCRM_API_BASE_URL redirects all amoCRM traffic.
    """
    host = (referer or "").strip().lower()
    host = re.sub(r"^https?://", "", host).rstrip("/")
    if _REFERER_RE.match(host):
        return host
    if settings.AMOCRM_API_BASE_URL:
        if host == urlsplit(settings.AMOCRM_API_BASE_URL).netloc.lower():
            return host
    raise AmoInstallError(
        "Запрос пришёл не от amoCRM (неизвестный адрес аккаунта). Установите виджет "
        "из раздела amoCRM «Настройки → Интеграции»."
    )


def _subdomain_of(host: str) -> str:
    return host.split(".", 1)[0]


# --- install -----------------------------------------------------------------------------------


def amo_install_complete(
    *, code: str, referer: str, state: str | None = None, from_widget: bool = False
) -> Organization:
    """The install/re-authorize callback's work: exchange the code, identify the account,
    upsert the organization (a reinstall keeps it, its settings and its key), store the tokens.

    Fits amoCRM's 3-second budget: the code exchange gets most of it; when ``/api/v4/account``
    cannot answer in what is left, the account id comes from the token itself and the name is
    fetched later. Raises AmoInstallError with a message telling the admin what to do.
    """
    started = time.monotonic()
    host = amo_referer_validate(referer)
    if not code or len(code) > 4096:
        raise AmoInstallError("В ссылке нет кода авторизации. Установите виджет заново из amoCRM.")
    base_url = api_base_url(host)
    try:
        pair = oauth_exchange_code(base_url=base_url, code=code, timeout=(1.0, 1.8))
    except AmoAuthError as exc:
        logger.info("amo install: code rejected", extra={"host": host, "status": exc.status})
        raise AmoInstallError(
            "Код авторизации недействителен: он устарел (живёт 20 минут) или уже был "
            "использован. Откройте amoCRM → Настройки → Интеграции → «Звонок Beeline» и "
            "установите виджет ещё раз (или нажмите «Установить в amoCRM» на нашем сайте)."
        ) from exc
    except AmoError as exc:
        logger.warning("amo install: exchange failed", extra={"host": host, "error": str(exc)})
        raise AmoInstallError(
            "amoCRM не ответил вовремя, установка не завершена. Подождите минуту и "
            "установите виджет ещё раз: ваши данные и ключ доступа сохранятся."
        ) from exc

    claims = _unverified_claims(pair.access_token)
    account: AmoAccount | None = None
    remaining = INSTALL_BUDGET - (time.monotonic() - started)
    if remaining > 0.3:
        client = AmoClient(
            base_url=base_url,
            account_key=host,
            tokens=StaticToken(pair.access_token),
            timeout=(min(1.0, remaining), remaining),
        )
        try:
            account = client.account()
        except AmoError as exc:
            logger.info("amo install: account deferred", extra={"host": host, "error": str(exc)})
    account_id = account.id if account else _int(claims.get("account_id"))
    if not account_id:
        raise AmoInstallError(
            "amoCRM не сообщил данные аккаунта. Установите виджет ещё раз через минуту."
        )
    subdomain = (account.subdomain if account else "") or _subdomain_of(host)
    organization, created = organization_upsert_from_amo(
        amo_account_id=account_id,
        name=account.name if account else subdomain,
        subdomain=subdomain,
        host=host,
    )
    _credentials_store(organization=organization, pair=pair)
    amo_resume(organization=organization, quiet=True)
    audit_record(
        organization=organization,
        kind="amo.installed",
        message="Виджет установлен" if created else "Виджет переустановлен / авторизован заново",
        data={"from_widget": from_widget, "host": host},
    )

    def _after_commit() -> None:
        task_enqueue("crm.tasks.amo_users_refresh", organization.pk)
        task_enqueue("crm.tasks.amo_webhooks_subscribe", organization.pk)
        if account is None:
            task_enqueue("crm.tasks.amo_account_sync", organization.pk)
        amo_installed.send(sender=Organization, organization_id=organization.pk, created=created)

    transaction.on_commit(_after_commit)
    return organization


def _unverified_claims(token: str) -> dict[str, Any]:
    # amoCRM signs its access tokens with its own key; we only read account_id/exp from them.
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return claims
    except jwt.PyJWTError:
        return {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _credentials_store(*, organization: Organization, pair: TokenPair) -> AmoCredentials:
    now = timezone.now()
    with organization_scope(organization), transaction.atomic():
        creds, _ = AmoCredentials.objects.select_for_update().get_or_create(
            organization=organization
        )
        creds.access_token = pair.access_token
        creds.refresh_token = pair.refresh_token
        creds.expires_at = now + timedelta(seconds=pair.expires_in)
        creds.refreshed_at = now
        creds.status = AmoCredentials.Status.OK
        creds.last_error = ""
        creds.save()
    return creds


# --- token lifecycle ---------------------------------------------------------------------------


def amo_tokens_refresh(
    *,
    organization: Organization,
    force: bool = False,
    stale_token: str | None = None,
    margin: timedelta = REFRESH_MARGIN,
) -> str:
    """Return a valid access token, refreshing it when needed; single-flight across processes.

    The credentials row is locked (``SELECT … FOR UPDATE``) for the whole exchange, so of many
    workers meeting an expired token exactly one refreshes and the others get its result. The
    new pair is committed before anyone uses it. Without ``force``, nothing is refreshed when
    the stored token differs from ``stale_token`` (someone else already refreshed) or is valid
    for longer than ``margin``. A revoked refresh token marks the organization "needs
    re-authorization" and raises AmoAuthError (callers must not retry it). Transient failures
    raise AmoTransientError and leave the state as it was.
    """
    failure: AmoError | None = None
    token = ""
    with organization_scope(organization), transaction.atomic():
        creds = AmoCredentials.objects.select_for_update().filter(organization=organization).first()
        if creds is None or not creds.refresh_token:
            raise AmoAuthError("amoCRM не подключён: установите виджет.")
        if creds.status == AmoCredentials.Status.NEEDS_REAUTH:
            raise AmoAuthError("Нужна повторная авторизация в amoCRM.")
        now = timezone.now()
        if not force:
            if stale_token is not None and creds.access_token != stale_token:
                return str(creds.access_token)
            if (
                stale_token is None
                and creds.expires_at is not None
                and creds.expires_at > now + margin
            ):
                return str(creds.access_token)
        try:
            # Never repeat a refresh whose answer was lost: the old token may already be dead.
            pair = oauth_refresh(
                base_url=api_base_url(organization.amo_host),
                refresh_token=creds.refresh_token,
                timeout=REFRESH_TIMEOUT,
            )
        except AmoAuthError as exc:
            creds.status = AmoCredentials.Status.NEEDS_REAUTH
            creds.last_error = exc.message
            creds.save(update_fields=["status", "last_error", "updated_at"])
            failure = exc
        except AmoError as exc:
            creds.last_error = exc.message
            creds.save(update_fields=["last_error", "updated_at"])
            failure = exc
        else:
            creds.access_token = pair.access_token
            creds.refresh_token = pair.refresh_token
            creds.expires_at = now + timedelta(seconds=pair.expires_in)
            creds.refreshed_at = now
            creds.last_error = ""
            creds.save()
            token = str(pair.access_token)
    if isinstance(failure, AmoAuthError):
        organization_set_status(
            organization=organization,
            status=Organization.Status.NEEDS_REAUTH,
            reason="amoCRM отозвал доступ (refresh token revoked): авторизуйте виджет заново.",
        )
        raise AmoAuthError(
            "amoCRM отозвал доступ: нужна повторная авторизация.", status=failure.status
        ) from failure
    if failure is not None:
        audit_record(
            organization=organization,
            kind=AUDIT_ERROR,
            level=AuditEntry.Level.WARNING,
            message=f"Не удалось обновить токен amoCRM: {failure.message}",
        )
        raise failure
    logger.info("amo token refreshed", extra={"organization_id": organization.pk})
    return token


def amo_tokens_refresh_due(*, now: Any = None) -> list[int]:
    """Enqueue a refresh for every active organization whose token expires within DUE_MARGIN.

    Returns the organization ids queued. Each refresh is single-flight, so overlapping beats
    are harmless.
    """
    now = now or timezone.now()
    with scopes_disabled():
        org_ids = list(
            AmoCredentials.objects.filter(
                status=AmoCredentials.Status.OK,
                organization__status=Organization.Status.ACTIVE,
                expires_at__lt=now + DUE_MARGIN,
            )
            .exclude(refresh_token="")
            .values_list("organization_id", flat=True)
        )
    for org_id in org_ids:
        task_enqueue("crm.tasks.amo_tokens_refresh", org_id)
    return org_ids


class _DatabaseTokens:
    """TokenSource over AmoCredentials (see AmoClient)."""

    def __init__(self, organization: Organization) -> None:
        self.organization = organization

    def access_token(self) -> str:
        with organization_scope(self.organization):
            creds = AmoCredentials.objects.filter(organization=self.organization).first()
        if creds is None or not creds.access_token:
            raise AmoAuthError("amoCRM не подключён: установите виджет.")
        if creds.status == AmoCredentials.Status.NEEDS_REAUTH:
            raise AmoAuthError("Нужна повторная авторизация в amoCRM.")
        if creds.expires_at is None or creds.expires_at <= timezone.now() + REFRESH_MARGIN:
            return amo_tokens_refresh(organization=self.organization)
        return str(creds.access_token)

    def refresh_after_401(self, *, rejected: str) -> str:
        return amo_tokens_refresh(organization=self.organization, stale_token=rejected)


class _HealthObserver:
    """Counts 429/403/errors for Диагностика and stops traffic on 402/403."""

    def __init__(self, organization: Organization) -> None:
        self.organization = organization
        self._reachable_recorded = False  # one write per client at most while all is well

    def amo_answered(self) -> None:
        if self._reachable_recorded:
            return
        self._reachable_recorded = True
        with organization_scope(self.organization):
            AmoAccountState.objects.filter(
                organization=self.organization, failing_since__isnull=False
            ).update(failing_since=None, last_failure="")

    def _unreachable(self, error: AmoError) -> None:
        self._reachable_recorded = False
        now = timezone.now()
        with organization_scope(self.organization):
            state, _ = AmoAccountState.objects.get_or_create(organization=self.organization)
            AmoAccountState.objects.filter(pk=state.pk).update(
                failing_since=Coalesce(F("failing_since"), Value(now)),
                last_failure=error.message[:1000],
            )

    def amo_error(self, error: AmoError) -> None:
        if isinstance(error, AmoUnpaid):
            amo_pause(
                organization=self.organization,
                reason=AmoAccountState.PauseReason.UNPAID,
                detail=error.message,
            )
        elif isinstance(error, AmoBanned):
            amo_pause(
                organization=self.organization,
                reason=AmoAccountState.PauseReason.BANNED,
                detail=error.message,
            )
        elif error.rate_limited:
            audit_record(
                organization=self.organization,
                kind=AUDIT_RATE_LIMITED,
                level=AuditEntry.Level.WARNING,
                message=error.message,
            )
        elif error.transient:
            self._unreachable(error)
            audit_record(
                organization=self.organization,
                kind=AUDIT_ERROR,
                level=AuditEntry.Level.WARNING,
                message=error.message,
            )


def amo_client(*, organization: Organization) -> AmoClient:
    """The API client of one organization. Raises AmoPaused/AmoAuthError instead of sending
    anything when traffic to the account is stopped."""
    if organization.status == Organization.Status.DISCONNECTED:
        raise AmoAuthError("Виджет отключён в amoCRM.")
    with organization_scope(organization):
        state = AmoAccountState.objects.filter(organization=organization).first()
    if state is not None and state.paused_reason:
        pause_errors: dict[str, type[AmoPaused]] = {
            AmoAccountState.PauseReason.UNPAID: AmoUnpaid,
            AmoAccountState.PauseReason.BANNED: AmoBanned,
        }
        error_class = pause_errors.get(state.paused_reason, AmoPaused)
        raise error_class(f"Запросы к amoCRM приостановлены: {state.get_paused_reason_display()}.")
    return AmoClient(
        base_url=api_base_url(organization.amo_host),
        account_key=organization.amo_host or str(organization.amo_account_id),
        tokens=_DatabaseTokens(organization),
        observer=_HealthObserver(organization),
    )


def amo_pause(*, organization: Organization, reason: str, detail: str = "") -> None:
    """Stop all traffic to the account (402/403) and leave a visible alert; idempotent."""
    with organization_scope(organization):
        state, _ = AmoAccountState.objects.get_or_create(organization=organization)
        changed = state.paused_reason != reason
        state.paused_reason = reason
        state.paused_detail = detail
        if changed:
            state.paused_at = timezone.now()
        state.save()
    kind = AUDIT_UNPAID if reason == AmoAccountState.PauseReason.UNPAID else AUDIT_BANNED
    audit_record(
        organization=organization,
        kind=kind,
        level=AuditEntry.Level.ERROR,
        message=f"Запросы к amoCRM приостановлены: {state.get_paused_reason_display()}.",
    )
    if changed:
        logger.warning(
            "amo traffic paused", extra={"organization_id": organization.pk, "reason": reason}
        )


def amo_resume(*, organization: Organization, quiet: bool = False) -> bool:
    """Let traffic to the account flow again (support action, or a fresh install)."""
    with organization_scope(organization):
        updated = (
            AmoAccountState.objects.filter(organization=organization)
            .exclude(paused_reason="")
            .update(paused_reason="", paused_at=None, paused_detail="")
        )
    if updated and not quiet:
        audit_record(
            organization=organization,
            kind="amo.resumed",
            message="Запросы к amoCRM возобновлены.",
        )
    return bool(updated)


# --- account and users -------------------------------------------------------------------------


def amo_account_sync(*, organization: Organization) -> AmoAccount:
    """Refresh the organization's name/subdomain from ``/api/v4/account``."""
    account = amo_client(organization=organization).account()
    organization_upsert_from_amo(
        amo_account_id=account.id,
        name=account.name,
        subdomain=account.subdomain,
        host=organization.amo_host,
    )
    return account


def amo_users_refresh(*, organization: Organization) -> list[AmoUser]:
    """Reload the amoCRM users cache (with profile phones); users gone from amoCRM become
    inactive. Returns the active users, ordered by name."""
    users = amo_client(organization=organization).users(with_phone=True)
    now = timezone.now()
    with organization_scope(organization), transaction.atomic():
        rows = []
        for user in users:
            phone = phone_parse(user.phone_number)
            rows.append(
                AmoUser(
                    organization=organization,
                    amo_id=user.id,
                    name=user.name[:255],
                    email=(user.email or "")[:255],
                    phone_raw=(user.phone_number or "")[:64],
                    phone_national=phone.national if phone else "",
                    is_admin=user.is_admin,
                    active=user.is_active,
                    fetched_at=now,
                )
            )
        # One upsert for the whole list (the Managers tab's «load» button on big accounts).
        AmoUser.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["organization", "amo_id"],
            update_fields=[
                "name",
                "email",
                "phone_raw",
                "phone_national",
                "is_admin",
                "active",
                "fetched_at",
            ],
        )
        seen = [user.id for user in users]
        AmoUser.objects.filter(organization=organization).exclude(amo_id__in=seen).update(
            active=False, fetched_at=now
        )
        result = list(
            AmoUser.objects.filter(organization=organization, active=True).order_by(
                "name", "amo_id"
            )
        )
    audit_record(
        organization=organization,
        kind="amo.users",
        message=f"Загружено пользователей amoCRM: {len(users)}",
    )
    return result


def amo_pipelines_refresh(*, organization: Organization) -> list[AmoPipeline]:
    """Reload the account's lead pipelines and their stages (``GET /api/v4/leads/pipelines``)
    into the cache «Настройки звонков» offers and checks against. Pipelines gone from amoCRM
    are dropped. Returns them in amoCRM's order."""
    pipelines = amo_client(organization=organization).pipelines()
    now = timezone.now()
    with organization_scope(organization), transaction.atomic():
        AmoPipeline.objects.bulk_create(
            [
                AmoPipeline(
                    organization=organization,
                    pipeline_id=p.id,
                    name=p.name[:255],
                    sort=p.sort,
                    is_main=p.is_main,
                    is_unsorted_on=p.is_unsorted_on,
                    statuses=[
                        {"id": s.id, "name": s.name, "type": s.type}
                        for s in sorted(p.statuses, key=lambda s: (s.sort, s.id))
                    ],
                    fetched_at=now,
                )
                for p in pipelines
            ],
            update_conflicts=True,
            unique_fields=["organization", "pipeline_id"],
            update_fields=["name", "sort", "is_main", "is_unsorted_on", "statuses", "fetched_at"],
        )
        AmoPipeline.objects.filter(organization=organization).exclude(
            pipeline_id__in=[p.id for p in pipelines]
        ).delete()
        return list(AmoPipeline.objects.filter(organization=organization))


# --- disconnect --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisconnectResult:
    organization_id: int | None
    # "disconnected" | "pending" (amoCRM could not confirm yet) | "refused" (amoCRM says our
    # access still works: a replayed or forged hook) | "unknown" (no such organization)
    outcome: str = "disconnected"


def amo_disconnect_signature(*, client_uuid: str, account_id: str | int) -> str:
    """What amoCRM signs: hex HMAC-SHA256(client_secret, "client_uuid|account_id")."""
    return hmac.new(
        settings.AMOCRM_CLIENT_SECRET.encode(),
        f"{client_uuid}|{account_id}".encode(),
        hashlib.sha256,
    ).hexdigest()


def amo_access_revoked(*, organization: Organization) -> bool | None:
    """Ask amoCRM whether our access to the account is really gone.

    GUESS (docs/security.md): uninstalling revokes the integration's tokens before amoCRM calls
    the hook, so ``GET /api/v4/account`` with the stored access token answers 401 and the
    refresh token is refused too. The hook's signature never changes for an account, so the
    signature alone cannot tell a real uninstall from a replayed one; amoCRM's answer can.

    True: revoked (or nothing stored to check with). False: amoCRM still accepts us. None:
    amoCRM could not be asked (network, 5xx, 429): the caller keeps a pending state and retries.
    """
    with organization_scope(organization):
        creds = AmoCredentials.objects.filter(organization=organization).first()
    if creds is None or not creds.access_token:
        return True
    if creds.status == AmoCredentials.Status.NEEDS_REAUTH or not creds.refresh_token:
        return True
    base_url = api_base_url(organization.amo_host)
    try:
        token_probe(
            base_url=base_url, access_token=str(creds.access_token), timeout=REFRESH_TIMEOUT
        )
    except AmoUnauthorized:
        pass  # expired or revoked: the refresh token tells which
    except (AmoUnpaid, AmoBanned):
        return False  # the token was accepted; the account is restricted, not uninstalled
    except AmoError:
        return None
    else:
        return False
    try:
        amo_tokens_refresh(organization=organization, force=True)
    except AmoAuthError:
        return True
    except AmoError:
        return None
    return False


def amo_disconnect(*, account_id: str, client_uuid: str, signature: str) -> DisconnectResult:
    """amoCRM's uninstall hook: verify, confirm with amoCRM, mark the organization disconnected
    and drop its tokens.

    A wrong signature or a foreign client id raises AmoSignatureInvalid and changes nothing.
    Then amoCRM must confirm that our access is revoked (``amo_access_revoked``): if it still
    accepts our tokens nothing changes (outcome "refused"); if it cannot be asked, the request
    is kept pending and re-checked by the beat (``amo_disconnects_confirm_due``). Data other
    than the tokens is kept (docs/architecture.md flow 8). Idempotent.
    """
    expected = amo_disconnect_signature(client_uuid=client_uuid, account_id=account_id)
    if not (
        signature
        and hmac.compare_digest(expected, signature.strip().lower())
        and hmac.compare_digest(client_uuid.encode(), settings.AMOCRM_CLIENT_ID.encode())
    ):
        raise AmoSignatureInvalid("bad signature")
    amo_id = _int(account_id)
    organization = (
        Organization.objects.filter(amo_account_id=amo_id).first() if amo_id is not None else None
    )
    if organization is None:
        return DisconnectResult(organization_id=None, outcome="unknown")
    return _disconnect_confirmed(organization=organization)


def _disconnect_confirmed(*, organization: Organization) -> DisconnectResult:
    org_id = organization.pk
    revoked = amo_access_revoked(organization=organization)
    if revoked is False:
        with organization_scope(organization):
            AmoCredentials.objects.filter(organization=organization).update(
                disconnect_requested_at=None
            )
        audit_record(
            organization=organization,
            kind="amo.disconnect_refused",
            level=AuditEntry.Level.WARNING,
            message="Запрос на отключение не подтверждён: amoCRM принимает наш доступ, "
            "интеграция не отключена.",
        )
        return DisconnectResult(organization_id=org_id, outcome="refused")
    if revoked is None:
        with organization_scope(organization):
            pending = AmoCredentials.objects.filter(
                organization=organization, disconnect_requested_at__isnull=True
            ).update(disconnect_requested_at=timezone.now())
        if pending:
            audit_record(
                organization=organization,
                kind="amo.disconnect_pending",
                level=AuditEntry.Level.WARNING,
                message="Получен запрос на отключение, но amoCRM сейчас не отвечает: "
                "отключим, когда amoCRM подтвердит, что доступ отозван.",
            )
        return DisconnectResult(organization_id=org_id, outcome="pending")
    with organization_scope(organization):
        AmoCredentials.objects.filter(organization=organization).delete()
    organization_set_status(
        organization=organization,
        status=Organization.Status.DISCONNECTED,
        reason="Виджет «Звонок Beeline» отключён в amoCRM.",
    )
    Organization.objects.filter(pk=organization.pk, disconnected_at__isnull=True).update(
        disconnected_at=timezone.now()
    )
    transaction.on_commit(
        lambda: amo_disconnected.send(sender=Organization, organization_id=org_id)
    )
    return DisconnectResult(organization_id=org_id, outcome="disconnected")


def amo_disconnects_confirm_due() -> list[int]:
    """Beat: check again the uninstall hooks amoCRM could not confirm; returns the organization
    ids now disconnected."""
    with scopes_disabled():
        org_ids = list(
            AmoCredentials.objects.filter(disconnect_requested_at__isnull=False).values_list(
                "organization_id", flat=True
            )
        )
    done = []
    for organization in Organization.objects.filter(pk__in=org_ids):
        if _disconnect_confirmed(organization=organization).outcome == "disconnected":
            done.append(organization.pk)
    return done
