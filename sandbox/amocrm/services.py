"""Writes of the emulated amoCRM, and the Python API tests, the demo and other helpers use.

Public API (names and signatures are relied on elsewhere): ``account_create``,
``oauth_code_issue``, ``install_run``, ``uninstall_run``, ``tokens_issue``,
``access_token_expire``, ``faults_set``; for test data ``contact_create``, ``lead_create``,
``task_create``, ``note_add``. Read the received data through the related names
``account.contacts``, ``account.leads``, ``account.calls``, ``account.notes``,
``account.tasks``, ``account.events``, ``account.unsorted``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from sandbox.amocrm import clock, ratelimit, tokens, webhooks
from sandbox.amocrm.models import (
    Account,
    AuthorizationCode,
    Call,
    Contact,
    ContactPhone,
    HookCall,
    Installation,
    Integration,
    Lead,
    Note,
    Tag,
    Task,
    TokenPair,
    UnsortedEntry,
    User,
)
from sandbox.amocrm.pipelines import LOST, WON, main_pipeline, pipeline_get

logger = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(minutes=20)
ACCESS_TOKEN_LIFETIME = timedelta(hours=24)
REFRESH_TOKEN_LIFETIME = timedelta(days=90)
HOOK_TIMEOUT_SECONDS = 3
SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# --- Integration and accounts ---------------------------------------------------------------


def integration_get() -> Integration:
    """Our integration as amoCRM knows it, kept in step with the AMOCRM_* settings."""
    if not settings.AMOCRM_CLIENT_ID or not settings.AMOCRM_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "The amoCRM sandbox needs AMOCRM_CLIENT_ID and AMOCRM_CLIENT_SECRET to be set"
        )
    defaults = {
        "client_secret": settings.AMOCRM_CLIENT_SECRET,
        "redirect_uri": f"{settings.PUBLIC_URL}/amocrm/oauth/callback",
        "disconnect_hook_url": f"{settings.PUBLIC_URL}/amocrm/disconnect",
    }
    integration, created = Integration.objects.get_or_create(
        client_id=settings.AMOCRM_CLIENT_ID, defaults=defaults
    )
    if not created and any(getattr(integration, k) != v for k, v in defaults.items()):
        for key, value in defaults.items():
            setattr(integration, key, value)
        integration.save()
    return integration


def account_create(*, subdomain: str, name: str, users: list[dict[str, Any]]) -> Account:
    """Create an account with its users (dicts: name, email, phone, is_admin).

    Raises ValueError for a malformed or taken subdomain or when no user is an admin.
    """
    subdomain = subdomain.strip().lower()
    if not SUBDOMAIN_RE.match(subdomain):
        raise ValueError(f"Некорректный поддомен: {subdomain!r}")
    if not any(user.get("is_admin") for user in users):
        raise ValueError("В аккаунте должен быть хотя бы один администратор")
    with transaction.atomic():
        if Account.objects.filter(subdomain=subdomain).exists():
            raise ValueError(f"Поддомен {subdomain} уже занят")
        account = Account.objects.create(subdomain=subdomain, name=name)
        for user in users:
            user_add(
                account=account,
                name=user["name"],
                email=user.get("email") or "",
                phone=user.get("phone"),
                is_admin=bool(user.get("is_admin")),
            )
    return account


def user_add(*, account: Account, name: str, email: str, phone: str | None, is_admin: bool) -> User:
    if not email:
        email = f"user{User.objects.count() + 1}@{account.subdomain}.example"
    return User.objects.create(
        account=account, name=name, email=email, phone=phone or "", is_admin=is_admin
    )


def user_phone_set(*, user: User, phone: str) -> None:
    """What a manager does in the profile field «Телефон моб.» (stored exactly as typed)."""
    user.phone = phone.strip()
    user.save(update_fields=["phone"])


def _default_user(account: Account, user: User | None) -> User:
    if user is not None:
        if user.account_id != account.pk:
            raise ValueError("The user belongs to another account")
        return user
    admin = account.users.filter(is_admin=True, is_active=True).order_by("id").first()
    if admin is None:
        raise ValueError("The account has no admin")
    return admin


# --- OAuth ----------------------------------------------------------------------------------


class OAuthError(Exception):
    """An error of the token endpoint, rendered as amoCRM's OAuthProblemJson."""

    def __init__(self, status: int, detail: str, hint: str) -> None:
        super().__init__(hint)
        self.status = status
        self.detail = detail
        self.hint = hint


