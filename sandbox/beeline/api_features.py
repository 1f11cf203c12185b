"""Portal API endpoints for the recording switch, ICR and call forwarding (see ``features``)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from sandbox.beeline import features, selectors
from sandbox.beeline.api import portal_api
from sandbox.beeline.errors import bad_request, not_found
from sandbox.beeline.models import Abonent, Pbx


def _body(request: HttpRequest, *, required: bool = True) -> Any:
    if not request.body:
        if required:
            raise bad_request("Тело запроса обязательно (JSON)")
        return None
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("Тело запроса должно быть JSON") from exc


def _abonent(pbx: Pbx, pattern: str) -> Abonent:
    abonent = selectors.abonent_find(pbx=pbx, pattern=pattern)
    if abonent is None:
        raise not_found("AbonentNotFound", f"Абонент {pattern} не найден")
    return abonent


def _done() -> HttpResponse:
    # What these writes answer is not documented; an empty 200 satisfies every known client.
    return HttpResponse(status=200)


@portal_api(("GET", "PUT", "DELETE"))
def abonent_recording(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    """GET: the state as a bare JSON string; PUT switches recording on, DELETE off."""
    abonent = _abonent(pbx, pattern)
    if request.method == "GET":
        return JsonResponse("ON" if abonent.recording else "OFF", safe=False)
    features.recording_set(abonent=abonent, on=request.method == "PUT")
    return _done()


@portal_api(("GET", "PUT", "DELETE"))
def icr_numbers(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    if request.method == "GET":
        data = [{"numberId": n.number_id, "phone": n.phone} for n in features.icr_numbers(pbx=pbx)]
        return JsonResponse(data, safe=False)
    results = features.icr_numbers_switch(
        pbx=pbx, phones=_body(request), enable=request.method == "PUT"
    )
    return JsonResponse(results, safe=False)


_ROUTE_ACTIONS = {"POST": "add", "PUT": "update", "DELETE": "delete"}


@portal_api(("GET", "POST", "PUT", "DELETE"))
def icr_route(request: HttpRequest, pbx: Pbx) -> HttpResponse:
    if request.method == "GET":
        rules = [
            {"inboundNumber": r.inbound_number, "extension": r.extension}
            for r in features.icr_routes(pbx=pbx)
        ]
        return JsonResponse(rules, safe=False)
    results = features.icr_routes_change(
        pbx=pbx, rules=_body(request), action=_ROUTE_ACTIONS[request.method or ""]
    )
    return JsonResponse(results, safe=False)


@portal_api(("GET", "PUT", "DELETE"))
def abonent_cfb(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    abonent = _abonent(pbx, pattern)
    if request.method == "PUT":
        features.cfb_set(abonent=abonent, body=_body(request))
        return _done()
    if request.method == "DELETE":
        features.cfb_clear(abonent=abonent)
        return _done()
    return JsonResponse(features.cfb_json(abonent))


@portal_api(("GET", "POST", "PUT", "DELETE"))
def abonent_cfs(request: HttpRequest, pbx: Pbx, pattern: str) -> HttpResponse:
    """GET the rules; POST adds one (answers its id, a bare string: GUESS); PUT/DELETE switch
    selective forwarding on/off."""
    abonent = _abonent(pbx, pattern)
    if request.method == "POST":
        rule = features.cfs_rule_add(abonent=abonent, body=_body(request))
        return JsonResponse(rule.api_id, safe=False)
    if request.method in ("PUT", "DELETE"):
        if _body(request, required=False) is not None:
            raise bad_request("Включение и выключение не принимают тела запроса")
        features.cfs_switch(abonent=abonent, on=request.method == "PUT")
        return _done()
    return JsonResponse(features.cfs_json(abonent))


@portal_api(("PUT", "DELETE"))
def abonent_cfs_rule(request: HttpRequest, pbx: Pbx, pattern: str, rule_id: str) -> HttpResponse:
    rule = features.cfs_rule_find(abonent=_abonent(pbx, pattern), rule_id=rule_id)
    if request.method == "PUT":
        features.cfs_rule_update(rule=rule, body=_body(request))
    else:
        rule.delete()
    return _done()
