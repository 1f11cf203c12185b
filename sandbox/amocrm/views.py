"""The emulator's pages (accounts, the OAuth authorize page) and its token endpoint."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sandbox.amocrm import clock, services
from sandbox.amocrm.forms import (
    AccountCreateForm,
    AuthorizeForm,
    ContactAddForm,
    ContactResponsibleForm,
    FaultsForm,
    PipelineAddForm,
    UserAddForm,
)
from sandbox.amocrm.models import Account, UnsortedEntry
from sandbox.amocrm.pipelines import pipeline_add, pipelines
from sandbox.amocrm.problems import oauth_problem

# --- OAuth ----------------------------------------------------------------------------------

OAUTH_MODES = {"popup", "post_message"}


def oauth_authorize(request: HttpRequest) -> HttpResponse:
    """``GET /oauth?client_id=&state=&mode=``: consent, account choice, «Разрешить»."""

    def param(name: str, default: str = "") -> str:
        return request.GET.get(name) or request.POST.get(name) or default

    client_id = param("client_id")
    state = param("state")
    mode = param("mode", "popup")
    # From the account's «Установить» (amoCRM's own widget install): that account is chosen and
    # the redirect carries from_widget=1 and no state, as amoCRM's install does.
    account_param = param("account")
    account_id = int(account_param) if account_param.isdigit() else None
    from_widget = param("from_widget") == "1"
    integration = services.integration_get()
    if client_id != integration.client_id:
        return render(
            request,
            "sandbox_amocrm/oauth_error.html",
            {"message": "Интеграция с таким client_id не найдена"},
            status=400,
        )
    if mode not in OAUTH_MODES:
        mode = "popup"
    form = AuthorizeForm(request.POST or None, account_id=account_id)
    error = ""
    if request.method == "POST":
        if "deny" in request.POST:
            denied = {"error": "access_denied", "state": state}
            return _oauth_finish(request, integration.redirect_uri, mode, denied)
        if form.is_valid():
            if not form.cleaned_data["consent"]:
                error = "Подтвердите согласие на передачу данных аккаунта на сторонний сервер"
            else:
                account, user = form.chosen()
                code = services.oauth_code_issue(account=account, user=user)
                result = {
                    "code": code,
                    "referer": account.host,
                    "state": state,
                    "client_id": integration.client_id,
                }
                if from_widget:
                    result["from_widget"] = "1"
                result = {key: value for key, value in result.items() if value}
                return _oauth_finish(request, integration.redirect_uri, mode, result)
    return render(
        request,
        "sandbox_amocrm/oauth_authorize.html",
        {
            "integration": integration,
            "form": form,
            "error": error,
            "client_id": client_id,
            "state": state,
            "mode": mode,
            "account_id": account_id or "",
            "from_widget": from_widget,
        },
    )


def _oauth_finish(
    request: HttpRequest, redirect_uri: str, mode: str, result: dict[str, str]
) -> HttpResponse:
    target = f"{redirect_uri}?{urlencode(result)}"
    if mode == "popup":
        return HttpResponseRedirect(target)
    # post_message: the popup hands the result to the page that opened it (GUESS: the exact
    # message shape is undocumented); without an opener, fall back to the redirect.
    return render(
        request,
        "sandbox_amocrm/oauth_post_message.html",
        {"payload": result, "target": target},
    )


@csrf_exempt
@require_POST
def oauth_access_token(request: HttpRequest) -> HttpResponse:
    """``POST /oauth2/access_token``, JSON or form-encoded (both work, docs/amocrm-api.md §1.3)."""
    params: dict[str, str]
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return oauth_problem(
                400,
                services.INVALID_REQUEST_DETAIL,
                "Check that all required parameters have been provided",
            )
        params = {k: str(v) for k, v in data.items() if v is not None}
    else:
        form: QueryDict = request.POST
        params = {k: form.get(k, "") for k in form}
    try:
        grant = services.oauth_token_grant(params=params)
    except services.OAuthError as exc:
        return oauth_problem(exc.status, exc.detail, exc.hint)
    return HttpResponse(json.dumps(grant.as_json()), content_type="application/json")


# --- pages ----------------------------------------------------------------------------------


def index(request: HttpRequest) -> HttpResponse:
    form = AccountCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        account = services.account_create(
            subdomain=data["subdomain"],
            name=data["name"],
            users=[
                {
                    "name": data["admin_name"],
                    "email": data["admin_email"],
                    "phone": data["admin_phone"],
                    "is_admin": True,
                }
            ],
        )
        messages.success(request, "Аккаунт создан")
        return redirect("sandbox_amocrm:account", account_id=account.pk)
    accounts = Account.objects.annotate(
        n_users=Count("users", distinct=True),
        n_contacts=Count("contacts", distinct=True),
        n_calls=Count("calls", distinct=True),
    )
    return render(request, "sandbox_amocrm/index.html", {"accounts": accounts, "form": form})


def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    integration = services.integration_get()
    installation = account.installations.filter(integration=integration).first()
    now = clock.now()
    pairs = list(account.token_pairs.select_related("user")[:10])
    uniq_counts: dict[str, int] = {}
    calls = list(account.calls.select_related("contact").order_by("-id")[:100])
    for call in calls:
        if call.uniq:
            uniq_counts[call.uniq] = uniq_counts.get(call.uniq, 0) + 1
    context = {
        "account": account,
        "integration": integration,
        "installation": installation,
        "users": account.users.all(),
        "contacts": account.contacts.select_related("responsible_user").prefetch_related(
            "tags", "phones"
        )[:200],
        "calls": calls,
        "duplicate_uniqs": {u for u, n in uniq_counts.items() if n > 1},
        "tasks": account.tasks.order_by("-id")[:100],
        "events": account.events.select_related("contact").order_by("-id")[:100],
        "unsorted": account.unsorted.select_related("lead", "contact").order_by("-id")[:100],
        "leads": account.leads.select_related("responsible_user")
        .prefetch_related("contacts", "tags")
        .order_by("-id")[:100],
        "pipelines": {p.id: p for p in pipelines(account)},
        "webhooks": account.webhooks.all(),
        "webhook_deliveries": account.webhook_deliveries.all()[:30],
        "responsible_form": ContactResponsibleForm(account=account, prefix="responsible"),
        "pipeline_form": PipelineAddForm(prefix="pipeline"),
        "hook_calls": account.hook_calls.all()[:20],
        "api_requests": account.api_requests.all()[:30],
        "pairs": [
            {
                "pair": p,
                "access_valid": p.revoked_at is None and p.access_expires_at > now,
                "refresh_valid": p.revoked_at is None
                and p.refresh_used_at is None
                and p.refresh_expires_at > now,
            }
            for p in pairs
        ],
        "faults_form": FaultsForm(instance=account, prefix="faults"),
        "user_form": UserAddForm(prefix="user"),
        "contact_form": ContactAddForm(account=account, prefix="contact"),
    }
    return render(request, "sandbox_amocrm/account.html", context)


@require_POST
def account_faults(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    form = FaultsForm(request.POST, instance=account, prefix="faults")
    if form.is_valid():
        saved = form.save(commit=False)
        if not saved.ban_mode:
            saved.banned_at = None
        saved.save()
        messages.success(request, "Сохранено")
    else:
        messages.error(
            request,
            "Не сохранено: "
            + "; ".join(
                f"{field}: {' '.join(map(str, errs))}" for field, errs in form.errors.items()
            ),
        )
    return redirect("sandbox_amocrm:account", account_id=account.pk)


@require_POST
def account_user_add(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    form = UserAddForm(request.POST, prefix="user")
    if form.is_valid():
        services.user_add(account=account, **form.cleaned_data)
        messages.success(request, "Пользователь добавлен")
    else:
        messages.error(request, "Пользователь не добавлен: проверьте поля")
    return redirect("sandbox_amocrm:account", account_id=account.pk)


@require_POST
def account_contact_add(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    form = ContactAddForm(request.POST, account=account, prefix="contact")
    if form.is_valid():
        data = form.cleaned_data
        services.contact_create(
            account=account,
            name=data["name"],
            responsible=data["responsible"],
            phones=[(data["phone"].strip(), "WORK")],
            tag_names=[t.strip() for t in data["tags"].split(",") if t.strip()],
        )
        messages.success(request, "Контакт добавлен")
    else:
        messages.error(request, "Контакт не добавлен: проверьте поля")
    return redirect("sandbox_amocrm:account", account_id=account.pk)


@require_POST
def account_contact_responsible(
    request: HttpRequest, account_id: int, contact_id: int
) -> HttpResponse:
    """Hand a contact to another user, as a manager does on its card: entity webhooks go out."""
    account = get_object_or_404(Account, pk=account_id)
    contact = get_object_or_404(account.contacts, pk=contact_id)
    form = ContactResponsibleForm(request.POST, account=account, prefix="responsible")
    if form.is_valid():
        changed = services.contact_responsible_change(
            contact=contact, responsible=form.cleaned_data["responsible"]
        )
        messages.success(request, "Ответственный изменён" if changed else "Без изменений")
    else:
        messages.error(request, "Ответственный не изменён: выберите пользователя")
    return redirect(f"{account_url(account)}#contacts")


@require_POST
def account_contact_delete(request: HttpRequest, account_id: int, contact_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    contact = get_object_or_404(account.contacts, pk=contact_id)
    services.contact_delete(contact=contact)
    messages.success(request, "Контакт удалён")
    return redirect(f"{account_url(account)}#contacts")


@require_POST
def account_unsorted_decide(
    request: HttpRequest, account_id: int, uid: str, decision: str
) -> HttpResponse:
    """«Принять» / «Отклонить» on an Unsorted entry, as the first admin."""
    account = get_object_or_404(Account, pk=account_id)
    entry = get_object_or_404(account.unsorted, uid=uid, status=UnsortedEntry.Status.NEW)
    admin = account.users.filter(is_admin=True).order_by("id").first()
    if admin is None or decision not in ("accept", "decline"):
        return HttpResponse("Неизвестное действие", status=404)
    if decision == "accept":
        lead, _contact = services.unsorted_accept(entry=entry, user=admin)
        messages.success(request, f"Принято: сделка #{lead.pk}")
    else:
        services.unsorted_decline(entry=entry, user=admin)
        messages.success(request, "Отклонено")
    return redirect(f"{account_url(account)}#unsorted")


@require_POST
def account_pipeline_add(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    form = PipelineAddForm(request.POST, prefix="pipeline")
    if form.is_valid() and form.stage_names():
        pipeline = pipeline_add(
            account=account, name=form.cleaned_data["name"], stage_names=form.stage_names()
        )
        messages.success(request, f"Воронка «{pipeline.name}» добавлена")
    else:
        messages.error(request, "Воронка не добавлена: нужны название и этапы")
    return redirect(f"{account_url(account)}#leads")


def account_url(account: Account) -> str:
    return reverse("sandbox_amocrm:account", args=[account.pk])


@require_POST
def account_action(request: HttpRequest, account_id: int, action: str) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id)
    if action == "install":
        result = services.install_run(account=account)
        outcome = f"HTTP {result.status_code}" if result.status_code else result.error
        messages.info(request, f"Вебхук установки отправлен: {outcome}, {result.elapsed_ms} мс")
    elif action == "uninstall":
        services.uninstall_run(account=account)
        messages.info(request, "Интеграция отключена, токены отозваны, хук отправлен")
    elif action == "expire":
        services.access_token_expire(account=account)
        messages.info(request, "Access-токены просрочены")
    elif action == "revoke":
        services.tokens_revoke(account=account)
        messages.info(request, "Все токены отозваны")
    elif action == "ban":
        services.account_ban(account=account)
        messages.info(request, "Аккаунт заблокирован (403)")
    elif action == "unban":
        services.account_unban(account=account)
        messages.info(request, "Блокировка снята, счётчики лимита сброшены")
    else:
        return HttpResponse("Неизвестное действие", status=404)
    return redirect("sandbox_amocrm:account", account_id=account.pk)
