"""The widget API: ``GET /amocrm/widget/status`` and ``POST /amocrm/widget/call`` [contract].

The widget JS calls them through amoCRM's ``$authorizedAjax``, which adds a disposable JWT in
``X-Auth-Token`` (HS256 with our client secret; docs/amocrm-api.md §2.2). Every answer is JSON:
``{"ok": true, …}`` or ``{"ok": false, "code": "…", "message": "…"}`` with a 4xx/5xx status.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core.models import Organization
from core.phones import phone_parse
from crm import selectors
from crm.errors import WidgetBadNumber, WidgetError
from crm.telephony import TelephonyUnavailable, telephony_backend

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 30


@dataclass(frozen=True, slots=True)
class WidgetCaller:
    organization: Organization
    amo_user_id: int
    claims: dict[str, Any]


class WidgetAuthFailed(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"ok": False, "code": code, "message": message}, status=status)


def _audience() -> str:
    parts = urlsplit(settings.PUBLIC_URL)
    return f"{parts.scheme}://{parts.netloc}"


def widget_caller(request: HttpRequest) -> WidgetCaller:
    """Verify the disposable token and find the organization and amoCRM user it speaks for.

    Checks the signature, ``aud`` (our origin), ``exp``/``nbf``, ``client_uuid`` (our client
    id), then the organization by ``account_id`` and ``iss`` (the account's own address, so a
    token minted for one account cannot speak for another), and finally that its ``jti`` was
    not seen before: amoCRM mints a token per request and does not enforce single use itself
    (GUESS), so we do (docs/security.md).
    """
    token = request.headers.get("X-Auth-Token", "").strip()
    if not token:
        raise WidgetAuthFailed(401, "no_token", _("Нет токена amoCRM (X-Auth-Token)."))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.AMOCRM_CLIENT_SECRET,
            algorithms=["HS256"],
            audience=_audience(),
            leeway=LEEWAY_SECONDS,
            options={
                "require": ["exp", "aud", "iss", "jti", "account_id", "user_id", "client_uuid"]
            },
        )
    except jwt.ExpiredSignatureError:
        raise WidgetAuthFailed(
            401, "token_expired", _("Токен amoCRM истёк: обновите страницу.")
        ) from None
    except jwt.InvalidAudienceError:
        raise WidgetAuthFailed(
            401, "token_audience", _("Токен amoCRM выдан для другого сервера.")
        ) from None
    except jwt.ImmatureSignatureError:
        raise WidgetAuthFailed(
            401, "token_not_yet_valid", _("Токен amoCRM ещё не действует.")
        ) from None
    except jwt.PyJWTError:
        raise WidgetAuthFailed(401, "token_invalid", _("Токен amoCRM недействителен.")) from None
    if str(claims.get("client_uuid")) != settings.AMOCRM_CLIENT_ID:
        raise WidgetAuthFailed(401, "token_client", _("Токен amoCRM выдан для другой интеграции."))
    try:
        account_id, user_id = int(claims["account_id"]), int(claims["user_id"])
    except (TypeError, ValueError):
        raise WidgetAuthFailed(401, "token_invalid", _("Токен amoCRM недействителен.")) from None
    organization = Organization.objects.filter(amo_account_id=account_id).first()
    if organization is None:
        raise WidgetAuthFailed(
            404,
            "organization_unknown",
            _("Этот аккаунт amoCRM не подключён к Beetel: установите виджет «Звонок Beeline»."),
        )
    if organization.status == Organization.Status.DISCONNECTED:
        raise WidgetAuthFailed(
            403,
            "organization_disconnected",
            _("Интеграция отключена: установите виджет «Звонок Beeline» заново."),
        )
    issuer = str(claims.get("iss") or "").strip().lower().rstrip("/")
    if not organization.amo_host or issuer != organization.amo_origin.lower():
        raise WidgetAuthFailed(
            401, "token_issuer", _("Токен amoCRM выдан другим аккаунтом amoCRM.")
        )
    _jti_claim(claims)
    return WidgetCaller(organization=organization, amo_user_id=user_id, claims=claims)


def _jti_claim(claims: dict[str, Any]) -> None:
    """Refuse a token seen before: its ``jti`` is remembered (Redis SET NX) until it expires."""
    jti = str(claims.get("jti") or "")
    if not jti or len(jti) > 128:
        raise WidgetAuthFailed(401, "token_invalid", _("Токен amoCRM недействителен."))
    remaining = int(claims["exp"]) + LEEWAY_SECONDS - int(time.time())
    try:
        first_use = cache.add(f"widget:jti:{jti}", 1, timeout=max(1, remaining))
    except Exception:  # Redis unreachable: without the replay check we do not accept tokens
        logger.warning("widget: jti store unavailable", exc_info=True)
        raise WidgetAuthFailed(
            503, "unavailable", _("Сервис временно недоступен, попробуйте через минуту.")
        ) from None
    if not first_use:
        raise WidgetAuthFailed(
            401, "token_replayed", _("Токен amoCRM уже использован: обновите страницу.")
        )


@require_GET
def widget_status(request: HttpRequest) -> JsonResponse:
    """Organization, user, mapping and telephony health for the card «Соединение установлено»."""
    try:
        caller = widget_caller(request)
    except WidgetAuthFailed as exc:
        return _error(exc.status, exc.code, exc.message)
    organization = caller.organization
    try:
        status = telephony_backend().status(
            organization=organization, amo_user_id=caller.amo_user_id
        )
    except TelephonyUnavailable:
        logger.error("widget: telephony backend missing")
        return _error(503, "telephony_unavailable", _("Телефония не подключена на сервере."))
    amo_user = selectors.amo_user_get(organization=organization, amo_id=caller.amo_user_id)
    needs_reauth = organization.status == Organization.Status.NEEDS_REAUTH
    ok = status.mapped and status.token_ok and not status.error_code
    return JsonResponse(
        {
            "ok": ok,
            "code": "" if ok else (status.error_code or "telephony"),
            "message": "" if ok else status.error_message,
            "organization": {
                "id": organization.pk,
                "name": organization.name,
                "status": organization.status,
                "needs_reauth": needs_reauth,
            },
            "user": {
                "id": caller.amo_user_id,
                "name": (amo_user.name if amo_user else "") or status.manager_name,
            },
            "telephony": status.as_dict(),
        }
    )


@csrf_exempt
@require_POST
def widget_call(request: HttpRequest) -> JsonResponse:
    """Click-to-call: body ``{"phone": "…"}`` (JSON or form). 200 when the PBX accepted it."""
    try:
        caller = widget_caller(request)
    except WidgetAuthFailed as exc:
        return _error(exc.status, exc.code, exc.message)
    raw = request.POST.get("phone", "")
    if not raw and request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw = str(body.get("phone") or "")
    phone = phone_parse(raw)
    try:
        if phone is None:
            raise WidgetBadNumber(_("Не удалось распознать номер телефона: «%s».") % raw[:40])
        telephony_backend().call(
            organization=caller.organization, amo_user_id=caller.amo_user_id, phone=phone
        )
    except TelephonyUnavailable:
        return _error(503, "telephony_unavailable", _("Телефония не подключена на сервере."))
    except WidgetError as exc:
        return _error(exc.http_status, exc.code, exc.message)
    return JsonResponse({"ok": True, "phone": phone.e164, "message": _("Вызов отправлен.")})
