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
from django.urls import reverse
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


def _optional_int(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isdigit() else None


@require_GET
def host_page(request: HttpRequest) -> HttpResponse:
    """``?account=<amo account id>&user=<amo user id>[&area=ccard][&lang=ru]``; without them,
    a page to choose the account and the user (not an error: people arrive here by link)."""
    account_id = _optional_int(request, "account")
    user_id = _optional_int(request, "user")
    if account_id is None or user_id is None:
        status = 400 if request.GET.get("account") or request.GET.get("user") else 200
        return _chooser(request, account_id, status=status)
    return _card(request, account_id=account_id, user_id=user_id)


def contact_page(request: HttpRequest, contact_id: int) -> HttpResponse:
    """amoCRM's contact card (``/contacts/detail/<id>``, as amoCRM's own URL) with the widget,
    seen by ``?user=`` or by the contact's responsible user."""
    from sandbox.amocrm.models import Contact

    contact = (
        Contact.objects.select_related("account", "responsible_user")
        .prefetch_related("phones", "tags")
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        return render(
            request,
            "sandbox_widget_host/choose.html",
            {"accounts": _accounts(), "error": f"Контакта {contact_id} нет в песочнице amoCRM."},
            status=404,
        )
    user_id = _optional_int(request, "user") or contact.responsible_user_id
    return _card(request, account_id=contact.account_id, user_id=user_id, contact=contact)


def _accounts() -> list[Any]:
    try:
        from sandbox.amocrm.models import Account
    except ImportError:
        return []
    return list(Account.objects.prefetch_related("users").order_by("id"))


def _chooser(request: HttpRequest, account_id: int | None, *, status: int) -> HttpResponse:
    accounts = _accounts()
    if account_id is not None:
        accounts = [a for a in accounts if a.pk == account_id] or accounts
    error = "Укажите числовые ?account= и ?user=." if status == 400 else ""
    return render(
        request,
        "sandbox_widget_host/choose.html",
        {"accounts": accounts, "error": error},
        status=status,
    )


def _card(
    request: HttpRequest, *, account_id: int, user_id: int, contact: Any = None
) -> HttpResponse:
    subdomain, account_name, users = _sandbox_account(account_id)
    area = request.GET.get("area", "ccard")
    lang = "en" if request.GET.get("lang") == "en" else "ru"
    langs = json.loads(widget_file(f"i18n/{lang}.json"))
    query = f"account={account_id}&user={user_id}"
    context = {
        "account_id": account_id,
        "account_name": account_name,
        "user_id": user_id,
        "user_name": users.get(user_id, f"User {user_id}"),
        "users": users,
        "contact": contact,
        "host_config": {
            "account": {"id": account_id, "subdomain": subdomain, "name": account_name},
            "user": {"id": user_id, "name": users.get(user_id, "")},
            "area": area,
            "lang": lang,
            "langs": langs,
            "tokenUrl": f"{reverse('sandbox_amocrm:sandbox_widget_host_token')}?{query}",
            "scriptUrl": reverse("sandbox_amocrm:sandbox_widget_host_script"),
        },
        "card_phones": (
            [phone.value for phone in contact.phones.all()]
            if contact is not None
            else ["+7 (916) 555-44-33", "8 916 777 66 55"]
        ),
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