# The messages of the OAuth server amoCRM runs on; "Token has been revoked" is CONFIRMED
# (docs/amocrm-api.md §1.3), the other hints are GUESS (same server, same wording).
INVALID_REQUEST_DETAIL = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)
_INVALID_REFRESH = "The refresh token is invalid."
_INVALID_CLIENT = "Client authentication failed"
_UNSUPPORTED_GRANT = "The authorization grant type is not supported by the authorization server."


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int
    server_time: int

    def as_json(self) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "server_time": self.server_time,
        }


def installation_activate(*, account: Account, integration: Integration) -> None:
    Installation.objects.update_or_create(
        account=account,
        integration=integration,
        defaults={"installed_at": clock.now(), "uninstalled_at": None},
    )


def oauth_code_issue(*, account: Account, user: User | None = None) -> str:
    """An authorization code, as if ``user`` (default: the first admin) pressed «Разрешить».

    Single-use, valid CODE_LIFETIME; granting access also installs the integration.
    """
    user = _default_user(account, user)
    integration = integration_get()
    code = tokens.opaque_secret()
    now = clock.now()
    AuthorizationCode.objects.create(
        account=account,
        user=user,
        integration=integration,
        code_hash=tokens.secret_hash(code),
        redirect_uri=integration.redirect_uri,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    installation_activate(account=account, integration=integration)
    return code


def _pair_create(*, account: Account, user: User, integration: Integration) -> TokenGrant:
    now = clock.now()
    jti = uuid.uuid4().hex
    refresh = tokens.opaque_secret()
    pair = TokenPair.objects.create(
        account=account,
        user=user,
        integration=integration,
        access_jti=jti,
        access_expires_at=now + ACCESS_TOKEN_LIFETIME,
        refresh_hash=tokens.secret_hash(refresh),
        refresh_expires_at=now + REFRESH_TOKEN_LIFETIME,
        created_at=now,
    )
    access = tokens.access_token_encode(
        jti=jti,
        account_id=account.pk,
        user_id=user.pk,
        client_id=integration.client_id,
        issued_at=now,
        expires_at=pair.access_expires_at,
    )
    return TokenGrant(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        server_time=int(now.timestamp()),
    )


def _client_authenticate(client_id: str, client_secret: str) -> Integration:
    integration = integration_get()
    if not hmac.compare_digest(client_id, integration.client_id) or not hmac.compare_digest(
        client_secret, integration.client_secret
    ):
        raise OAuthError(401, _INVALID_CLIENT, "Client authentication failed")
    return integration


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise OAuthError(400, INVALID_REQUEST_DETAIL, f"Check the `{name}` parameter")
    return value


def oauth_token_grant(*, params: dict[str, str]) -> TokenGrant:
    """``POST /oauth2/access_token`` for both grants. Raises OAuthError."""
    grant_type = _require(params, "grant_type")
    if grant_type == "authorization_code":
        return _grant_authorization_code(params)
    if grant_type == "refresh_token":
        return _grant_refresh_token(params)
    raise OAuthError(
        400, _UNSUPPORTED_GRANT, "Check that all required parameters have been provided"
    )


def _grant_authorization_code(params: dict[str, str]) -> TokenGrant:
    client_id = _require(params, "client_id")
    client_secret = _require(params, "client_secret")
    code = _require(params, "code")
    redirect_uri = _require(params, "redirect_uri")
    integration = _client_authenticate(client_id, client_secret)
    now = clock.now()
    with transaction.atomic():
        grant = (
            AuthorizationCode.objects.select_for_update()
            .select_related("account", "user")
            .filter(code_hash=tokens.secret_hash(code))
            .first()
        )
        if grant is None:
            raise OAuthError(400, INVALID_REQUEST_DETAIL, "Cannot decrypt the authorization code")
        if grant.integration_id != integration.pk:
            raise OAuthError(
                400, INVALID_REQUEST_DETAIL, "Authorization code was not issued to this client"
            )
        if grant.used_at is not None:
            raise OAuthError(400, INVALID_REQUEST_DETAIL, "Authorization code has been revoked")
        if grant.expires_at <= now:
            raise OAuthError(400, INVALID_REQUEST_DETAIL, "Authorization code has expired")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, INVALID_REQUEST_DETAIL, "Invalid redirect URI")
        grant.used_at = now
        grant.save(update_fields=["used_at"])
        return _pair_create(account=grant.account, user=grant.user, integration=integration)


