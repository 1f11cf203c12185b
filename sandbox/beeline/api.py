"""The emulated Beeline portal API (docs/beeline-api.md), mounted under /sandbox/beeline/.

Every endpoint authenticates by ``X-MPBX-API-AUTH-TOKEN``, then applies the PBX's fault knobs,
then answers JSON (or mp3); errors are ``{"errorCode", "description"}``.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.beeline import audio, clock, selectors, services
from sandbox.beeline.errors import PortalError, bad_request, not_found
from sandbox.beeline.models import Pbx, Record, StatisticsRow
from sandbox.routing import request_is_routed

# How long a "timeout" fault holds the request: longer than any sane client timeout, bounded so
# a forgotten knob does not pin a server thread for ever. Tests shorten it.
TIMEOUT_SLEEP_SECONDS = 35.0
MAX_PAGE_SIZE = 1000
RECORDS_PAGE = 100  # integrators page /records by 100 (docs/beeline-api.md §7)

View = Callable[..., HttpResponse]


def error_response(error: PortalError) -> JsonResponse:
    return JsonResponse(error.as_json(), status=error.status)


def _fault(pbx: Pbx, request: HttpRequest) -> HttpResponse | None:
    if pbx.down:
        return error_response(PortalError(503, "ServiceUnavailable", "Сервис недоступен"))
    if pbx.latency_ms:
        time.sleep(min(pbx.latency_ms, 60_000) / 1000)
    if pbx.timeout:
        if not request_is_routed(request):
            time.sleep(TIMEOUT_SLEEP_SECONDS)
        response = error_response(PortalError(504, "GatewayTimeout", "Время ожидания истекло"))
        response["X-Sandbox-Fault"] = "timeout"
        return response
    # Claim one "fail next" atomically so concurrent requests never fail more than N times.
    if pbx.fail_next and Pbx.objects.filter(pk=pbx.pk, fail_next__gt=0).update(
        fail_next=F("fail_next") - 1
    ):
        return error_response(
            PortalError(pbx.fail_status, "SandboxFault", "Ошибка, заданная в песочнице")
        )
    if pbx.error_rate and random.random() < pbx.error_rate:
        return error_response(PortalError(500, "InternalError", "Внутренняя ошибка сервера"))
    return None


def portal_api(methods: tuple[str, ...]) -> Callable[[View], View]:
    """Token auth, fault knobs, method check and PortalError → JSON for one endpoint."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            pbx = selectors.pbx_by_token(token=request.headers.get("X-MPBX-API-AUTH-TOKEN", ""))
            if pbx is None:
                # 401 and this body are a GUESS (docs/beeline-api.md §1): only the shape is known.
                return error_response(
                    PortalError(401, "Unauthorized", "Неверный или отсутствующий токен API")
                )
            if request.method not in methods:
                response = error_response(
                    PortalError(405, "MethodNotAllowed", f"Метод {request.method} не поддержан")
                )
                response["Allow"] = ", ".join(methods)
                return response
            fault = _fault(pbx, request)
            if fault is not None:
                return fault
            try:
                return view(request, pbx, *args, **kwargs)
            except PortalError as error:
                return error_response(error)

        return wrapper

    return decorate


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("Тело запроса должно быть JSON") from exc
    if not isinstance(data, dict):
        raise bad_request("Тело запроса должно быть JSON-объектом")
    return data


_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


