"""A page that hosts our widget the way amoCRM does, for the demo and browser tests.

It loads the widget's rendered ``script.js`` (the same file ``build_widget`` packs) into a page
that provides what amoCRM provides: jQuery, a minimal AMD loader, ``APP``/``AMOCRM`` globals with
the current account and user, and a widget object whose ``$authorizedAjax`` adds a disposable
JWT signed with the client secret (minted here, server side, as amoCRM mints it), ``add_action``
and a fake contact card with phone numbers to click.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crm.widget_bundle import widget_file

TOKEN_LIFETIME = 30 * 60  # docs/amocrm-api.md §2.2


def _int_param(request: HttpRequest, name: str) -> int:
    try:
        return int(request.GET.get(name, ""))
    except ValueError:
        raise Http404(f"?{name}= must be a number") from None


def _sandbox_account(account_id: int) -> tuple[str, str, dict[int, str]]:
    """(subdomain, name, {user id: name}) from the amoCRM emulator, or placeholders."""
    try:
        from sandbox.amocrm.models import Account
    except ImportError:  # the emulator is optional for this page
        return f"account{account_id}", f"Account {account_id}", {}
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return f"account{account_id}", f"Account {account_id}", {}
    return account.subdomain, account.name, dict(account.users.values_list("id", "name"))


def disposable_token(*, account_id: int, user_id: int, subdomain: str, **overrides: Any) -> str:
    """A disposable token shaped as amoCRM's (claims of docs/amocrm-api.md §2.2)."""
    now = int(time.time())
    parts = urlsplit(settings.PUBLIC_URL)
    claims: dict[str, Any] = {
        "iss": f"https://{subdomain}.amocrm.ru",
        "aud": f"{parts.scheme}://{parts.netloc}",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "account_id": account_id,
        "user_id": user_id,
        "client_uuid": settings.AMOCRM_CLIENT_ID,
        "subdomain": subdomain,
        "is_admin": False,
    }
    claims.update(overrides)
    return jwt.encode(claims, settings.AMOCRM_CLIENT_SECRET, algorithm="HS256")


@require_GET
def host_page(request: HttpRequest) -> HttpResponse:
    """``?account=<amo account id>&user=<amo user id>[&area=ccard][&lang=ru]``."""
    account_id = _int_param(request, "account")
    user_id = _int_param(request, "user")
    subdomain, account_name, users = _sandbox_account(account_id)
    area = request.GET.get("area", "ccard")
    lang = "en" if request.GET.get("lang") == "en" else "ru"
    langs = json.loads(widget_file(f"i18n/{lang}.json"))
    context = {
        "account_id": account_id,
        "account_name": account_name,
        "user_id": user_id,
        "user_name": users.get(user_id, f"User {user_id}"),
        "host_config": {
            "account": {"id": account_id, "subdomain": subdomain, "name": account_name},
            "user": {"id": user_id, "name": users.get(user_id, "")},
            "area": area,
            "lang": lang,
            "langs": langs,
            "tokenUrl": f"token?account={account_id}&user={user_id}",
            "scriptUrl": "script.js",
        },
        "card_phones": ["+7 (916) 555-44-33", "8 916 777 66 55"],
    }
    return render(request, "sandbox_widget_host/page.html", context)


@require_GET
def host_token(request: HttpRequest) -> JsonResponse:
    """What amoCRM's front end gets from its back end before each ``$authorizedAjax`` call."""
    account_id = _int_param(request, "account")
    user_id = _int_param(request, "user")
    subdomain, _, _ = _sandbox_account(account_id)
    token = disposable_token(account_id=account_id, user_id=user_id, subdomain=subdomain)
    return JsonResponse({"token": token})


@require_GET
def widget_script(request: HttpRequest) -> HttpResponse:
    return HttpResponse(widget_file("script.js"), content_type="application/javascript")