def _grant_refresh_token(params: dict[str, str]) -> TokenGrant:
    client_id = _require(params, "client_id")
    client_secret = _require(params, "client_secret")
    refresh_token = _require(params, "refresh_token")
    integration = _client_authenticate(client_id, client_secret)
    redirect_uri = params.get("redirect_uri")
    if redirect_uri and redirect_uri != integration.redirect_uri:
        raise OAuthError(400, INVALID_REQUEST_DETAIL, "Invalid redirect URI")
    now = clock.now()
    with transaction.atomic():
        pair = (
            TokenPair.objects.select_for_update()
            .select_related("account", "user")
            .filter(refresh_hash=tokens.secret_hash(refresh_token))
            .first()
        )
        if pair is None:
            raise OAuthError(401, _INVALID_REFRESH, "Cannot decrypt the refresh token")
        if pair.integration_id != integration.pk:
            raise OAuthError(401, _INVALID_REFRESH, "Token is not linked to client")
        if pair.refresh_used_at is not None or pair.revoked_at is not None:
            raise OAuthError(401, _INVALID_REFRESH, "Token has been revoked")
        if pair.refresh_expires_at <= now:
            raise OAuthError(401, _INVALID_REFRESH, "Token has expired")
        pair.refresh_used_at = now
        pair.save(update_fields=["refresh_used_at"])
        # The old access token stays valid until it expires (GUESS: not documented).
        return _pair_create(account=pair.account, user=pair.user, integration=integration)


def tokens_issue(*, account: Account, user: User | None = None) -> tuple[str, str]:
    """(access, refresh) for ``user`` (default: the first admin), without the OAuth dance."""
    user = _default_user(account, user)
    integration = integration_get()
    installation_activate(account=account, integration=integration)
    grant = _pair_create(account=account, user=user, integration=integration)
    return grant.access_token, grant.refresh_token


def access_token_expire(*, account: Account) -> None:
    """Make every current access token of the account expired (refresh tokens stay valid)."""
    TokenPair.objects.filter(account=account, access_expires_at__gt=clock.now()).update(
        access_expires_at=clock.now() - timedelta(seconds=1)
    )


def tokens_revoke(*, account: Account) -> int:
    """Revoke every access and refresh token of the account (what an uninstall does)."""
    return TokenPair.objects.filter(account=account, revoked_at__isnull=True).update(
        revoked_at=clock.now()
    )


# --- Install / uninstall hooks ----------------------------------------------------------------


@dataclass(frozen=True)
class InstallResult:
    """What the marketplace install webhook got back (amoCRM itself ignores the answer)."""

    url: str
    code: str
    status_code: int | None
    error: str
    elapsed_ms: int


