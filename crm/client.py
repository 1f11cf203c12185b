"""The one door to amoCRM's API (reference: docs/amocrm-api.md).

Every request goes through the module's ``_request()``: a mandatory timeout, errors mapped to
``crm.errors``, JSON (hal/problem) parsed. ``AmoClient`` adds what an account needs on top: the
Bearer token (refreshed before expiry and once on 401 through a ``TokenSource``), the shared
Redis rate limiter, and backoff on 429. The client holds no ORM code: tokens and health
bookkeeping come in through the small protocols below (implemented in ``crm.services``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core import metrics
from core.backoff import backoff_seconds
from core.phones import phone_national
from core.transport import retry_after_seconds
from crm.errors import (
    AmoAuthError,
    AmoBanned,
    AmoError,
    AmoPermanentError,
    AmoRateLimited,
    AmoTransientError,
    AmoUnpaid,
)
from crm.ratelimit import AccountRateLimiter

logger = logging.getLogger(__name__)

# (connect, read) seconds. Reads of big pages can be slow; connects should never be.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 15.0)
BATCH_SIZE = 50  # the SDK README's recommended maximum per batch request
PAGE_LIMIT = 250
MAX_429_RETRIES = 4
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 30.0
SOURCE_NAME = "Звонок Beeline"

_session = requests.Session()


class AmoUnauthorized(AmoAuthError):
    """401 from the API: the access token is expired or invalid (refresh once, then retry)."""

    status = 401


# --- typed results -----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AmoAccount(_Model):
    id: int
    name: str = ""
    subdomain: str = ""
    current_user_id: int | None = None
    is_unsorted_on: bool | None = None


class _UserRights(_Model):
    is_admin: bool = False
    is_active: bool = True


class AmoUserData(_Model):
    id: int
    name: str = ""
    email: str | None = ""
    phone_number: str | None = None
    rights: _UserRights = Field(default_factory=_UserRights)

    @property
    def is_admin(self) -> bool:
        return self.rights.is_admin

    @property
    def is_active(self) -> bool:
        return self.rights.is_active


class _FieldValue(_Model):
    value: Any = None
    enum_code: str | None = None


class _CustomField(_Model):
    field_code: str | None = None
    field_id: int | None = None
    values: list[_FieldValue] = Field(default_factory=list)


class AmoContact(_Model):
    id: int
    name: str = ""
    responsible_user_id: int | None = None
    custom_fields_values: list[_CustomField] | None = None

    @property
    def phones(self) -> list[str]:
        return [
            str(value.value)
            for cf in self.custom_fields_values or []
            if cf.field_code == "PHONE"
            for value in cf.values
            if value.value
        ]


class AmoCallNote(_Model):
    id: int
    entity_id: int | None = None
    note_type: str = ""
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def uniq(self) -> str:
        return str(self.params.get("uniq") or "")


class AmoTask(_Model):
    id: int
    text: str = ""
    complete_till: int | None = None
    entity_id: int | None = None
    entity_type: str | None = None
    responsible_user_id: int | None = None
    is_completed: bool = False
    # ``{"text": "…"}`` once completed with a result; amoCRM sends ``[]`` when there is none.
    result: dict[str, Any] | list[Any] | None = None

    @property
    def result_text(self) -> str:
        return str(self.result.get("text") or "") if isinstance(self.result, dict) else ""


class AmoStatus(_Model):
    id: int
    name: str = ""
    sort: int = 0
    type: int = 0  # 1 = the «Неразобранное» stage
    pipeline_id: int | None = None


class AmoPipelineData(_Model):
    id: int
    name: str = ""
    sort: int = 0
    is_main: bool = False
    is_unsorted_on: bool = False
    statuses: list[AmoStatus] = Field(default_factory=list)

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> AmoPipelineData:
        statuses = (raw.get("_embedded") or {}).get("statuses") or []
        return cls.model_validate({**raw, "statuses": statuses})


class AmoUnsortedEntry(_Model):
    uid: str
    source_uid: str = ""
    pipeline_id: int | None = None


class TokenPair(_Model):
    # repr=False: a pair printed in a log line, a traceback or a debugger never shows the tokens.
    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    expires_in: int = 86400
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class ItemResult:
    """Outcome of one item of a batch: ``id`` when amoCRM took it, else ``error``."""

    request_id: str
    id: int | None = None
    error: str | None = None
    entity_id: int | None = None
    entity_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.id is not None


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactDraft:
    name: str
    phone_e164: str
    tags: Sequence[str] = ()
    responsible_user_id: int | None = None

    def to_api(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": self.phone_e164, "enum_code": "WORK"}]}
            ],
            "request_id": request_id,
        }
        if self.tags:
            body["_embedded"] = {"tags": [{"name": tag} for tag in self.tags]}
        if self.responsible_user_id:
            body["responsible_user_id"] = self.responsible_user_id
        return body


@dataclass(frozen=True, slots=True)
class CallDraft:
    """One entry of ``POST /api/v4/calls`` (docs/amocrm-api.md §5). None fields are not sent."""

    direction: str  # "inbound" | "outbound"
    duration: int
    phone: str
    uniq: str | None = None
    link: str | None = None
    source: str = SOURCE_NAME
    call_status: int | None = None
    call_result: str | None = None
    call_responsible: int | str | None = None
    responsible_user_id: int | None = None
    created_by: int | None = None
    created_at: int | None = None

    def to_api(self, request_id: str) -> dict[str, Any]:
        body = {k: v for k, v in _fields(self).items() if v is not None}
        body["request_id"] = request_id
        return body


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """One entry of ``POST /api/v4/tasks`` (docs/amocrm-api.md §6)."""

    text: str
    complete_till: int
    entity_id: int | None = None
    entity_type: str | None = None
    task_type_id: int | None = 1
    responsible_user_id: int | None = None

    def to_api(self, request_id: str) -> dict[str, Any]:
        body = {k: v for k, v in _fields(self).items() if v is not None}
        body["request_id"] = request_id
        return body


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A ``PATCH /api/v4/tasks/{id}`` body (docs/amocrm-api.md §6). None fields are not sent."""

    text: str | None = None
    complete_till: int | None = None
    is_completed: bool | None = None
    result_text: str | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.text is not None:
            body["text"] = self.text
        if self.complete_till is not None:
            body["complete_till"] = self.complete_till
        if self.is_completed is not None:
            body["is_completed"] = self.is_completed
        if self.result_text is not None:
            body["result"] = {"text": self.result_text}
        return body


