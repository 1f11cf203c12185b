"""The one door to Beeline's portal API (docs/beeline-api.md). No ORM here.

Every call goes through ``_request()``: a mandatory timeout, Beeline's ``{errorCode,
description}`` mapped to ``pbx.errors``, and retries only for safe reads. Responses are parsed
into pydantic models that ignore unknown keys and tolerate nulls (the API has no public spec).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core import metrics
from core.transport import retry_after_seconds
from pbx.errors import (
    BeelineError,
    BeelineNotFound,
    BeelineTokenRejected,
    BeelineUnavailable,
)

logger = logging.getLogger(__name__)

AUTH_HEADER = "X-MPBX-API-AUTH-TOKEN"
TIMEOUT = (5.0, 20.0)  # connect, read (seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any, info: Any) -> Any:
        # Beeline sends null for absent optional strings; treat them as "".
        annotation = cls.model_fields[info.field_name].annotation
        return "" if value is None and annotation is str else value


ModelT = TypeVar("ModelT", bound=_Model)


class BeelineAbonent(_Model):
    user_id: str = Field(alias="userId")
    phone: str = ""
    first_name: str = Field("", alias="firstName")
    last_name: str = Field("", alias="lastName")
    email: str = ""
    department: str = ""
    extension: str = ""


class BeelineNumber(_Model):
    number_id: str = Field(alias="numberId")
    phone: str
    # Not in any confirmed /numbers payload; read if Beeline (or the sandbox) sends it.
    name: str = ""
    # GUESS: no confirmed payload says whether a number is multichannel; read it when sent
    # (the sandbox sends it), None when not.
    multichannel: bool | None = None


class SubscriptionGranted(_Model):
    subscription_id: str = Field(alias="subscriptionId")
    expires: int  # seconds actually granted, possibly below the request (§5)


class SubscriptionInfo(_Model):
    subscription_id: str = Field(alias="subscriptionId")
    target_type: str = Field("", alias="targetType")
    target_id: str = Field("", alias="targetId")
    subscription_type: str = Field("", alias="subscriptionType")
    expires: int | None = None
    url: str = ""


class StatAbonent(_Model):
    user_id: str = Field("", alias="userId")
    phone: str = ""


class StatRecord(_Model):
    start_date: int = Field(alias="startDate")  # epoch ms, UTC
    direction: str = ""  # INBOUND / OUTBOUND
    status: str = ""  # PLACED / RECIEVED (sic) / MISSED / REDIRECTED
    phone_from: str = ""
    phone_to: str = ""
    duration: int = 0  # milliseconds
    abonent: StatAbonent | None = None
    # Seen only in a synthetic fixture (GUESS): used as a join key when present.
    external_tracking_id: str = Field("", alias="externalTrackingId")


class IcrError(_Model):
    error_code: str = Field("", alias="errorCode")
    description: str = ""


class IcrRule(_Model):
    """One ICR rule (docs/beeline-api.md §3): calls from ``inbound_number`` go to ``extension``."""

    inbound_number: str = Field("", alias="inboundNumber")
    extension: str = ""

    def to_api(self) -> dict[str, str]:
        return {"inboundNumber": self.inbound_number, "extension": self.extension}


class IcrItemResult(_Model):
    """The per-item answer of a bulk ICR write: ``SUCCESS``, or ``FAULT`` with a reason."""

    status: str = ""
    error: IcrError | None = None
    rule: IcrRule | None = None
    phone_number: str = Field("", alias="phoneNumber")

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def reason(self) -> str:
        if self.error is None:
            return "" if self.ok else self.status
        return self.error.description or self.error.error_code or self.status


_ICR_ROUTE_METHODS = {"add": "POST", "update": "PUT", "delete": "DELETE"}


def _error_description(response: requests.Response) -> tuple[str, str]:
    try:
        payload = response.json()
    except ValueError:
        return "", ""
    if isinstance(payload, dict):
        return str(payload.get("errorCode") or ""), str(payload.get("description") or "")
    return "", ""


class BeelineClient:
    """A client for one organization's token. Not thread-safe (one requests.Session)."""

    def __init__(self, token: str, *, base_url: str | None = None) -> None:
        self.base_url = (base_url or settings.BEELINE_API_URL).rstrip("/")
        self.session = requests.Session()
        self.session.headers[AUTH_HEADER] = token

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        safe_retry: bool = False,
    ) -> requests.Response:
        delays: Sequence[float] = settings.PBX_HTTP_RETRY_DELAYS if safe_retry else ()
        attempt = 0
        while True:
            try:
                return self._request_once(
                    method, path, params=params, json=json, headers=headers, stream=stream
                )
            except BeelineError as exc:
                metrics.beeline_error_observe(exc.status)
                if exc.permanent or attempt >= len(delays):
                    raise
                logger.info(
                    "beeline read retry",
                    extra={"path": path, "attempt": attempt, "error": str(exc)},
                )
            time.sleep(delays[attempt])
            attempt += 1

    def _request_once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = self.session.request(
                method, url, params=params, json=json, headers=headers, stream=stream,
                timeout=TIMEOUT,
            )  # fmt: skip
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise BeelineUnavailable(
                _("Beeline не отвечает, попробуем ещё раз позже."), code=type(exc).__name__
            ) from None
        except requests.RequestException as exc:
            raise BeelineUnavailable(
                _("Ошибка запроса к Beeline."), code=type(exc).__name__
            ) from None
        status = response.status_code
        if status <= 299:
            return response
        code, description = _error_description(response)
        response.close()
        if status in (401, 403):
            raise BeelineTokenRejected(
                description or _("Beeline не принял токен: проверьте, что он скопирован целиком."),
                status=status,
                code=code,
            )
        if status == 404:
            raise BeelineNotFound(
                description or _("Beeline не нашёл запрошенный объект."), status=status, code=code
            )
        if status == 429:
            raise BeelineError(
                description or _("Beeline просит снизить частоту запросов."),
                status=status,
                code=code,
                rate_limited=True,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 500:
            raise BeelineUnavailable(
                description
                or _("Beeline временно недоступен (ошибка %(status)s).") % {"status": status},
                status=status,
                code=code,
            )
        raise BeelineError(
            description or _("Beeline отклонил запрос (ошибка %(status)s).") % {"status": status},
            status=status,
            code=code,
            permanent=True,
        )

    @staticmethod
    def _parse_list(model: type[ModelT], response: requests.Response) -> list[ModelT]:
        try:
            payload = response.json()
            if not isinstance(payload, list):
                raise ValueError("expected a list")
            return [model.model_validate(item) for item in payload]
        except (ValueError, ValidationError) as exc:
            raise BeelineError(
                _("Beeline вернул ответ в неожиданном формате."), status=response.status_code
            ) from exc

    @staticmethod
    def _parse_one(model: type[ModelT], response: requests.Response) -> ModelT:
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise BeelineError(
                _("Beeline вернул ответ в неожиданном формате."), status=response.status_code
            ) from exc

    # Reference: docs/beeline-api.md §2 (GET /abonents)
    def abonents_list(self) -> list[BeelineAbonent]:
        return self._parse_list(BeelineAbonent, self._request("GET", "abonents", safe_retry=True))

    # Reference: docs/beeline-api.md §3 (GET /numbers)
    def numbers_list(self) -> list[BeelineNumber]:
        return self._parse_list(BeelineNumber, self._request("GET", "numbers", safe_retry=True))

    # Reference: docs/beeline-api.md §5 (PUT /subscription)
    def subscription_create(
        self, *, url: str, expires: int, subscription_type: str = "BASIC_CALL"
    ) -> SubscriptionGranted:
        body = {"expires": expires, "subscriptionType": subscription_type, "url": url}
        return self._parse_one(SubscriptionGranted, self._request("PUT", "subscription", json=body))

    # Reference: docs/beeline-api.md §5 (GET /subscription?subscriptionId=)
    def subscription_get(self, *, subscription_id: str) -> SubscriptionInfo:
        response = self._request(
            "GET", "subscription", params={"subscriptionId": subscription_id}, safe_retry=True
        )
        return self._parse_one(SubscriptionInfo, response)

    # Reference: docs/beeline-api.md §5 (DELETE /subscription?subscriptionId=)
    def subscription_delete(self, *, subscription_id: str) -> None:
        self._request("DELETE", "subscription", params={"subscriptionId": subscription_id})

    # Reference: docs/beeline-api.md §4 (POST /abonents/{pattern}/call?phoneNumber=)
    def abonent_call(self, *, pattern: str, phone_number: str) -> str:
        response = self._request(
            "POST",
            f"abonents/{quote(pattern, safe='@')}/call",
            params={"phoneNumber": phone_number},
        )
        return response.text.strip().strip('"')[:255]

    # Reference: docs/beeline-api.md §7 (GET /v2/records/{externalId}/{userId}/download)
    def record_download(
        self, *, ext_tracking_id: str, user_id: str, range_header: str = ""
    ) -> requests.Response:
        """The open (streaming) response with the audio; the caller must close it.

        Raises ``BeelineNotFound`` while the record is not ready: Beeline then answers with a
        JSON ``errorCode`` body, sometimes with status 200 (§7, §9.10).
        """
        path = f"v2/records/{quote(ext_tracking_id, safe='')}/{quote(user_id, safe='@')}/download"
        headers = {"Range": range_header} if range_header else None
        response = self._request("GET", path, headers=headers, stream=True)
        if "json" in response.headers.get("Content-Type", ""):
            code, description = _error_description(response)
            response.close()
            raise BeelineNotFound(  # not yet: worth asking again later
                description or _("Запись ещё не готова."),
                status=response.status_code,
                code=code,
                permanent=False,
            )
        return response

    def _icr_results(self, response: requests.Response, sent: int) -> list[IcrItemResult]:
        results: list[IcrItemResult] = self._parse_list(IcrItemResult, response)
        if len(results) != sent:
            # Results are matched to the request by position: any other count is unusable.
            raise BeelineError(
                _("Beeline вернул ответ в неожиданном формате."), status=response.status_code
            )
        return results

    # Reference: docs/beeline-api.md §3 (GET /icr/numbers)
    def icr_numbers_list(self) -> list[BeelineNumber]:
        """The incoming numbers with ICR switched on."""
        response = self._request("GET", "icr/numbers", safe_retry=True)
        return self._parse_list(BeelineNumber, response)

    # Reference: docs/beeline-api.md §3 (PUT / DELETE /icr/numbers, a JSON array of phones)
    def icr_numbers_switch(self, phones: Sequence[str], *, enable: bool) -> list[IcrItemResult]:
        """Switch ICR on (``enable``) or off for ``phones``; one result per phone, in order."""
        method = "PUT" if enable else "DELETE"
        response = self._request(method, "icr/numbers", json=list(phones))
        return self._icr_results(response, len(phones))

    # Reference: docs/beeline-api.md §3 (GET /icr/route)
    def icr_routes_list(self) -> list[IcrRule]:
        return self._parse_list(IcrRule, self._request("GET", "icr/route", safe_retry=True))

    # Reference: docs/beeline-api.md §3 (POST / PUT / DELETE /icr/route)
    def icr_routes_change(self, rules: Sequence[IcrRule], *, action: str) -> list[IcrItemResult]:
        """``action``: add (POST), update (PUT) or delete (DELETE) these rules; one result per
        rule, in order (a refused rule is ``FAULT`` with Beeline's reason, not an exception)."""
        response = self._request(
            _ICR_ROUTE_METHODS[action], "icr/route", json=[r.to_api() for r in rules]
        )
        return self._icr_results(response, len(rules))

    # Reference: docs/beeline-api.md §8 (GET /v2/statistics)
    def statistics(
        self, *, date_from: datetime, date_to: datetime, page_size: int = 100
    ) -> list[StatRecord]:
        rows: list[StatRecord] = []
        page = 0
        while True:
            params = {
                "dateFrom": date_from.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "dateTo": date_to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "page": page,
                "pageSize": page_size,
            }
            response = self._request("GET", "v2/statistics", params=params, safe_retry=True)
            batch = self._parse_list(StatRecord, response)
            rows.extend(batch)
            if len(batch) < page_size or page >= 100:
                return rows
            page += 1