def _hook_call(
    *, account: Account, kind: str, url: str, params: dict[str, str], shown_url: str
) -> tuple[int | None, str, int]:
    started = time.monotonic()
    status_code: int | None = None
    error = ""
    try:
        # Sent once, never retried, the answer ignored (docs/amocrm-api.md §1.2).
        response = requests.get(
            url, params=params, timeout=HOOK_TIMEOUT_SECONDS, allow_redirects=False
        )
        status_code = response.status_code
    except requests.RequestException as exc:
        error = type(exc).__name__
    elapsed_ms = int((time.monotonic() - started) * 1000)
    HookCall.objects.create(
        account=account,
        kind=kind,
        url=shown_url,
        status_code=status_code,
        error=error,
        elapsed_ms=elapsed_ms,
        created_at=clock.now(),
    )
    logger.info(
        "sandbox amoCRM %s hook called",
        kind,
        extra={"account_id": account.pk, "status_code": status_code, "error": error},
    )
    return status_code, error, elapsed_ms


def install_run(*, account: Account, user: User | None = None) -> InstallResult:
    """The admin installs the widget from the marketplace: a fresh code goes to our redirect
    URI once as ``GET ?code=&referer=&from_widget=1`` with a 3-second timeout."""
    integration = integration_get()
    code = oauth_code_issue(account=account, user=user)
    params = {"code": code, "referer": account.host, "from_widget": "1"}
    shown = f"{integration.redirect_uri}?code=…&referer={account.host}&from_widget=1"
    status_code, error, elapsed_ms = _hook_call(
        account=account,
        kind=HookCall.Kind.INSTALL,
        url=integration.redirect_uri,
        params=params,
        shown_url=shown,
    )
    return InstallResult(
        url=integration.redirect_uri,
        code=code,
        status_code=status_code,
        error=error,
        elapsed_ms=elapsed_ms,
    )


def disconnect_signature(*, client_secret: str, client_uuid: str, account_id: int) -> str:
    return hmac.new(
        client_secret.encode(), f"{client_uuid}|{account_id}".encode(), hashlib.sha256
    ).hexdigest()


def uninstall_run(*, account: Account) -> None:
    """The admin disables the integration: tokens are revoked, then the disconnect hook is
    called once as ``GET {hook}?account_id=&client_uuid=&signature=``."""
    integration = integration_get()
    tokens_revoke(account=account)
    Installation.objects.filter(account=account, integration=integration).update(
        uninstalled_at=clock.now()
    )
    params = {
        "account_id": str(account.pk),
        "client_uuid": integration.client_id,
        "signature": disconnect_signature(
            client_secret=integration.client_secret,
            client_uuid=integration.client_id,
            account_id=account.pk,
        ),
    }
    shown = (
        f"{integration.disconnect_hook_url}?account_id={account.pk}"
        f"&client_uuid={integration.client_id}&signature=…"
    )
    _hook_call(
        account=account,
        kind=HookCall.Kind.UNINSTALL,
        url=integration.disconnect_hook_url,
        params=params,
        shown_url=shown,
    )


# --- Fault knobs, ban -----------------------------------------------------------------------

MAX_LATENCY_MS = 10_000
MAX_TIMEOUT_SECONDS = 60