@dataclass(frozen=True, slots=True)
class LeadDraft:
    """One entry of ``POST /api/v4/leads`` (docs/amocrm-api.md §6b). None fields are not sent."""

    name: str
    pipeline_id: int | None = None
    status_id: int | None = None
    responsible_user_id: int | None = None
    contact_ids: Sequence[int] = ()
    tags: Sequence[str] = ()

    def to_api(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "request_id": request_id}
        for key in ("pipeline_id", "status_id", "responsible_user_id"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        embedded: dict[str, Any] = {}
        if self.contact_ids:
            embedded["contacts"] = [{"id": int(c)} for c in self.contact_ids]
        if self.tags:
            embedded["tags"] = [{"name": t} for t in self.tags]
        if embedded:
            body["_embedded"] = embedded
        return body


@dataclass(frozen=True, slots=True)
class PhoneCallEvent:
    """A ringing notification for ``users`` (docs/amocrm-api.md §7.1)."""

    phone_number: str
    users: Sequence[int] = field(default_factory=tuple)

    def to_api(self) -> dict[str, Any]:
        return {"type": "phone_call", "phone_number": self.phone_number, "users": list(self.users)}


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


# --- the request door --------------------------------------------------------------------------


def api_base_url(host: str) -> str:
    """Where amoCRM calls for ``host`` go: the account's own host, or the sandbox when set."""
    return settings.AMOCRM_API_BASE_URL or f"https://{host}"


def _problem_text(body: Any, fallback: str) -> str:
    if not isinstance(body, dict):
        return fallback
    parts = [str(body.get(k)) for k in ("title", "detail", "hint") if body.get(k)]
    for item in body.get("validation-errors") or []:
        for err in item.get("errors") or []:
            parts.append(f"{err.get('path', '')}: {err.get('detail') or err.get('code', '')}")
    return "; ".join(parts) or fallback


def _retry_after(response: requests.Response) -> float:
    """Seconds to wait after a 429: the server's ``Retry-After`` (seconds or an HTTP date), at
    most MAX_RETRY_AFTER. Whether amoCRM sends it is a GUESS (docs/amocrm-api.md §8): without
    it, one second."""
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    return 1.0 if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _request(
    method: str,
    url: str,
    *,
    timeout: tuple[float, float] | float,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    accept: frozenset[int] = frozenset(),
    forbidden_means_no_rights: bool = False,
) -> Any:
    """Send one request; return parsed JSON (None for 204/empty) or raise a ``crm.errors`` class.

    Statuses in ``accept`` are returned (parsed) instead of raised — for batch endpoints whose
    4xx body lists per-item errors.
    """
    try:
        response = _session.request(
            method, url, headers=headers, params=params, json=json, timeout=timeout
        )
    except requests.Timeout as exc:
        metrics.amocrm_response_observe(None)
        raise AmoTransientError("amoCRM не ответил вовремя.") from exc
    except requests.RequestException as exc:
        metrics.amocrm_response_observe(None)
        raise AmoTransientError(f"amoCRM недоступен: {type(exc).__name__}.") from exc

    status = response.status_code
    metrics.amocrm_response_observe(status)
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None  # 429 and some gateway errors come with an HTML/plain body
    if status < 300 or status in accept:
        return body
    message = _problem_text(body, f"HTTP {status}")
    if status == 401:
        raise AmoUnauthorized(f"amoCRM отклонил токен: {message}", status=401)
    if status == 402:
        raise AmoUnpaid("Аккаунт amoCRM не оплачен: запросы приостановлены.", status=402)
    if status == 403:
        if forbidden_means_no_rights:
            raise AmoPermanentError(
                "Недостаточно прав в amoCRM: установите виджет от имени администратора.",
                status=403,
                body=body,
            )
        raise AmoBanned(
            "amoCRM ограничил доступ (403): запросы приостановлены до снятия ограничения.",
            status=403,
        )
    if status == 429:
        raise AmoRateLimited(
            "amoCRM просит снизить частоту запросов (429).",
            retry_after=_retry_after(response),
        )
    if status >= 500:
        raise AmoTransientError(f"Ошибка на стороне amoCRM (HTTP {status}).", status=status)
    raise AmoPermanentError(f"amoCRM отклонил запрос: {message}", status=status, body=body)


# --- OAuth (token endpoint) -------------------------------------------------------------------


def _oauth_post(*, base_url: str, body: dict[str, str], timeout: tuple[float, float]) -> TokenPair:
    payload = {
        "client_id": settings.AMOCRM_CLIENT_ID,
        "client_secret": settings.AMOCRM_CLIENT_SECRET,
        "redirect_uri": oauth_redirect_uri(),
        **body,
    }
    try:
        data = _request("POST", f"{base_url}/oauth2/access_token", json=payload, timeout=timeout)
    except AmoPermanentError as exc:
        # 400 from the token endpoint: a bad, expired or already used code or refresh token.
        raise AmoAuthError(exc.message, status=exc.status) from exc
    try:
        return TokenPair.model_validate(data)
    except ValidationError as exc:
        raise AmoTransientError("amoCRM вернул непонятный ответ на запрос токена.") from exc


def token_probe(*, base_url: str, access_token: str, timeout: tuple[float, float]) -> None:
    """``GET /api/v4/account`` with a bare access token (no refresh, no pacing): returns if
    amoCRM accepts the token, raises the ``crm.errors`` class of its answer otherwise."""
    _request(
        "GET",
        f"{base_url}/api/v4/account",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=timeout,
    )


def oauth_redirect_uri() -> str:
    return f"{settings.PUBLIC_URL}/amocrm/oauth/callback"


# Reference: https://www.amocrm.ru/developers/content/oauth/step-by-step (authorization_code)
def oauth_exchange_code(
    *, base_url: str, code: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> TokenPair:
    """Exchange a one-time authorization code. Raises AmoAuthError for a bad/used code."""
    return _oauth_post(
        base_url=base_url,
        body={"grant_type": "authorization_code", "code": code},
        timeout=timeout,
    )


# Reference: https://www.amocrm.ru/developers/content/oauth/step-by-step (refresh_token)
def oauth_refresh(
    *, base_url: str, refresh_token: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT
) -> TokenPair:
    """Trade the (single-use) refresh token for a new pair. AmoAuthError = revoked."""
    return _oauth_post(
        base_url=base_url,
        body={"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=timeout,
    )


# --- the account client ------------------------------------------------------------------------


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A token believed valid (refreshed first when close to expiry)."""
        ...

    def refresh_after_401(self, *, rejected: str) -> str:
        """A token other than ``rejected``: refreshed, or the one another worker just got."""
        ...


class ClientObserver(Protocol):
    def amo_error(self, error: AmoError) -> None:
        """Called for each 429/402/403/transient error (health counters, pausing the account)."""
        ...

    def amo_answered(self) -> None:
        """Called when amoCRM answered a request (it is reachable again)."""
        ...


class StaticToken:
    """A TokenSource for a token that was just issued (install) and cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(…)"

    def access_token(self) -> str:
        return self._token

    def refresh_after_401(self, *, rejected: str) -> str:
        raise AmoAuthError("amoCRM отклонил только что выданный токен.", status=401)


class AmoClient:
    """amoCRM API for one account. Methods raise ``crm.errors`` classes."""

    def __init__(
        self,
        *,
        base_url: str,
        account_key: str,
        tokens: TokenSource,
        observer: ClientObserver | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.observer = observer
        self.timeout = timeout
        self.limiter = AccountRateLimiter(account_key)
        self._sleep = sleep

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        accept: frozenset[int] = frozenset(),
        forbidden_means_no_rights: bool = False,
    ) -> Any:
        token = self.tokens.access_token()
        refreshed = False
        rate_limited = 0
        transient = 0
        while True:
            self.limiter.acquire()
            try:
                answer = _request(
                    method,
                    self.base_url + path,
                    headers={"Authorization": f"Bearer {token}"},
                    params=params,
                    json=json,
                    timeout=self.timeout,
                    accept=accept,
                    forbidden_means_no_rights=forbidden_means_no_rights,
                )
                if self.observer is not None:
                    self.observer.amo_answered()
                return answer
            except AmoUnauthorized:
                if refreshed:
                    raise AmoAuthError(
                        "amoCRM отклоняет и обновлённый токен: нужна повторная авторизация.",
                        status=401,
                    ) from None
                refreshed = True
                token = self.tokens.refresh_after_401(rejected=token)
            except AmoRateLimited as exc:
                # A 429 is refused before any work is done, so repeating even a POST is safe.
                # Every process of this account pauses and slows down with us (the limiter).
                self._notify(exc)
                rate_limited += 1
                delay = backoff_seconds(
                    rate_limited, base=0.5, cap=MAX_BACKOFF, floor=exc.retry_after
                )
                self.limiter.penalize(pause=delay)
                if rate_limited > MAX_429_RETRIES:
                    raise
                self._sleep(delay)
            except (AmoUnpaid, AmoBanned) as exc:
                self._notify(exc)
                raise
            except AmoTransientError as exc:
                self._notify(exc)
                transient += 1
                # Writes are not idempotent in amoCRM: only reads are repeated here; Celery
                # retries writes with our own deduplication.
                if method != "GET" or transient > 2:
                    raise
                self._sleep(backoff_seconds(transient, base=0.5, cap=MAX_BACKOFF, floor=0.5))

    def _notify(self, error: AmoError) -> None:
        if self.observer is not None:
            self.observer.amo_error(error)

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            data = self._call("GET", path, params={**params, "page": page, "limit": PAGE_LIMIT})
            if not data:  # 204: nothing (more)
                return
            yield from (data.get("_embedded") or {}).get(key) or []
            if not (data.get("_links") or {}).get("next"):
                return
            page += 1

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/account-info
    def account(self) -> AmoAccount:
        return AmoAccount.model_validate(self._call("GET", "/api/v4/account"))

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/users-api
    def users(self, *, with_phone: bool = True) -> list[AmoUserData]:
        params = {"with": "phone_number"} if with_phone else {}
        page = 1
        users: list[AmoUserData] = []
        while True:
            data = self._call(
                "GET",
                "/api/v4/users",
                params={**params, "page": page, "limit": PAGE_LIMIT},
                forbidden_means_no_rights=True,
            )
            if not data:
                return users
            users += [
                AmoUserData.model_validate(u)
                for u in (data.get("_embedded") or {}).get("users", [])
            ]
            if not (data.get("_links") or {}).get("next"):
                return users
            page += 1

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/contacts-api
    def contacts_find_by_phone(self, national: str) -> list[AmoContact]:
        """Contacts having a PHONE value whose last digits are ``national``.

        amoCRM's ``query`` is a substring search over all fields, so every hit is confirmed here
        against the PHONE values (a "9161234567" query also matches notes, other fields …).
        """
        found = []
        for raw in self._pages("/api/v4/contacts", "contacts", {"query": national}):
            contact = AmoContact.model_validate(raw)
            if any(_same_phone(value, national) for value in contact.phones):
                found.append(contact)
        return found

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/contacts-api (by id)
    def contact_get(self, contact_id: int) -> AmoContact | None:
        """The contact, or None when amoCRM has none with this id (deleted: 204)."""
        data = self._call("GET", f"/api/v4/contacts/{int(contact_id)}")
        return AmoContact.model_validate(data) if data else None

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/contacts-api (filter)
    def contacts_by_responsible(self, user_ids: Sequence[int]) -> Iterator[AmoContact]:
        """Every contact whose responsible user is one of ``user_ids``, page by page."""
        if not user_ids:
            return
        params = {"filter[responsible_user_id][]": [int(u) for u in user_ids]}
        for raw in self._pages("/api/v4/contacts", "contacts", params):
            yield AmoContact.model_validate(raw)

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/contacts-api (with=leads)
    def contact_lead_ids(self, contact_id: int) -> list[int]:
        data = self._call("GET", f"/api/v4/contacts/{int(contact_id)}", params={"with": "leads"})
        leads = ((data or {}).get("_embedded") or {}).get("leads") or []
        return [int(lead["id"]) for lead in leads if lead.get("id")]

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/contacts-api#contacts-add
    def contacts_create(self, drafts: Sequence[ContactDraft]) -> list[int]:
        """Create contacts (batched); returns their ids in the order of ``drafts``."""
        ids: list[int] = []
        for start, chunk in _chunks(drafts):
            body = [d.to_api(str(start + i)) for i, d in enumerate(chunk)]
            data = self._call("POST", "/api/v4/contacts", json=body)
            by_request = _by_request_id((data or {}).get("_embedded", {}).get("contacts", []))
            for i in range(len(chunk)):
                item = by_request.get(str(start + i))
                if item is None or not item.get("id"):
                    raise AmoPermanentError("amoCRM не вернул id созданного контакта.", body=data)
                ids.append(int(item["id"]))
        return ids

    # Reference: https://www.amocrm.ru/developers/content/telephony/calls-api (POST /api/v4/calls)
    def calls_add(self, drafts: Sequence[CallDraft]) -> list[ItemResult]:
        """Log calls (≤ 50 per request). A 400 does not raise: each item gets its own result."""
        results: list[ItemResult] = []
        for start, chunk in _chunks(drafts):
            body = [d.to_api(str(start + i)) for i, d in enumerate(chunk)]
            data = self._call("POST", "/api/v4/calls", json=body, accept=frozenset({400}))
            results += _item_results(data, [str(start + i) for i in range(len(chunk))], "calls")
        return results

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/tasks-api
    def tasks_add(self, drafts: Sequence[TaskDraft]) -> list[int]:
        ids: list[int] = []
        for start, chunk in _chunks(drafts):
            body = [d.to_api(str(start + i)) for i, d in enumerate(chunk)]
            data = self._call("POST", "/api/v4/tasks", json=body)
            by_request = _by_request_id((data or {}).get("_embedded", {}).get("tasks", []))
            items = (data or {}).get("_embedded", {}).get("tasks", [])
            for i in range(len(chunk)):
                # request_id echo is documented for tasks; fall back to position if absent.
                item = by_request.get(str(start + i)) or (items[i] if i < len(items) else None)
                if not item or not item.get("id"):
                    raise AmoPermanentError("amoCRM не вернул id созданной задачи.", body=data)
                ids.append(int(item["id"]))
        return ids

    # Reference: https://www.amocrm.ru/developers/content/telephony/call_event (POST /api/v2/events)
    def events_phone_call(self, events: Sequence[PhoneCallEvent]) -> None:
        for _, chunk in _chunks(events):
            self._call("POST", "/api/v2/events", json={"add": [e.to_api() for e in chunk]})

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/events-and-notes
    # (GET /api/v4/contacts/{id}/notes, filter[note_type]; note shape: SDK CallInNote)
    def contact_call_notes(self, contact_id: int) -> list[AmoCallNote]:
        """Call notes (call_in/call_out) on a contact: how we tell whether a call whose POST
        had an ambiguous outcome reached amoCRM (``/api/v4/calls`` has no GET)."""
        return self._call_notes("contacts", contact_id)

    def lead_call_notes(self, lead_id: int) -> list[AmoCallNote]:
        """Call notes on a lead (amoCRM puts a call on the contact's only open lead)."""
        return self._call_notes("leads", lead_id)

    def _call_notes(self, entity: str, entity_id: int) -> list[AmoCallNote]:
        params = {"filter[note_type][]": ["call_in", "call_out"]}
        return [
            AmoCallNote.model_validate(raw)
            for raw in self._pages(f"/api/v4/{entity}/{int(entity_id)}/notes", "notes", params)
        ]

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/leads-api (pipelines)
    def pipelines(self) -> list[AmoPipelineData]:
        data = self._call("GET", "/api/v4/leads/pipelines")
        return [
            AmoPipelineData.from_api(raw)
            for raw in ((data or {}).get("_embedded") or {}).get("pipelines") or []
        ]

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/leads-api#leads-add
    def leads_add(self, drafts: Sequence[LeadDraft]) -> list[int]:
        """Create leads (≤ 50 per request); their ids in the order of ``drafts``."""
        ids: list[int] = []
        for start, chunk in _chunks(drafts):
            body = [d.to_api(str(start + i)) for i, d in enumerate(chunk)]
            data = self._call("POST", "/api/v4/leads", json=body)
            items = (data or {}).get("_embedded", {}).get("leads", [])
            by_request = _by_request_id(items)
            for i in range(len(chunk)):
                # The answer lists the new ids in request order (docs/amocrm-api.md §6b).
                item = by_request.get(str(start + i)) or (items[i] if i < len(items) else None)
                if not item or not item.get("id"):
                    raise AmoPermanentError("amoCRM не вернул id созданной сделки.", body=data)
                ids.append(int(item["id"]))
        return ids

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/webhooks-api
    def webhook_subscribe(self, *, destination: str, settings: Sequence[str]) -> None:
        """Subscribe ``destination`` to entity events (re-subscribing replaces the settings)."""
        self._call(
            "POST",
            "/api/v4/webhooks",
            json={"destination": destination, "settings": list(settings)},
        )

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/tasks-api (GET, filters)
    def tasks_for_contact(self, contact_id: int) -> list[AmoTask]:
        """Tasks on a contact (the "already posted?" check for a task POST without answer)."""
        params = {"filter[entity_type]": "contacts", "filter[entity_id][]": [int(contact_id)]}
        return [
            AmoTask.model_validate(raw) for raw in self._pages("/api/v4/tasks", "tasks", params)
        ]

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/tasks-api (GET /tasks/{id})
    def task_get(self, task_id: int) -> AmoTask | None:
        """One task, or None when amoCRM no longer has it (deleted: 204 or 404)."""
        data = self._call("GET", f"/api/v4/tasks/{int(task_id)}", accept=frozenset({404}))
        if not data or data.get("status") == 404:
            return None
        return AmoTask.model_validate(data)

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/tasks-api (PATCH)
    def task_update(self, task_id: int, update: TaskUpdate) -> None:
        """Change one task (text, due time) or complete it with a result. Idempotent: the same
        PATCH twice leaves the task as once."""
        self._call("PATCH", f"/api/v4/tasks/{int(task_id)}", json=update.to_api())

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/unsorted-api (sip)
    def unsorted_sip_add(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """Add SIP unsorted entries (shaped as docs/amocrm-api.md §7.3); returns their uids in
        the order of ``items`` (matched on ``request_id``, which we set)."""
        uids: list[str] = []
        for start, chunk in _chunks(items):
            body = [{**item, "request_id": str(start + i)} for i, item in enumerate(chunk)]
            data = self._call("POST", "/api/v4/leads/unsorted/sip", json=body)
            entries = (data or {}).get("_embedded", {}).get("unsorted", [])
            by_request = _by_request_id(entries)
            for i in range(len(chunk)):
                entry = by_request.get(str(start + i)) or (entries[i] if i < len(entries) else None)
                if not entry or not entry.get("uid"):
                    raise AmoPermanentError("amoCRM не вернул uid заявки.", body=data)
                uids.append(str(entry["uid"]))
        return uids

    # Reference: https://www.amocrm.ru/developers/content/crm_platform/unsorted-api (list)
    def unsorted_sip_find(
        self, *, source_uids: Sequence[str], pipeline_id: int | None, max_pages: int = 4
    ) -> dict[str, str]:
        """``source_uid`` → ``uid`` of our SIP entries still in Unsorted, newest first, looking
        at most ``max_pages`` pages (the "was it added?" check after an unanswered POST)."""
        wanted = set(source_uids)
        params: dict[str, Any] = {"filter[category][]": ["sip"], "order[created_at]": "desc"}
        if pipeline_id:
            params["filter[pipeline_id]"] = int(pipeline_id)
        found: dict[str, str] = {}
        for page, raw in enumerate(self._pages("/api/v4/leads/unsorted", "unsorted", params)):
            entry = AmoUnsortedEntry.model_validate(raw)
            if entry.source_uid in wanted:
                found[entry.source_uid] = entry.uid
            if len(found) == len(wanted) or page >= max_pages * PAGE_LIMIT:
                break
        return found


def _same_phone(value: str, national: str) -> bool:
    parsed = phone_national(value)
    if parsed is not None:
        return parsed == national
    digits = "".join(ch for ch in value if ch.isdigit())
    return len(digits) >= len(national) and digits.endswith(national)


def _chunks(items: Sequence[Any]) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield start, items[start : start + BATCH_SIZE]


def _by_request_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        str(item.get("request_id")): item for item in items if item.get("request_id") is not None
    }


def _item_results(data: Any, request_ids: list[str], key: str) -> list[ItemResult]:
    data = data or {}
    ok = _by_request_id((data.get("_embedded") or {}).get(key) or [])
    errors: dict[str, str] = {}
    unattributed: list[str] = []
    for err in data.get("errors") or []:
        text = _problem_text(err, "ошибка")
        if err.get("request_id") is not None:
            errors[str(err["request_id"])] = text
        else:
            unattributed.append(text)
    results = []
    for rid in request_ids:
        item = ok.get(rid)
        if item and item.get("id"):
            results.append(
                ItemResult(
                    request_id=rid,
                    id=int(item["id"]),
                    entity_id=item.get("entity_id"),
                    entity_type=item.get("entity_type"),
                )
            )
        else:
            # Per-item attribution of errors is a GUESS (docs/amocrm-api.md §5): without a
            # request_id, every item that did not succeed carries the batch's error text.
            text = errors.get(rid) or "; ".join(unattributed) or "amoCRM не принял звонок."
            results.append(ItemResult(request_id=rid, error=text))
    return results
