"""``/api/v4/webhooks`` of the emulated amoCRM (docs/amocrm-api.md §10; SDK ``Webhooks``).

``GET`` lists the account's subscriptions (``filter[destination]``), ``POST`` subscribes a
destination to ``settings`` (event names such as ``update_contact``), ``DELETE`` unsubscribes a
destination. Unknown event names and non-HTTPS destinations are refused with 400 (GUESS:
amoCRM's validation wording is not documented; the strict answer is the safe one).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse

from sandbox.amocrm.api import no_query
from sandbox.amocrm.gate import ApiContext, amocrm_api
from sandbox.amocrm.models import WebhookSubscription
from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    no_content,
    problem_response,
    validation_problem,
)
from sandbox.amocrm.query import ListQuery, QueryProblem, strings
from sandbox.amocrm.rest import is_int, object_body, self_link, ts
from sandbox.amocrm.webhooks import KNOWN_SETTINGS, subscription_upsert


def _webhook_json(request: HttpRequest, subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "destination": subscription.destination,
        "created_at": ts(subscription.created_at),
        "updated_at": ts(subscription.updated_at),
        "account_id": subscription.account_id,
        "created_by": subscription.created_by,
        "sort": subscription.sort,
        "disabled": subscription.disabled,
        "settings": list(subscription.settings),
        "_links": self_link(request, "/api/v4/webhooks"),
    }


def _destination_error(destination: Any) -> str:
    if not isinstance(destination, str) or not destination.strip():
        return "This value should not be blank."
    parts = urlsplit(destination.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return "This value is not a valid URL."
    return ""


def _list(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    rows = ctx.account.webhooks.order_by("id")
    try:
        destination = query.take("filter")
        if destination is not None:
            if not isinstance(destination, dict) or set(destination) != {"destination"}:
                raise QueryProblem(("filter",), "only filter[destination] is supported")
            rows = rows.filter(
                destination__in=strings(destination["destination"], ("filter", "destination"))
            )
        query.finish()
    except QueryProblem as problem:
        return problem.response()
    items = [_webhook_json(request, s) for s in rows]
    if not items:
        return no_content()
    return hal_response(
        {
            "_total_items": len(items),
            "_links": self_link(request, "/api/v4/webhooks"),
            "_embedded": {"webhooks": items},
        }
    )


def _subscribe(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    body, error = object_body(request)
    if error is not None:
        return error
    errors = ItemErrors("0")
    for key in set(body) - {"destination", "settings", "sort"}:
        errors.add("NotSupportedField", str(key), "This field is not supported.")
    problem = _destination_error(body.get("destination"))
    if problem:
        errors.add("InvalidValue", "destination", problem)
    settings = body.get("settings")
    if not isinstance(settings, list) or not settings:
        errors.add("NotBlank", "settings", "This value should not be blank.")
        settings = []
    for i, name in enumerate(settings):
        if name not in KNOWN_SETTINGS:
            errors.add("NotSupportedChoice", f"settings.{i}", f"Unknown event {name!r}")
    sort = body.get("sort", 10)
    if not is_int(sort) or sort < 0:
        errors.add("InvalidType", "sort", "This value should be of type int.")
    if errors.errors:
        return validation_problem([errors])
    subscription = subscription_upsert(
        account=ctx.account,
        destination=body["destination"].strip(),
        settings=list(dict.fromkeys(settings)),
        sort=sort,
        created_by=ctx.user.pk,
    )
    return hal_response(_webhook_json(request, subscription))


def _unsubscribe(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    body, error = object_body(request)
    if error is not None:
        return error
    problem = _destination_error(body.get("destination"))
    if problem:
        errors = ItemErrors("0")
        errors.add("InvalidValue", "destination", problem)
        return validation_problem([errors])
    deleted, _ = ctx.account.webhooks.filter(destination=body["destination"].strip()).delete()
    if not deleted:
        return problem_response(404, "Webhook not found")  # GUESS
    return no_content()


@amocrm_api("GET", "POST", "DELETE")
def webhooks_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    if request.method == "GET":
        return _list(request, ctx)
    refused = no_query(request)
    if refused is not None:
        return refused
    if request.method == "POST":
        return _subscribe(request, ctx)
    return _unsubscribe(request, ctx)
