"""What every API request goes through before its handler, in amoCRM's order as far as known:

bearer token → account "down" (503) → ban (403) → rate limit (429, maybe → ban) → token validity
(401) → unpaid (402) → injected failures (fail_next / error_rate) → latency → hang (timeout).
After the handler: a write that succeeded may lose its answer (``lost_answer_rate``): the
change is kept and the client gets a 504, as when amoCRM's proxy times out after the write.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.amocrm import clock, ratelimit
from sandbox.amocrm.models import Account, ApiRequest, Integration, TokenPair, User
from sandbox.amocrm.problems import problem_response
from sandbox.amocrm.selectors import token_pair_by_access_token
from sandbox.routing import request_is_routed

# Lets the test routing turn a hang into requests.Timeout (see sandbox.amocrm.testing).
FAULT_HEADER = "X-Sandbox-Fault"

_NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


@dataclass(frozen=True)
class ApiContext:
    account: Account
    user: User
    integration: Integration
    pair: TokenPair


ApiHandler = Callable[..., HttpResponse]  # (request, ctx, **url_kwargs)


def _gateway_error(status: int) -> HttpResponse:
    # amoCRM's front proxies answer gateway errors with an HTML page, not JSON.
    reason = _REASONS.get(status, "Error")
    return HttpResponse(
        _NGINX_PAGE.format(status=status, reason=reason),
        status=status,
        content_type="text/html",
    )


def _failure(status: int) -> HttpResponse:
    if status in _REASONS:
        return _gateway_error(status)
    return problem_response(status, "Internal error (sandbox fault)")


def timeout_sleep(seconds: float) -> None:
    """The hang of the timeout fault (the amoCRM test fixture replaces it with a no-op)."""
    clock.sleep(seconds)


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _unauthorized() -> HttpResponse:
    return problem_response(401, "Unauthorized")


def _gate(request: HttpRequest) -> ApiContext | HttpResponse:
    token = _bearer(request)
    if not token:
        return _unauthorized()
    account_id, pair = token_pair_by_access_token(token)
    if account_id is None or pair is None:
        return _unauthorized()
    account = pair.account
    request.sandbox_account_id = account.pk  # type: ignore[attr-defined]
    if account.down:
        return _gateway_error(503)
    if account.banned_at is not None:
        return problem_response(403, "Доступ ограничен: превышены лимиты запросов к API")
    client_id = pair.integration.client_id
    if not ratelimit.rate_limit_admit(account_id=account.pk, client_id=client_id):
        violations = ratelimit.rate_limit_violation_count(
            account_id=account.pk, client_id=client_id
        )
        if account.ban_mode and violations >= ratelimit.BAN_THRESHOLD:
            Account.objects.filter(pk=account.pk, banned_at__isnull=True).update(
                banned_at=clock.now()
            )
        # 429 bodies are not always JSON (docs/amocrm-api.md §8); give clients the hard case.
        return HttpResponse(b"", status=429, content_type="text/html")
    now = clock.now()
    if pair.revoked_at is not None or pair.access_expires_at <= now:
        return _unauthorized()
    if account.unpaid:
        return problem_response(402, "Payment Required")
    claimed = Account.objects.filter(pk=account.pk, fail_next__gt=0).update(
        fail_next=F("fail_next") - 1
    )
    if claimed or (account.error_rate > 0 and random.random() < account.error_rate):
        return _failure(account.fail_status)
    if account.latency_ms:
        clock.sleep(account.latency_ms / 1000)
    if account.timeout:
        if not request_is_routed(request):
            timeout_sleep(account.timeout_seconds)
        response = _gateway_error(504)
        response[FAULT_HEADER] = "timeout"
        return response
    return ApiContext(account=account, user=pair.user, integration=pair.integration, pair=pair)


_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def _answer_lost(request: HttpRequest, account: Account, response: HttpResponse) -> bool:
    return (
        account.lost_answer_rate > 0
        and request.method in _WRITES
        and 200 <= response.status_code < 300
        and random.random() < account.lost_answer_rate
    )


def amocrm_api(*methods: str) -> Callable[[ApiHandler], Callable[..., HttpResponse]]:
    """Mount an API handler: CSRF-exempt, method check, the gate, and the request log."""

    def decorator(handler: ApiHandler) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(handler)
        def view(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            outcome = _gate(request)
            if isinstance(outcome, HttpResponse):
                response = outcome
            else:
                if request.method not in methods:
                    response = problem_response(405, "Method Not Allowed")
                else:
                    response = handler(request, outcome, *args, **kwargs)
                    if _answer_lost(request, outcome.account, response):
                        response = _gateway_error(504)
            ApiRequest.objects.create(
                account_id=getattr(request, "sandbox_account_id", None),
                method=request.method or "",
                path=request.get_full_path()[:500],
                status=response.status_code,
                created_at=clock.now(),
            )
            return response

        return view

    return decorator