def faults_set(
    *,
    account: Account,
    latency_ms: int = 0,
    fail_next: int = 0,
    fail_status: int = 500,
    error_rate: float = 0.0,
    down: bool = False,
    timeout: bool = False,
    ban: bool = False,
    unpaid: bool = False,
    lost_answer_rate: float = 0.0,
) -> None:
    """Set every knob at once (omitted ones go back to normal).

    ``fail_next``: the next N API requests answer ``fail_status``; ``error_rate``: that share
    of requests answers ``fail_status`` at random; ``timeout``: requests hang for
    ``account.timeout_seconds`` then answer 504; ``down``: 503 for everything; ``ban``: switch
    on the ban mode (persistent 429s → 403 until reset), ``ban=False`` also lifts a ban;
    ``unpaid``: 402; ``lost_answer_rate``: that share of successful writes is kept but
    answered 504 (the client cannot tell it was done).
    """
    if not 400 <= fail_status <= 599:
        raise ValueError("fail_status must be an HTTP error status")
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError("error_rate must be within 0..1")
    if not 0.0 <= lost_answer_rate <= 1.0:
        raise ValueError("lost_answer_rate must be within 0..1")
    account.latency_ms = max(0, min(latency_ms, MAX_LATENCY_MS))
    account.fail_next = max(0, fail_next)
    account.fail_status = fail_status
    account.error_rate = error_rate
    account.down = down
    account.timeout = timeout
    account.ban_mode = ban
    account.unpaid = unpaid
    account.lost_answer_rate = lost_answer_rate
    if not ban:
        account.banned_at = None
    account.save()


def account_ban(*, account: Account) -> None:
    """Ban the account now (403 for every API request until ``account_unban``)."""
    Account.objects.filter(pk=account.pk, banned_at__isnull=True).update(banned_at=clock.now())
    account.refresh_from_db(fields=["banned_at"])


def account_unban(*, account: Account) -> None:
    Account.objects.filter(pk=account.pk).update(banned_at=None)
    account.refresh_from_db(fields=["banned_at"])
    ratelimit.rate_limit_reset(account_id=account.pk, client_id=integration_get().client_id)


# --- Contacts (the page form and tests; the API validates in sandbox.amocrm.api) ------------

PHONE_ENUMS = {"WORK": 1, "WORKDD": 2, "MOB": 3, "FAX": 4, "HOME": 5, "OTHER": 6}
EMAIL_ENUMS = {"WORK": 11, "PRIV": 12, "OTHER": 13}


def phone_digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _multitext(
    field_id: int, name: str, code: str, enums: dict[str, int], values: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "field_id": field_id,
        "field_name": name,
        "field_code": code,
        "field_type": "multitext",
        "values": [
            {"value": value, "enum_id": enums[enum], "enum_code": enum} for value, enum in values
        ],
    }


