"""Sandbox pages: the PBX list and one PBX (state, event log, fault knobs, call form).

These play the Beeline portal's operator side for people; they are not part of the emulated
API and need no token.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from sandbox.beeline import api, clock, services
from sandbox.beeline.errors import PortalError
from sandbox.beeline.forms import CallForm, FaultsForm, PbxCreateForm, StoryForm
from sandbox.beeline.models import Pbx

RECENT = 50


def _remembered_key(pbx: Pbx) -> str:
    return f"sandbox_beeline_call_{pbx.pk}"


@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    form = PbxCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        pbx = services.pbx_create(
            name=form.cleaned_data["name"],
            token=form.cleaned_data["token"] or None,
            abonents=form.cleaned_data["abonents"],
            numbers=form.cleaned_data["numbers"],
        )
        messages.success(request, _("АТС создана"))
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    pbxes = Pbx.objects.all()
    return render(request, "sandbox_beeline/index.html", {"pbxes": pbxes, "form": form})


def _faults_initial(pbx: Pbx) -> dict[str, object]:
    return {
        "latency_ms": pbx.latency_ms,
        "fail_next": pbx.fail_next,
        "fail_status": pbx.fail_status,
        "error_rate": pbx.error_rate,
        "timeout": pbx.timeout,
        "down": pbx.down,
    }


def _call_fire(request: HttpRequest, pbx: Pbx, form: CallForm) -> None:
    data = form.cleaned_data
    try:
        call = services.call_simulate(
            pbx=pbx,
            scenario=data["scenario"],
            abonent_phone=data["abonent"],
            external_phone=data["external_phone"],
            via_number=data["via_number"] or None,
            group=data["group"] or None,
            duplicate=data["duplicate"],
            reorder=data["reorder"],
            drop=data["drop"],
            talk_seconds=data["talk_seconds"],
        )
    except PortalError as error:
        messages.error(request, error.description)
        return
    statuses = ", ".join(str(d.status_code or d.error) for d in call.deliveries) or "—"
    message = _("Звонок %(id)s: событий %(n)s, ответы: %(statuses)s") % {
        "id": call.ext_tracking_id,
        "n": len(call.deliveries),
        "statuses": statuses,
    }
    if call.routed_extension:
        message += " · " + _("ICR: сначала добавочный %(ext)s") % {"ext": call.routed_extension}
    messages.success(request, message)


def _story_fire(request: HttpRequest, pbx: Pbx, form: StoryForm) -> None:
    data = form.cleaned_data
    try:
        calls = services.story_simulate(
            pbx=pbx,
            story=data["story"],
            abonent_phone=data["abonent"],
            external_phone=data["external_phone"],
            minutes=data["minutes"],
            talk_seconds=data["talk_seconds"],
        )
    except PortalError as error:
        messages.error(request, error.description)
        return
    messages.success(
        request,
        _("Сыграно звонков: %(n)s (%(ids)s)")
        % {"n": len(calls), "ids": ", ".join(c.ext_tracking_id for c in calls)},
    )


@require_http_methods(["GET", "POST"])
def pbx_page(request: HttpRequest, pbx_id: int) -> HttpResponse:
    pbx = get_object_or_404(Pbx, pk=pbx_id)
    action = request.POST.get("action", "")
    # The form keeps the last call's choices (scenario, abonent, number…) for the next one.
    remembered = request.session.get(_remembered_key(pbx)) or None
    call_form = CallForm(request.POST if action == "call" else None, pbx=pbx, initial=remembered)
    story_form = StoryForm(request.POST if action == "story" else None, pbx=pbx)
    faults_form = FaultsForm(
        request.POST if action == "faults" else None, initial=_faults_initial(pbx)
    )
    if action == "call" and call_form.is_valid():
        request.session[_remembered_key(pbx)] = call_form.cleaned_data
        _call_fire(request, pbx, call_form)
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    if action == "story" and story_form.is_valid():
        _story_fire(request, pbx, story_form)
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    if action == "faults" and faults_form.is_valid():
        services.faults_set(pbx=pbx, **faults_form.cleaned_data)
        messages.success(request, _("Сбои сохранены"))
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    if action == "terminate":
        subscription = get_object_or_404(
            pbx.subscriptions, subscription_id=request.POST.get("subscription_id", "")
        )
        delivery = services.subscription_terminate(subscription=subscription)
        if delivery is None:
            messages.info(request, _("Подписка уже завершена"))
        else:
            messages.success(
                request,
                _("Отправлено SubscriptionTerminatedEvent, ответ: %(status)s")
                % {"status": delivery.status_code or delivery.error},
            )
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    if action == "expire":
        services.subscriptions_expire_due(pbx=pbx)
        return redirect("sandbox_beeline:pbx", pbx_id=pbx.pk)
    context = {
        "pbx": pbx,
        "now": clock.now(),
        "abonents": pbx.abonents.all(),
        "numbers": pbx.numbers.prefetch_related("members"),
        "subscriptions": pbx.subscriptions.all()[:RECENT],
        "events": pbx.delivered_events.all()[:RECENT],
        "records": pbx.records.select_related("abonent").order_by("-id")[:RECENT],
        "statistics": pbx.statistics.select_related("abonent").order_by("-start", "-id")[:RECENT],
        "click_to_calls": pbx.click_to_calls.select_related("abonent")[:RECENT],
        "icr_routes": pbx.icr_routes.all()[:200],
        "icr_results": pbx.icr_results.all()[:RECENT],
        "call_form": call_form,
        "story_form": story_form,
        "faults_form": faults_form,
    }
    return render(request, "sandbox_beeline/pbx.html", context)


@require_GET
def event_body(request: HttpRequest, pbx_id: int, event_id: int) -> HttpResponse:
    pbx = get_object_or_404(Pbx, pk=pbx_id)
    event = get_object_or_404(pbx.delivered_events, pk=event_id)
    return HttpResponse(event.body, content_type="text/plain; charset=utf-8")


@require_GET
def record_listen(request: HttpRequest, pbx_id: int, record_pk: int) -> HttpResponse:
    """The recording for the page's player (ready or not: the operator may listen early)."""
    pbx = get_object_or_404(Pbx, pk=pbx_id)
    record = pbx.records.filter(pk=record_pk).first()
    if record is None:
        raise Http404
    return api.mp3_response(request, record)
