"""amoCRM calls these: the OAuth redirect URI (install / re-authorize), the uninstall hook and
the entity webhooks we subscribe to."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import selectors, services
from crm.errors import AmoInstallError, AmoSignatureInvalid
from crm.oauth_state import OAuthStateCookie
from crm.webhooks import (
    WebhookBodyInvalid,
    amo_webhook_organization_id,
    amo_webhook_parse,
    amo_webhook_received,
)

logger = logging.getLogger(__name__)


@never_cache  # the answer shows the access key: Cache-Control: no-store
@require_GET
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """``GET /amocrm/oauth/callback?code=&referer=[&state=][&from_widget=]`` [contract]."""
    pending = OAuthStateCookie.read(request)
    response = _oauth_callback(request, pending)
    pending.write(response, secure=request.is_secure())
    return response


def _oauth_callback(request: HttpRequest, pending: OAuthStateCookie) -> HttpResponse:
    params = request.GET
    if params.get("error"):
        # The admin pressed «Отклонить» on amoCRM's consent page.
        return _install_failed(
            request,
            "Доступ не был разрешён. Чтобы подключить «Звонок Beeline», установите виджет "
            "снова и нажмите «Разрешить».",
        )
    mode = ""
    state = params.get("state", "")
    if state:
        # Issued by the cabinet («Авторизовать заново», a logged-in session) or by the landing
        # page's install button (the signed cookie of an anonymous visitor).
        found = selectors.amo_oauth_state_pop(session=request.session, state=state)
        if found is None:
            found = selectors.amo_oauth_state_pop(session=pending, state=state)
        if found is None:
            return _install_failed(
                request,
                "Ссылка авторизации устарела или открыта в другом браузере. Вернитесь в личный "
                "кабинет и нажмите «Авторизовать заново» ещё раз.",
            )
        mode = found
    try:
        organization = services.amo_install_complete(
            code=params.get("code", ""),
            referer=params.get("referer", ""),
            state=state or None,
            from_widget=bool(params.get("from_widget")),
        )
    except AmoInstallError as exc:
        return _install_failed(request, exc.message)
    return render(
        request,
        "crm/install_done.html",
        {
            "organization": organization,
            "access_key": organization.access_key,
            "post_message": mode == "post_message",
            "public_origin": settings.PUBLIC_URL,
        },
    )


def _install_failed(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "crm/install_failed.html", {"message": message}, status=400)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    """amoCRM's uninstall hook [contract]: ``?account_id=&client_uuid=&signature=`` (GET), or the
    same fields form-encoded or as JSON (POST; the POST shape is a GUESS,
    docs/amocrm-api.md §2.1)."""
    data: dict[str, str] = {k: request.GET.get(k, "") for k in request.GET}
    if request.method == "POST":
        data.update({k: request.POST.get(k, "") for k in request.POST})
        if request.content_type == "application/json":
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                body = {}
            if isinstance(body, dict):
                data.update({k: str(v) for k, v in body.items() if v is not None})
    try:
        result = services.amo_disconnect(
            account_id=data.get("account_id", ""),
            client_uuid=data.get("client_uuid", ""),
            signature=data.get("signature", ""),
        )
    except AmoSignatureInvalid:
        logger.warning("amo disconnect: bad signature")
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    logger.info(
        "amo disconnect",
        extra={"organization_id": result.organization_id, "outcome": result.outcome},
    )
    # amoCRM ignores the answer; the outcome helps whoever replays or debugs the hook.
    return HttpResponse(result.outcome, content_type="text/plain")


@csrf_exempt
@require_POST
def webhooks(request: HttpRequest, secret: str) -> HttpResponse:
    """``POST /amocrm/webhooks/<secret>`` [contract]: amoCRM's entity events (form-encoded,
    PHP bracket keys). Answered at once; the contacts named are re-read by a task. Events of
    entities we do not follow are answered 200 and ignored."""
    organization_id = amo_webhook_organization_id(secret=secret)
    if organization_id is None:
        return HttpResponse("unknown webhook", status=404, content_type="text/plain")
    try:
        content = amo_webhook_parse((key, request.POST.get(key, "")) for key in request.POST)
        amo_webhook_received(organization_id=organization_id, content=content)
    except WebhookBodyInvalid as exc:
        logger.info("amo webhook refused", extra={"organization_id": organization_id})
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