def _contact_fields(
    account: Account, phones: Sequence[tuple[str, str]], emails: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    if phones:
        fields.append(_multitext(account.phone_field_id, "Телефон", "PHONE", PHONE_ENUMS, phones))
    if emails:
        fields.append(_multitext(account.email_field_id, "Email", "EMAIL", EMAIL_ENUMS, emails))
    return fields


def _field_values(contact: Contact, code: str) -> list[tuple[str, str]]:
    for entry in contact.custom_fields_values or []:
        if entry.get("field_code") == code:
            return [(v["value"], v.get("enum_code") or "WORK") for v in entry.get("values") or []]
    return []


def contact_create(
    *,
    account: Account,
    name: str,
    responsible: User,
    phones: Sequence[tuple[str, str]] = (),
    emails: Sequence[tuple[str, str]] = (),
    tag_names: Sequence[str] = (),
    tag_ids: Sequence[int] = (),
    first_name: str = "",
    last_name: str = "",
    created_by: int = 0,
) -> Contact:
    """Create a contact; ``phones``/``emails`` are (value, enum_code) pairs, kept as typed."""
    now = clock.now()
    with transaction.atomic():
        contact = Contact.objects.create(
            account=account,
            name=name,
            first_name=first_name,
            last_name=last_name,
            responsible_user=responsible,
            created_by=created_by,
            updated_by=created_by,
            custom_fields_values=_contact_fields(account, phones, emails),
            created_at=now,
            updated_at=now,
        )
        ContactPhone.objects.bulk_create(
            ContactPhone(contact=contact, value=value, enum_code=enum, digits=phone_digits(value))
            for value, enum in phones
        )
        tags = _tags(account, tag_names, tag_ids)
        if tags:
            contact.tags.add(*tags)
    return contact


def _tags(account: Account, names: Sequence[str], ids: Sequence[int]) -> list[Tag]:
    tags = [Tag.objects.get_or_create(account=account, name=n)[0] for n in names]
    return tags + list(Tag.objects.filter(account=account, pk__in=ids))


def contact_update(
    *,
    contact: Contact,
    updated_by: int,
    name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    responsible: User | None = None,
    phones: Sequence[tuple[str, str]] | None = None,
    emails: Sequence[tuple[str, str]] | None = None,
    tags: tuple[Sequence[str], Sequence[int]] | None = None,
) -> Contact:
    """PATCH semantics: only what is given changes. A given PHONE/EMAIL list replaces all the
    field's values (docs/amocrm-api.md §4), an empty one clears the field; ``tags`` replaces the
    tag set."""
    with transaction.atomic():
        for attr, value in (("name", name), ("first_name", first_name), ("last_name", last_name)):
            if value is not None:
                setattr(contact, attr, value)
        if responsible is not None:
            contact.responsible_user = responsible
        if phones is not None or emails is not None:
            new_phones = list(phones) if phones is not None else _field_values(contact, "PHONE")
            new_emails = list(emails) if emails is not None else _field_values(contact, "EMAIL")
            contact.custom_fields_values = _contact_fields(contact.account, new_phones, new_emails)
            if phones is not None:
                contact.phones.all().delete()
                ContactPhone.objects.bulk_create(
                    ContactPhone(
                        contact=contact, value=value, enum_code=enum, digits=phone_digits(value)
                    )
                    for value, enum in new_phones
                )
        if tags is not None:
            contact.tags.set(_tags(contact.account, *tags))
        contact.updated_by = updated_by
        contact.updated_at = clock.now()
        contact.save()
    return contact


def lead_create(
    *,
    account: Account,
    name: str,
    responsible: User,
    price: int = 0,
    pipeline_id: int | None = None,
    status_id: int | None = None,
    contacts: Sequence[Contact] = (),
    tag_names: Sequence[str] = (),
    created_by: int = 0,
) -> Lead:
    """A lead in ``pipeline_id`` (default: the main pipeline); ``status_id`` defaults to the
    pipeline's first open stage."""
    pipeline = main_pipeline(account) if pipeline_id is None else pipeline_get(account, pipeline_id)
    if pipeline is None:
        raise ValueError(f"pipeline {pipeline_id} is not the account's")
    status = status_id if status_id is not None else pipeline.first_open_stage.id
    if status not in {s.id for s in pipeline.stages}:
        raise ValueError(f"status {status} is not a stage of pipeline {pipeline.id}")
    now = clock.now()
    with transaction.atomic():
        lead = Lead.objects.create(
            account=account,
            name=name,
            price=price,
            pipeline_id=pipeline.id,
            status_id=status,
            responsible_user=responsible,
            created_by=created_by,
            updated_by=created_by,
            created_at=now,
            updated_at=now,
            closed_at=now if status in (WON, LOST) else None,
        )
        if contacts:
            lead.contacts.add(*contacts)
        tags = _tags(account, tag_names, ())
        if tags:
            lead.tags.add(*tags)
    return lead


def task_create(
    *,
    account: Account,
    text: str,
    complete_till: int,
    responsible_user_id: int,
    entity_type: str = "",
    entity_id: int | None = None,
    task_type_id: int = 1,
    duration: int = 0,
    is_completed: bool = False,
    result_text: str = "",
    created_by: int = 0,
    request_id: str = "",
    payload: dict[str, Any] | None = None,
) -> Task:
    now = clock.now()
    return Task.objects.create(
        account=account,
        text=text,
        complete_till=complete_till,
        entity_type=entity_type,
        entity_id=entity_id,
        task_type_id=task_type_id,
        responsible_user_id=responsible_user_id,
        duration=duration,
        is_completed=is_completed,
        result_text=result_text,
        created_by=created_by,
        updated_by=created_by,
        request_id=request_id,
        payload=payload or {},
        received_at=now,
        updated_at=now,
    )


def task_update(*, task: Task, changes: dict[str, Any], updated_by: int) -> Task:
    """Apply validated PATCH fields; completing a task is ``is_completed`` + ``result_text``."""
    for attr, value in changes.items():
        setattr(task, attr, value)
    task.updated_by = updated_by
    task.updated_at = clock.now()
    task.save()
    return task


CALL_NOTE_TYPES = {"inbound": "call_in", "outbound": "call_out"}


def call_note_params(call: Call) -> dict[str, Any]:
    """The params of the call note a logged call shows on its card (SDK CallInNote)."""
    return {
        "uniq": call.uniq,
        "duration": call.duration,
        "source": call.source,
        "link": call.link,
        "phone": call.phone,
        "call_result": call.call_result,
        "call_status": call.call_status,
    }


def call_notes_add(*, account: Account, calls: list[tuple[Call, str, int]]) -> None:
    """The call notes of logged calls, each on its (entity type, id), in one insert. A note
    takes its call's id: in amoCRM a call *is* a call note, so the id ``POST /api/v4/calls``
    answers is the one ``GET …/notes`` shows (call ids and note ids start in ranges far apart,
    see the migrations)."""
    now = clock.now()
    Note.objects.bulk_create(
        [
            Note(
                pk=call.pk,
                account=account,
                entity_type=entity_type,
                entity_id=entity_id,
                note_type=CALL_NOTE_TYPES[call.direction],
                params=call_note_params(call),
                call=call,
                created_by=call.created_by or 0,
                responsible_user_id=call.responsible_user_id or 0,
                request_id=call.request_id,
                created_at=now,
                updated_at=now,
            )
            for call, entity_type, entity_id in calls
        ]
    )


def note_add(
    *,
    account: Account,
    entity_type: str,
    entity_id: int,
    note_type: str,
    params: dict[str, Any],
    created_by: int = 0,
    responsible_user_id: int = 0,
    request_id: str = "",
) -> Note:
    """A note (a call's note: ``call_notes_add``)."""
    now = clock.now()
    return Note.objects.create(
        account=account,
        entity_type=entity_type,
        entity_id=entity_id,
        note_type=note_type,
        params=params,
        created_by=created_by,
        responsible_user_id=responsible_user_id,
        request_id=request_id,
        created_at=now,
        updated_at=now,
    )


# --- Changes made "in amoCRM" that send entity webhooks ---------------------------------------
# Called outside any transaction (page views, API handlers after their atomic block) so the
# receiver, re-reading the contact through the API, sees the change.


def contact_responsible_change(
    *, contact: Contact, responsible: User, by: User | None = None
) -> bool:
    """A manager hands the contact to another user on its card (the account page does this):
    ``responsible_contact`` and ``update_contact`` hooks. Returns False when nothing changed."""
    if responsible.account_id != contact.account_id:
        raise ValueError("The user belongs to another account")
    old = contact.responsible_user_id
    if old == responsible.pk:
        return False
    author = _default_user(contact.account, by)
    contact_update(contact=contact, updated_by=author.pk, responsible=responsible)
    webhooks.contact_events_send(
        contact.account,
        [
            webhooks.contact_responsible_changed(contact, old),
            webhooks.contact_updated(contact),
        ],
    )
    return True


def contact_delete(*, contact: Contact) -> None:
    """The contact is deleted in amoCRM (its calls and notes go with it): ``delete_contact``."""
    account, contact_id = contact.account, contact.pk
    with transaction.atomic():
        Note.objects.filter(account=account, entity_type="contacts", entity_id=contact_id).delete()
        contact.delete()
    webhooks.contact_events_send(account, [webhooks.contact_deleted(contact_id)])


# --- Unsorted decisions ---------------------------------------------------------------------


def _unsorted_phones(entry: UnsortedEntry) -> list[tuple[str, str]]:
    contacts = (entry.embedded or {}).get("contacts") or []
    phones: list[tuple[str, str]] = []
    for field in (contacts[0].get("custom_fields_values") or []) if contacts else []:
        if isinstance(field, dict) and field.get("field_code") == "PHONE":
            for value in field.get("values") or []:
                if isinstance(value, dict) and value.get("value"):
                    enum = value.get("enum_code") if value.get("enum_code") in PHONE_ENUMS else None
                    phones.append((str(value["value"]), enum or "WORK"))
    caller = str((entry.metadata or {}).get("from") or "")
    if not phones and caller:
        phones.append((caller, "WORK"))
    return phones


def unsorted_accept(
    *, entry: UnsortedEntry, user: User, status_id: int | None = None
) -> tuple[Lead, Contact | None]:
    """A manager accepts an Unsorted entry: a contact (from ``_embedded.contacts`` or the SIP
    caller) and a lead in the entry's pipeline; the call is logged on the lead when the entry
    asked for it. Raises ValueError for a stage that is not an open stage of the pipeline."""
    account = entry.account
    pipeline = pipeline_get(account, entry.pipeline_id or 0) or main_pipeline(account)
    if status_id is not None:
        stage = next((s for s in pipeline.stages if s.id == status_id), None)
        if stage is None or stage.type == 1:
            raise ValueError(f"status {status_id} is not a stage of pipeline {pipeline.id}")
    embedded = entry.embedded or {}
    metadata = entry.metadata or {}
    lead_data = (embedded.get("leads") or [{}])[0] or {}
    contact_data = (embedded.get("contacts") or [{}])[0] or {}
    phones = _unsorted_phones(entry)
    caller = str(metadata.get("from") or "")
    with transaction.atomic():
        contact = None
        if phones:
            contact = contact_create(
                account=account,
                name=str(contact_data.get("name") or caller or "Контакт"),
                responsible=user,
                phones=phones,
                created_by=user.pk,
            )
        lead_tags = [
            str(t["name"])
            for t in ((lead_data.get("_embedded") or {}).get("tags") or [])
            if isinstance(t, dict) and t.get("name")
        ]
        lead = lead_create(
            account=account,
            name=str(lead_data.get("name") or f"Звонок от {caller}".strip()),
            responsible=user,
            price=int(lead_data["price"]) if isinstance(lead_data.get("price"), int) else 0,
            pipeline_id=pipeline.id,
            status_id=status_id,
            contacts=[contact] if contact else [],
            tag_names=lead_tags,
            created_by=user.pk,
        )
        if metadata.get("is_call_event_needed") and contact is not None:
            call = Call.objects.create(
                account=account,
                contact=contact,
                lead=lead,
                direction="inbound",
                duration=int(metadata.get("duration") or 0),
                source=entry.source_name,
                phone=caller,
                uniq=str(metadata.get("uniq") or ""),
                link=str(metadata.get("link") or ""),
                responsible_user_id=user.pk,
                created_by=user.pk,
                payload={"unsorted": entry.uid},
                received_at=clock.now(),
            )
            call_notes_add(account=account, calls=[(call, "leads", lead.pk)])
        entry.status = UnsortedEntry.Status.ACCEPTED
        entry.decided_at = clock.now()
        entry.decided_by = user.pk
        entry.lead = lead
        entry.contact = contact
        entry.save()
    if contact is not None:
        webhooks.contact_events_send(account, [webhooks.contact_added(contact)])
    return lead, contact


def unsorted_decline(*, entry: UnsortedEntry, user: User) -> None:
    entry.status = UnsortedEntry.Status.DECLINED
    entry.decided_at = clock.now()
    entry.decided_by = user.pk
    entry.save(update_fields=["status", "decided_at", "decided_by"])