def _date_param(request: HttpRequest, name: str) -> datetime | None:
    """ISO-8601 (``2024-01-01T00:00:00.000Z``, ``date('c')``) or compact ``20240101T000000Z``."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    if match := _COMPACT.match(raw):
        year, month, day, hour, minute, second = map(int, match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise bad_request(f"{name}: неверный формат даты, ожидается 2024-01-01T00:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _int_param(request: HttpRequest, name: str, default: int, *, minimum: int = 0) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise bad_request(f"{name}: ожидается целое число не меньше {minimum}")
    return int(raw)


# --- Abonents and numbers ----------------------------------------------------------------------


@portal_api(("GET",))
def abonents_list(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    return JsonResponse([a.as_api() for a in pbx.abonents.all()], safe=False)


@portal_api(("GET",))
def abonent_detail(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    abonent = selectors.abonent_find(pbx=pbx, pattern=pattern)
    if abonent is None:
        raise not_found("AbonentNotFound", f"Абонент {pattern} не найден")
    return JsonResponse(abonent.as_api())


@portal_api(("POST",))
def abonent_call(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    # phoneNumber is a query parameter; some clients send it form-encoded (docs/beeline-api.md §4).
    phone_number = request.GET.get("phoneNumber") or request.POST.get("phoneNumber", "")
    request_row = services.click_to_call_request(
        pbx=pbx, pattern=pattern, phone_number=phone_number.strip()
    )
    # The real body is undocumented (a bare string or small JSON; GUESS): the call's id.
    return JsonResponse(request_row.ext_tracking_id, safe=False)


def _number_json(number: Any) -> dict[str, Any]:
    # "multichannel" is not in any confirmed payload (GUESS); clients ignore unknown fields.
    return {
        "numberId": number.number_id,
        "phone": number.phone,
        "multichannel": bool(number.multichannel),
    }


@portal_api(("GET",))
def numbers_list(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    return JsonResponse([_number_json(n) for n in pbx.numbers.all()], safe=False)


@portal_api(("GET",))
def number_detail(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    number = selectors.number_find(pbx=pbx, pattern=pattern)
    if number is None:
        raise not_found("NumberNotFound", f"Номер {pattern} не найден")
    return JsonResponse(_number_json(number))


# --- Subscriptions -------------------------------------------------------------------------------


@portal_api(("GET", "PUT", "DELETE"))
def subscription(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    if request.method == "PUT":
        body = _json_body(request)
        created = services.subscription_create(
            pbx=pbx,
            pattern=str(body.get("pattern") or ""),
            expires=body.get("expires"),
            subscription_type=body.get("subscriptionType"),
            url=body.get("url"),
        )
        return JsonResponse(
            {"subscriptionId": created.subscription_id, "expires": created.expires_granted}
        )
    subscription_id = request.GET.get("subscriptionId", "").strip()
    if not subscription_id:
        raise bad_request("Параметр subscriptionId обязателен")
    if request.method == "DELETE":
        services.subscription_delete(pbx=pbx, subscription_id=subscription_id)
        return HttpResponse(status=200)
    found = selectors.subscription_get(pbx=pbx, subscription_id=subscription_id)
    if found is None:
        raise not_found("SubscriptionNotFound", "Подписка не найдена или истекла")
    remaining = math.ceil((found.expires_at - clock.now()).total_seconds())
    return JsonResponse(
        {
            "subscriptionId": found.subscription_id,
            "targetType": found.target_type,
            "targetId": found.target_id,
            "subscriptionType": found.subscription_type,
            "expires": max(remaining, 0),
            "url": found.url,
        }
    )


# --- Records -------------------------------------------------------------------------------------


def _record_json(record: Record) -> dict[str, Any]:
    return {
        "id": record.api_id,
        "externalId": record.ext_tracking_id,
        "phone": record.phone,
        "direction": record.direction,
        "date": clock.epoch_ms(record.date),
        "duration": record.duration_ms,
        "fileSize": audio.mp3_size(record.duration_ms),
        "abonent": record.abonent.as_api(),
    }


@portal_api(("GET",))
def records_list(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    cursor = request.GET.get("id", "").strip()
    after = Record.pk_from_api_id(cursor) if cursor else None
    if cursor and after is None:
        raise bad_request("id: ожидается идентификатор записи (цифры)")
    records = selectors.records_list(
        pbx=pbx,
        date_from=_date_param(request, "dateFrom"),
        date_to=_date_param(request, "dateTo"),
        after_id=after,
        user_id=request.GET.get("userId") or None,
        department=request.GET.get("departmentId") or None,
        limit=RECORDS_PAGE,
    )
    # A record appears in the list only once its file is ready, like the download.
    now = clock.now()
    return JsonResponse([_record_json(r) for r in records if r.ready_at <= now], safe=False)


def _record_by_id(pbx: Pbx, record_id: str) -> Record:
    pk = Record.pk_from_api_id(record_id)
    record = pbx.records.select_related("abonent").filter(pk=pk).first() if pk else None
    if record is None or record.ready_at > clock.now():
        raise not_found("RecordNotFound", "Запись не найдена")
    return record


def _record_by_tracking(pbx: Pbx, ext_tracking_id: str, user_id: str) -> Record:
    record = selectors.record_by_tracking(pbx=pbx, ext_tracking_id=ext_tracking_id, user_id=user_id)
    if record is None:
        raise not_found("RecordNotFound", "Запись не найдена")
    if record.ready_at > clock.now():
        raise not_found("RecordNotFound", "Запись ещё не готова, повторите позже")
    return record


@portal_api(("GET", "DELETE"))
def record_detail(request: HttpRequest, pbx: Pbx, record_id: str) -> HttpResponse:
    record = _record_by_id(pbx, record_id)
    if request.method == "DELETE":
        record.delete()
        return HttpResponse(status=204)  # docs/beeline-api.md §7
    return JsonResponse(_record_json(record))


# --- Temporary public links to a record (``…/reference``) ----------------------------------------

REFERENCE_SALT = "sandbox.beeline.record-reference"
# How long a reference link works is UNKNOWN (docs/beeline-api.md §7); short, so nobody stores it.
REFERENCE_LIFETIME_SECONDS = 30 * 60


def _reference(request: HttpRequest, record: Record) -> JsonResponse:
    token = signing.dumps({"record": record.pk}, salt=REFERENCE_SALT)
    base = settings.BEELINE_API_URL or request.build_absolute_uri("/sandbox/beeline")
    return JsonResponse({"url": f"{base.rstrip('/')}/downloadCallRecording/{token}"})


@portal_api(("GET",))
def record_reference(request: HttpRequest, pbx: Pbx, record_id: str) -> HttpResponse:
    """``GET [v2/]records/{id}/reference`` → ``{"url": …}``, a link that needs no token."""
    return _reference(request, _record_by_id(pbx, record_id))


@portal_api(("GET",))
def record_by_tracking_reference(
    request: HttpRequest, pbx: Pbx, ext_tracking_id: str, user_id: str
) -> HttpResponse:
    return _reference(request, _record_by_tracking(pbx, ext_tracking_id, user_id))


@csrf_exempt
def record_public_download(request: HttpRequest, token: str) -> HttpResponse:
    """Where a reference link points: the mp3 without the API token, until the link expires."""
    if request.method not in ("GET", "HEAD"):
        return error_response(PortalError(405, "MethodNotAllowed", "Только GET"))
    try:
        data = signing.loads(token, salt=REFERENCE_SALT, max_age=REFERENCE_LIFETIME_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return error_response(not_found("RecordNotFound", "Ссылка недействительна или истекла"))
    record = Record.objects.select_related("abonent").filter(pk=data.get("record")).first()
    if record is None:
        return error_response(not_found("RecordNotFound", "Запись не найдена"))
    return mp3_response(request, record)


@csrf_exempt
def not_found_view(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Every path the emulated portal does not serve: Beeline's JSON error, never HTML."""
    return error_response(not_found("NotFound", f"Ресурс /{rest} не найден"))


