"""amoCRM calls these: the OAuth redirect URI (install / re-authorize), the uninstall hook and
the entity webhooks we subscribe to."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.models import Organization
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

# The last install result of this browser, so that the key page survives a reload or the
# language switch (the callback's own URL carries a code that works only once). A signed cookie,
# not the session: an anonymous visitor costs no session row (crm/oauth_state.py says why).
_RESULT_COOKIE = "beetel_install"
_RESULT_SALT = "crm.install-result"
_RESULT_MAX_AGE = 60 * 60


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
            gettext_noop(
                "Доступ не был разрешён. Чтобы подключить «Звонок Beeline», установите виджет "
                "снова и нажмите «Разрешить»."
            ),
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
                gettext_noop(
                    "Ссылка авторизации устарела или открыта в другом браузере. Начните "
                    "установку заново: «Установить в amoCRM»."
                ),
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
    response = _install_done(request, organization, post_message=mode == "post_message")
    # The access key's generation too: once the key is replaced the old result shows nothing.
    _remember(
        request,
        response,
        {"organization_id": organization.pk, "generation": organization.access_key_generation},
    )
    return response


@never_cache  # the answer shows the access key: Cache-Control: no-store
@require_GET
def install_result(request: HttpRequest) -> HttpResponse:
    """The last install result of this browser again (reload, language switch)."""
    result = _remembered(request)
    message, org_id, generation = (
        result.get("message"),
        result.get("organization_id"),
        result.get("generation"),
    )
    if isinstance(message, str):
        return _install_failed(request, message, remember=False)
    organization = (
        Organization.objects.filter(pk=org_id, access_key_generation=generation).first()
        if isinstance(org_id, int) and isinstance(generation, int)
        else None
    )
    if organization is None:
        return redirect("cabinet:landing")
    return _install_done(request, organization, post_message=False)


def _remember(request: HttpRequest, response: HttpResponse, result: dict[str, object]) -> None:
    response.set_signed_cookie(
        _RESULT_COOKIE,
        json.dumps(result, separators=(",", ":")),
        salt=_RESULT_SALT,
        max_age=_RESULT_MAX_AGE,
        httponly=True,
        secure=request.is_secure(),
        samesite="Lax",
    )


def _remembered(request: HttpRequest) -> dict[str, object]:
    try:
        raw = request.get_signed_cookie(_RESULT_COOKIE, salt=_RESULT_SALT, max_age=_RESULT_MAX_AGE)
        loaded = json.loads(raw or "")
    except (KeyError, signing.BadSignature, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _install_done(
    request: HttpRequest, organization: Organization, *, post_message: bool
) -> HttpResponse:
    return render(
        request,
        "crm/install_done.html",
        {
            "organization": organization,
            "access_key": organization.access_key,
            "post_message": post_message,
            "public_origin": settings.PUBLIC_URL,
            "language_next": reverse("crm:install_result"),
        },
    )


def _install_failed(request: HttpRequest, message: str, *, remember: bool = True) -> HttpResponse:
    response = render(
        request,
        "crm/install_failed.html",
        # Messages are kept untranslated and translated here, so the language switch works.
        {"message": _(message), "language_next": reverse("crm:install_result")},
        status=400,
    )
    if remember:
        _remember(request, response, {"message": message})
    return response


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
