"""The personal cabinet «Beetel Integration»: one view and one template per page.

Organization pages are decorated with ``organization_required`` (cabinet/access.py): they get the
organization from the URL, 404 unless this session unlocked it (or the user is staff), and run
inside its tenant scope. Views stay thin: reads go through selectors, writes through services.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cabinet import access
from cabinet.dashboard import dashboard_chart, dashboard_periods
from cabinet.diagnostics import diagnostic_checks, diagnostics_refresh
from cabinet.forms import (
    BeelineTokenForm,
    CallbackSettingsForm,
    CallOptionsForm,
    CallSettingsForm,
    JournalFilterForm,
    LoginForm,
    ManagersForm,
    MissedPeriodForm,
    NumberNamesForm,
    OrganizationDeleteForm,
    TimeZoneForm,
)
from cabinet.missed import missed_chart
from cabinet.responses import form_response, saved_response, toast_trigger
from cabinet.throttling import login_attempt_allowed
from cabinet.widget_state import widget_state
from core.models import Organization
from core.selectors import organization_by_access_key
from core.services import (
    organization_access_key_rotate,
    organization_delete,
    organization_time_zone_set,
)
from crm.errors import AmoError
from crm.models import AmoUser
from crm.oauth_state import OAuthStateCookie
from crm.selectors import amo_authorize_url, amo_connected, amo_pipelines_for, amo_users_for
from crm.services import amo_pipelines_refresh, amo_users_refresh
from integration.call_options import CallOptionsInvalid, call_options_update
from integration.callback_report import REPORT_PERIODS, callback_report
from integration.callbacks import callback_settings_for, callback_settings_update
from integration.delivery.operations import delivery_retry
from integration.routing import routing_mapping_changed
from integration.selectors import call_journal, call_settings_for, manager_rows_for
from integration.services import ManagerMappingConflict, call_settings_update, manager_mappings_save
from pbx.connection import beeline_token_save
from pbx.errors import BeelineError
from pbx.numbers import pbx_number_rename
from pbx.recording_links import recording_links_revoke
from pbx.selectors import numbers_for, pbx_health

logger = logging.getLogger(__name__)


# --- Public pages -----------------------------------------------------------------------------


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "cabinet/landing.html")


@require_GET
def install_start(request: HttpRequest) -> HttpResponse:
    """«Установить в amoCRM»: off to amoCRM's authorize page with a ``state`` this browser keeps
    in a short-lived signed cookie (an anonymous visitor gets no session row in the database).

    ``popup`` mode: amoCRM redirects the window that opened the URL — here the browser tab
    itself — to our callback, which shows the access key (GUESS: the doc confirms the two modes,
    not how each behaves outside a popup window).
    """
    pending = OAuthStateCookie.read(request)
    response = redirect(amo_authorize_url(session=pending, mode="popup"))
    pending.write(response, secure=request.is_secure())
    return response


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """Log in with an access key; back to ``next`` (the page the session expired on) if this
    key opens it, else to the organization's Dashboard."""
    form = LoginForm(request.POST if request.method == "POST" else None)
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method == "POST":
        if not login_attempt_allowed(request):
            return render(request, "cabinet/throttled.html", status=429)
        if form.is_valid():
            organization = organization_by_access_key(key=form.cleaned_data["key"])
            if organization is not None:
                access.session_unlock(request, organization)
                logger.info("cabinet login", extra={"organization_id": organization.pk})
                target = access.safe_next(request, next_url)
                return redirect(target or reverse("cabinet:dashboard", args=[organization.pk]))
        # Same answer for a malformed key and an unknown one: nothing to learn from it.
        form.errors.clear()
        form.add_error(None, _("Неверный ключ доступа"))
    return render(
        request,
        "cabinet/login.html",
        {
            "form": form,
            "next": access.safe_next_path(request, next_url),
            "expired": request.GET.get("expired") == "1" and request.method == "GET",
        },
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    messages.success(request, _("Вы вышли из личного кабинета."))
    return redirect("cabinet:login")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    current = access.session_current_id(request)
    if current is not None:
        return redirect("cabinet:dashboard", org_id=current)
    if access.user_is_staff(request):
        return redirect("cabinet:organizations")
    return redirect("cabinet:login")


# --- «Список организаций» ----------------------------------------------------------------------


@require_GET
def organizations(request: HttpRequest) -> HttpResponse:
    if not access.session_has_access(request):
        return access.login_redirect(request)
    return _organizations_page(request, LoginForm())


def _organizations_page(
    request: HttpRequest, form: LoginForm, *, status: int = 200
) -> HttpResponse:
    if access.user_is_staff(request):
        listed = list(Organization.objects.order_by("name", "id"))
    else:
        listed = list(
            Organization.objects.filter(pk__in=access.session_organization_ids(request)).order_by(
                "name", "id"
            )
        )
    current_id = access.session_current_id(request)
    current = next((org for org in listed if org.pk == current_id), None)
    return render(
        request,
        "cabinet/organizations.html",
        {
            "organizations": listed,
            "organization": current,
            "current_id": current_id,
            "form": form,
            "tab": "organizations",
        },
        status=status,
    )


@require_POST
def organization_add(request: HttpRequest) -> HttpResponse:
    """«Добавить организацию»: unlock one more organization in this session by its key."""
    if not access.session_has_access(request):
        return access.login_redirect(request)
    if not login_attempt_allowed(request):
        return render(request, "cabinet/throttled.html", status=429)
    form = LoginForm(request.POST)
    organization = (
        organization_by_access_key(key=form.cleaned_data["key"]) if form.is_valid() else None
    )
    if organization is None:
        form.errors.clear()
        form.add_error("key", _("Неверный ключ доступа"))
        return _organizations_page(request, form, status=400)
    if organization.pk in access.session_organization_ids(request):
        access.session_set_current(request, organization.pk)
        messages.info(
            request,
            _("Организация «%(name)s» уже открыта в этом сеансе.") % {"name": organization.name},
        )
    else:
        access.session_unlock(request, organization)
        messages.success(
            request, _("Организация «%(name)s» добавлена.") % {"name": organization.name}
        )
    return redirect("cabinet:dashboard", org_id=organization.pk)


@require_POST
def organization_switch(request: HttpRequest, org_id: int) -> HttpResponse:
    organization = access.organization_for_request(request, org_id)
    access.session_set_current(request, organization.pk)
    return redirect("cabinet:dashboard", org_id=organization.pk)


# --- Organization pages ------------------------------------------------------------------------


JOURNAL_PER_PAGE = 50


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


@require_GET
@access.organization_required(support_may_read=True)
def dashboard(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Counters, the per-day chart and «Журнал звонков». The journal's filters and pages are
    plain GET links; with HTMX only the journal is redrawn (``HX-Target: journal``)."""
    amo_users = list(amo_users_for(organization=organization))
    form = JournalFilterForm(request.GET or None, amo_users=amo_users)
    filters = form.filters()
    journal = call_journal(
        organization=organization,
        **filters,
        page=_page_number(request),
        per_page=JOURNAL_PER_PAGE,
    )
    query = request.GET.copy()
    query.pop("page", None)
    context: dict[str, object] = {
        "organization": organization,
        "tab": "dashboard",
        "form": form,
        "filtered": bool(filters),
        "journal": journal,
        "query": query.urlencode(),
        "current_url": request.get_full_path(),
    }
    if getattr(request, "htmx", False) and request.htmx.target == "journal":  # type: ignore[attr-defined]
        return render(request, "cabinet/dashboard.html#journal", context)
    today = timezone.localdate()
    periods = dashboard_periods(organization=organization, today=today)
    context["periods"] = periods
    context["chart"] = dashboard_chart(days=periods[-1].stats.days, today=today)
    return render(request, "cabinet/dashboard.html", context)


@require_GET
@access.organization_required(support_may_read=True)
def missed(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Пропущенные»: how fast missed calls are returned, for today / 7 / 30 days."""
    form = MissedPeriodForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponseBadRequest(_("Неизвестный период: выберите «Сегодня», 7 или 30 дней."))
    days = form.period() if form.is_bound else 7
    report = callback_report(organization=organization, days=days)
    return render(
        request,
        "cabinet/missed.html",
        {
            "organization": organization,
            "tab": "missed",
            "report": report,
            "periods": REPORT_PERIODS,
            "chart": missed_chart(series=report.series, today=report.today),
        },
    )


@require_POST
@access.organization_required
def call_retry(request: HttpRequest, organization: Organization, call_id: int) -> HttpResponse:
    """«Повторить» on a failed (or paused) call: back in the queue for amoCRM. With HTMX the row
    comes back redrawn with a toast; without JavaScript, a redirect back to the journal."""
    if not call_journal(organization=organization, call_id=call_id).rows:
        raise Http404
    if delivery_retry(organization=organization, call_id=call_id):
        message, level = _("Звонок снова отправлен в amoCRM"), "success"
        access.support_audit(request, organization, f"повтор передачи звонка #{call_id} в amoCRM")
    else:
        message, level = _("Этот звонок не ждёт повтора: он уже передан или в очереди."), "error"
    if getattr(request, "htmx", False):
        row = call_journal(organization=organization, call_id=call_id).rows[0]
        response = render(
            request,
            "cabinet/dashboard.html#journal-row",
            {"organization": organization, "row": row, "current_url": _journal_next(request)},
        )
        response["HX-Trigger"] = toast_trigger(message, level=level)
        return response
    (messages.success if level == "success" else messages.error)(request, message)
    return redirect(_journal_next(request))


def _journal_next(request: HttpRequest) -> str:
    """Where to go back after a journal action: the journal page it came from, or Dashboard."""
    org_id = request.organization.pk  # type: ignore[attr-defined]
    home = reverse("cabinet:dashboard", args=[org_id])
    target = request.POST.get("next", "")
    if target.startswith(home) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return home


def _organization_context(
    organization: Organization,
    *,
    delete_form: OrganizationDeleteForm | None = None,
    numbers_form: NumberNamesForm | None = None,
    time_zone_form: TimeZoneForm | None = None,
) -> dict[str, object]:
    pbx = pbx_health(organization=organization)
    return {
        "organization": organization,
        "tab": "organization",
        "time_zone_form": time_zone_form
        or TimeZoneForm(initial={"time_zone": organization.time_zone}),
        "delete_form": delete_form or OrganizationDeleteForm(organization=organization),
        "numbers_form": numbers_form or NumberNamesForm(numbers=pbx.numbers),
        "pbx": pbx,
        "widget": widget_state(organization=organization),
    }


@require_GET
@access.organization_required
def organization_detail(request: HttpRequest, organization: Organization) -> HttpResponse:
    return render(request, "cabinet/organization.html", _organization_context(organization))


@require_POST
@access.organization_required
def time_zone_save(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The organization's time zone: every date and time of the cabinet is shown in it."""
    form = TimeZoneForm(request.POST)
    if not form.is_valid():
        return form_response(
            request,
            page="cabinet/organization.html",
            fragment="cabinet/organization.html#time-zone-form",
            context=_organization_context(organization, time_zone_form=form),
        )
    organization_time_zone_set(organization=organization, time_zone=form.cleaned_data["time_zone"])
    access.support_audit(request, organization, "изменён часовой пояс")
    organization.refresh_from_db()
    # The page is redrawn whole: every date on it moves to the new zone.
    target = reverse("cabinet:organization", args=[organization.pk])
    messages.success(request, _("Сохранено"))
    if getattr(request, "htmx", False):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


@require_POST
@access.organization_required
def numbers_save(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The «Название» of each company number: the tag the pipeline puts on new contacts."""
    numbers = list(numbers_for(organization=organization))
    form = NumberNamesForm(request.POST, numbers=numbers)
    if form.is_valid():
        changed = form.changed_names()
        for number_id, name in changed:
            pbx_number_rename(organization=organization, number_id=number_id, name=name)
        if changed:
            access.support_audit(request, organization, "изменены названия номеров")
        numbers = list(numbers_for(organization=organization))
        return saved_response(
            request,
            fragment="cabinet/organization.html#numbers-form",
            context=_organization_context(
                organization, numbers_form=NumberNamesForm(numbers=numbers)
            ),
            redirect_to=reverse("cabinet:organization", args=[organization.pk]) + "#numbers-form",
        )
    response = form_response(
        request,
        page="cabinet/organization.html",
        fragment="cabinet/organization.html#numbers-form",
        context=_organization_context(organization, numbers_form=form),
    )
    response.status_code = 400
    return response


@require_POST
@access.organization_required
def organization_remove(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Delete the organization's data: its customer (by key) or a superuser, nobody else."""
    if access.request_role(request) != access.Role.CUSTOMER and not request.user.is_superuser:
        return access.forbidden(
            request,
            organization,
            _(
                "Удалить организацию может только её владелец по ключу доступа "
                "или суперпользователь."
            ),
        )
    form = OrganizationDeleteForm(request.POST, organization=organization)
    if not form.is_valid():
        # The error shows where the admin typed (HTMX swaps the section; without JavaScript the
        # field has autofocus, so the browser scrolls to it).
        return form_response(
            request,
            page="cabinet/organization.html",
            fragment="cabinet/organization.html#delete-form",
            context=_organization_context(organization, delete_form=form),
            error=_("Данные не удалены: название введено неверно."),
        )
    org_id, name = organization.pk, organization.name
    if access.request_role(request) != access.Role.CUSTOMER:
        logger.warning(
            "organization deleted by staff",
            extra={"organization_id": org_id, "staff_user_id": request.user.pk},
        )
    organization_delete(organization=organization)
    access.session_forget(request, org_id)
    messages.success(request, _("Данные организации «%(name)s» удалены.") % {"name": name})
    target = reverse("cabinet:home") if access.session_has_access(request) else "/"
    if getattr(request, "htmx", False):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


def _callback_form(organization: Organization, data: Any = None) -> CallbackSettingsForm:
    return CallbackSettingsForm(
        data,
        amo_users=list(amo_users_for(organization=organization)),
        settings=callback_settings_for(organization=organization),
    )


def _options_form(
    organization: Organization, data: QueryDict | None = None, *, settings: object = None
) -> CallOptionsForm:
    return CallOptionsForm(
        data=data,
        numbers=list(numbers_for(organization=organization)),
        pipelines=amo_pipelines_for(organization=organization),
        settings=settings,  # type: ignore[arg-type]
    )


def _call_settings_context(
    organization: Organization, form: CallSettingsForm, options_form: CallOptionsForm
) -> dict[str, object]:
    return {
        "organization": organization,
        "tab": "call_settings",
        "form": form,
        "options_form": options_form,
        "callback_form": _callback_form(organization),
        "pipelines_loaded": bool(options_form.pipelines),
        # Loaded by themselves on the first visit, when amoCRM can be asked at all.
        "pipelines_autoload": not options_form.pipelines
        and amo_connected(organization=organization),
    }


@require_http_methods(["GET", "POST"])
@access.organization_required
def call_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    """The seven switches and the options beyond the manual, saved together («Сохранить»)."""
    instance = call_settings_for(organization=organization)
    if request.method != "POST":
        context = _call_settings_context(
            organization,
            CallSettingsForm(instance=instance),
            _options_form(organization, settings=instance),
        )
        return render(request, "cabinet/call_settings.html", context)
    form = CallSettingsForm(request.POST, instance=instance)
    options_form = _options_form(organization, request.POST)
    valid = form.is_valid() and options_form.is_valid()
    if valid:
        try:
            call_options_update(organization=organization, options=options_form.options())
        except CallOptionsInvalid as exc:
            options_form.add_error(None, str(exc))
            valid = False
    if not valid:
        response = form_response(
            request,
            page="cabinet/call_settings.html",
            fragment="cabinet/call_settings.html#settings-form",
            context=_call_settings_context(organization, form, options_form),
        )
        response.status_code = 400
        return response
    call_settings_update(organization=organization, values=form.cleaned_data)
    access.support_audit(request, organization, "изменены «Настройки звонков»")
    instance = call_settings_for(organization=organization)
    context = _call_settings_context(
        organization,
        CallSettingsForm(instance=instance),
        _options_form(organization, settings=instance),
    )
    return saved_response(
        request, fragment="cabinet/call_settings.html#settings-form", context=context
    )


@require_POST
@access.organization_required
def call_settings_pipelines(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Загрузить воронки из amoCRM»: pipelines and stages fetched again; with HTMX the options
    come back with the choices made but not saved yet (the form is posted along)."""
    try:
        pipelines = amo_pipelines_refresh(organization=organization)
    except AmoError as exc:
        message = _("Не удалось загрузить воронки из amoCRM: %(reason)s") % {"reason": exc.message}
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Trigger"] = toast_trigger(message, level="error")
            return response
        messages.error(request, message)
        return redirect("cabinet:call_settings", org_id=organization.pk)
    done = _("Воронки amoCRM загружены: %(count)s") % {"count": len(pipelines)}
    if not getattr(request, "htmx", False):
        messages.success(request, done)
        return redirect("cabinet:call_settings", org_id=organization.pk)
    instance = call_settings_for(organization=organization)
    posted = any(k in request.POST for k in ("unsorted_pipeline", "lead_stage", "routing_enabled"))
    options_form = _options_form(organization, request.POST if posted else None, settings=instance)
    if posted:
        options_form.is_valid()  # for the bound values only; errors are not shown here
        options_form.errors.clear()
    response = render(
        request,
        "cabinet/call_settings.html#pipeline-options",
        _call_settings_context(organization, CallSettingsForm(instance=instance), options_form),
    )
    response["HX-Trigger"] = toast_trigger(done)
    return response


@require_POST
@access.organization_required
def callback_settings(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Перезвон пропущенных» on «Настройки звонков» (its own form and Save button)."""
    form = _callback_form(organization, request.POST)
    page = reverse("cabinet:call_settings", args=[organization.pk])
    instance = call_settings_for(organization=organization)
    context = _call_settings_context(
        organization,
        CallSettingsForm(instance=instance),
        _options_form(organization, settings=instance),
    )
    context["callback_form"] = form
    if not form.is_valid():
        response = form_response(
            request,
            page="cabinet/call_settings.html",
            fragment="cabinet/call_settings.html#callback-form",
            context=context,
        )
        response.status_code = 400
        return response
    callback_settings_update(organization=organization, values=form.values())
    access.support_audit(request, organization, "изменён «Перезвон пропущенных»")
    context["callback_form"] = _callback_form(organization)
    return saved_response(
        request,
        fragment="cabinet/call_settings.html#callback-form",
        context=context,
        redirect_to=page + "#callback-form",
    )


# --- «Настройки ключей» -----------------------------------------------------------------------


@never_cache  # the page shows the access key: no copy in any cache (Cache-Control: no-store)
@require_http_methods(["GET", "POST"])
@access.organization_required
def keys(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = BeelineTokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            beeline_token_save(organization=organization, token=form.cleaned_data["token"])
            access.support_audit(request, organization, "заменён Beeline API Token")
        except BeelineError as exc:
            reason = exc.message  # refused: Beeline's own words say what to fix
            if exc.transient:
                reason = _(
                    "Билайн сейчас не отвечает, токен не сохранён. Попробуйте позже. (%(reason)s)"
                ) % {"reason": exc.message}
            form.add_error("token", reason)
        else:
            return saved_response(
                request,
                fragment="cabinet/keys.html#token-form",
                context=_keys_context(request, organization, BeelineTokenForm()),
            )
    context = _keys_context(request, organization, form)
    if request.method == "POST":
        return form_response(
            request,
            page="cabinet/keys.html",
            fragment="cabinet/keys.html#token-form",
            context=context,
            error=_("Токен не сохранён."),
        )
    return render(request, "cabinet/keys.html", context)


def _keys_context(
    request: HttpRequest, organization: Organization, form: BeelineTokenForm
) -> dict[str, object]:
    return {
        "organization": organization,
        "tab": "keys",
        "form": form,
        "pbx": pbx_health(organization=organization),
        # Staff never see the key, even when acting for the customer.
        "show_key": access.request_role(request) == access.Role.CUSTOMER,
    }


@never_cache
@require_POST
@access.organization_required
def keys_rotate(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Сменить ключ»: a new access key; every session opened with the old one is logged out.
    The customer who pressed it stays in (this session is unlocked with the new key)."""
    organization_access_key_rotate(organization=organization)
    if access.request_role(request) == access.Role.CUSTOMER:
        access.session_unlock(request, organization)
    access.support_audit(request, organization, "выдан новый ключ доступа")
    messages.success(
        request,
        _("Ключ доступа заменён. Старый ключ больше не действует, все входы по нему завершены."),
    )
    return redirect("cabinet:keys", org_id=organization.pk)


@require_POST
@access.organization_required
def recording_links_revoke_view(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Отозвать ссылки на записи»: every recording link made so far stops opening."""
    recording_links_revoke(organization=organization)
    access.support_audit(request, organization, "отозваны ссылки на записи разговоров")
    messages.success(request, _("Прежние ссылки на записи разговоров больше не открываются."))
    return redirect("cabinet:keys", org_id=organization.pk)


# --- «Менеджеры» ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.organization_required
def managers(request: HttpRequest, organization: Organization) -> HttpResponse:
    amo_users = list(amo_users_for(organization=organization))
    rows = manager_rows_for(organization=organization, amo_users=amo_users)
    form = ManagersForm(
        request.POST if request.method == "POST" else None, rows=rows, amo_users=amo_users
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                manager_mappings_save(organization=organization, rows=form.mapping_inputs())
            except ManagerMappingConflict:
                form.add_error(None, _("Один менеджер выбран для нескольких номеров."))
            else:
                access.support_audit(request, organization, "сохранены «Менеджеры»")
                # Routing rules name the managers' extensions: they follow the new mapping.
                routing_mapping_changed(organization=organization)
                rows = manager_rows_for(organization=organization, amo_users=amo_users)
                return saved_response(
                    request,
                    fragment="cabinet/managers.html#managers-form",
                    context=_managers_context(
                        organization, ManagersForm(rows=rows, amo_users=amo_users), amo_users
                    ),
                )
        return form_response(
            request,
            page="cabinet/managers.html",
            fragment="cabinet/managers.html#managers-form",
            context=_managers_context(organization, form, amo_users),
            error=_("Не сохранено: исправьте отмеченное."),
        )
    return render(
        request, "cabinet/managers.html", _managers_context(organization, form, amo_users)
    )


@require_POST
@access.organization_required
def managers_refresh(request: HttpRequest, organization: Organization) -> HttpResponse:
    """Load amoCRM's current users. With HTMX the table comes back with the choices the admin
    has made but not saved yet (the form is posted along), so nothing typed is lost."""
    try:
        amo_users = list(amo_users_refresh(organization=organization))
    except AmoError as exc:
        message = _("Не удалось загрузить менеджеров из amoCRM: %(reason)s") % {
            "reason": exc.message
        }
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Trigger"] = toast_trigger(message, level="error")
            return response
        messages.error(request, message)
        return redirect("cabinet:managers", org_id=organization.pk)
    done = _("Менеджеры amoCRM загружены: %(count)s") % {"count": len(amo_users)}
    access.support_audit(request, organization, "загружены менеджеры из amoCRM")
    if not getattr(request, "htmx", False):
        messages.success(request, done)
        return redirect("cabinet:managers", org_id=organization.pk)
    amo_users = list(amo_users_for(organization=organization))
    rows = manager_rows_for(organization=organization, amo_users=amo_users)
    data = request.POST if any(k.startswith("amo_user_") for k in request.POST) else None
    form = ManagersForm(data, rows=rows, amo_users=amo_users)
    response = render(
        request,
        "cabinet/managers.html#managers-form",
        _managers_context(organization, form, amo_users),
    )
    response["HX-Trigger"] = toast_trigger(done)
    return response


def _managers_context(
    organization: Organization, form: ManagersForm, amo_users: list[AmoUser]
) -> dict[str, object]:
    lines = form.lines()
    return {
        "organization": organization,
        "tab": "managers",
        "form": form,
        "lines": lines,
        "amo_users": amo_users,
        # Numbers never saved whose manager is preselected from the profile phone: leaving the
        # page without «Сохранить» would drop those choices, so the page warns as if edited.
        "unsaved_suggestions": any(
            line.row.mapping is None and line.amo_user_id is not None for line in lines
        ),
    }


# --- «Диагностика» ----------------------------------------------------------------------------


@require_GET
@access.organization_required(support_may_read=True)
def diagnostics(request: HttpRequest, organization: Organization) -> HttpResponse:
    return render(request, "cabinet/diagnostics.html", _diagnostics_context(organization, []))


@require_POST
@access.organization_required(support_may_read=True)
def diagnostics_check(request: HttpRequest, organization: Organization) -> HttpResponse:
    """«Проверить»: ask Beeline and amoCRM again, then show the checklist."""
    problems = diagnostics_refresh(organization=organization)
    context = _diagnostics_context(organization, problems)
    if getattr(request, "htmx", False):
        return render(request, "cabinet/diagnostics.html#checklist", context)
    return render(request, "cabinet/diagnostics.html", context)


def _diagnostics_context(organization: Organization, problems: list[str]) -> dict[str, object]:
    checks = diagnostic_checks(organization=organization)
    return {
        "organization": organization,
        "tab": "diagnostics",
        "checks": checks,
        "all_ok": all(check.ok for check in checks),
        "problems": problems,
        "checked_at": timezone.now(),
    }