@portal_api(("GET",))
def record_download(request: HttpRequest, pbx: Pbx, record_id: str) -> HttpResponse:
    return mp3_response(request, _record_by_id(pbx, record_id))


@portal_api(("GET",))
def record_by_tracking_detail(
    request: HttpRequest, pbx: Pbx, ext_tracking_id: str, user_id: str
) -> HttpResponse:
    return JsonResponse(_record_json(_record_by_tracking(pbx, ext_tracking_id, user_id)))


@portal_api(("GET",))
def record_by_tracking_download(
    request: HttpRequest, pbx: Pbx, ext_tracking_id: str, user_id: str
) -> HttpResponse:
    return mp3_response(request, _record_by_tracking(pbx, ext_tracking_id, user_id))


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def mp3_response(request: HttpRequest, record: Record) -> HttpResponse:
    data = audio.mp3_silence(record.duration_ms)
    size = len(data)
    header = request.headers.get("Range", "").strip()
    match = _RANGE.match(header) if header else None
    if header and (match is None or match.groups() == ("", "")):
        match = None
        header = ""  # malformed or multi-range: ignored, the whole file is sent (RFC 9110)
    status = 200
    if match:
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        data, status = data[start : end + 1], 206
    response = HttpResponse(data, status=status, content_type="audio/mpeg")
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(len(data))
    response["Content-Disposition"] = f'inline; filename="{record.ext_tracking_id}.mp3"'
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


# --- Statistics ----------------------------------------------------------------------------------


def _statistics(request: HttpRequest, pbx: Pbx, *, v2: bool) -> HttpResponse:
    page_size = _int_param(request, "pageSize", 100, minimum=1)
    if page_size > MAX_PAGE_SIZE:
        raise bad_request(f"pageSize: не больше {MAX_PAGE_SIZE}")
    rows = selectors.statistics_page(
        pbx=pbx,
        date_from=_date_param(request, "dateFrom"),
        date_to=_date_param(request, "dateTo"),
        user_id=request.GET.get("userId") or None,
        page=_int_param(request, "page", 0),
        page_size=page_size,
    )
    return JsonResponse([_statistics_json(row, v2=v2) for row in rows], safe=False)


def _statistics_json(row: StatisticsRow, *, v2: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "startDate": clock.epoch_ms(row.start),
        "abonent": row.abonent.as_api(),
        "direction": row.direction,
        "status": row.status,
        "duration": row.duration_ms,
    }
    if row.abonent.department:
        data["department"] = row.abonent.department
    if v2:
        data["phone_from"], data["phone_to"] = row.phone_from, row.phone_to
    else:
        client = row.phone_from if row.direction == "INBOUND" else row.phone_to
        data["phone"] = client.removeprefix("+7")
    return data


@portal_api(("GET",))
def statistics_v1(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    return _statistics(request, pbx, v2=False)


@portal_api(("GET",))
def statistics_v2(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    return _statistics(request, pbx, v2=True)
