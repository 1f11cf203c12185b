"""«Неразобранное» beyond adding (``sandbox.amocrm.api.unsorted_sip_view``): list, read,
accept and decline (docs/amocrm-api.md §7.3; SDK ``Unsorted``, ``UnsortedFilter``).

Only new entries are listed or found: an accepted or declined entry has left Unsorted. Accepting
makes a contact and a lead from the entry's ``_embedded`` (the lead in the entry's pipeline, on
its first open stage unless ``status_id`` says otherwise) and, when the SIP metadata asked for
it (``is_call_event_needed``), logs the call on the new lead.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from sandbox.amocrm import services
from sandbox.amocrm.api import no_query
from sandbox.amocrm.gate import ApiContext, amocrm_api
from sandbox.amocrm.models import UnsortedEntry
from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    problem_response,
    validation_problem,
)
from sandbox.amocrm.query import ListQuery, Node, QueryProblem, by_ids, strings
from sandbox.amocrm.rest import is_int, json_body, paginated, self_link, ts


def unsorted_json(request: HttpRequest, entry: UnsortedEntry) -> dict[str, Any]:
    embedded = entry.embedded or {}
    return {
        "uid": entry.uid,
        "source_uid": entry.source_uid,
        "source_name": entry.source_name,
        "category": entry.category,
        "pipeline_id": entry.pipeline_id,
        "created_at": ts(entry.received_at),
        "metadata": entry.metadata,
        "account_id": entry.account_id,
        "_links": self_link(request, f"/api/v4/leads/unsorted/{entry.uid}"),
        "_embedded": {
            "leads": [
                {"id": 90_000_000 + entry.pk * 10 + i}
                for i, _ in enumerate(embedded.get("leads") or [{}])
            ],
            "contacts": [
                {"id": 95_000_000 + entry.pk * 10 + i}
                for i, _ in enumerate(embedded.get("contacts") or [])
            ],
            "companies": [],
        },
    }


def _by_uid(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    return rows.filter(uid__in=strings(node, path))


def _by_category(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    values = strings(node, path)
    for value in values:
        if value not in ("sip", "mail", "forms", "chats"):
            raise QueryProblem(path, f"{value!r} is not an Unsorted category")
    return rows.filter(category__in=values)


UNSORTED_FILTERS = {
    "uid": _by_uid,
    "category": _by_category,
    "pipeline_id": by_ids("pipeline_id"),
}
_ORDER = {"created_at": "received_at", "updated_at": "received_at"}


@amocrm_api("GET")
def unsorted_list_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    rows = ctx.account.unsorted.filter(status=UnsortedEntry.Status.NEW)
    try:
        rows = query.apply_filters(rows, UNSORTED_FILTERS)
        rows = query.apply_order(rows.order_by("id"), _ORDER)
    except QueryProblem as problem:
        return problem.response()
    return paginated(
        request,
        query,
        rows=rows,
        path="/api/v4/leads/unsorted",
        key="unsorted",
        render=lambda e: unsorted_json(request, e),
    )


def _entry(ctx: ApiContext, uid: str) -> UnsortedEntry | None:
    return ctx.account.unsorted.filter(uid=uid, status=UnsortedEntry.Status.NEW).first()


@amocrm_api("GET")
def unsorted_detail_view(request: HttpRequest, ctx: ApiContext, uid: str) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    entry = _entry(ctx, uid)
    if entry is None:
        return problem_response(404, "Unsorted not found")
    return hal_response(unsorted_json(request, entry))


def _decision_body(request: HttpRequest, ctx: ApiContext, keys: set[str]) -> Any:
    """``{user_id?, status_id?}`` (an empty body is fine); a problem response when invalid."""
    if not request.body:
        return {}
    body, error = json_body(request)
    if error is not None:
        return error
    errors = ItemErrors("0")
    if not isinstance(body, dict):
        errors.add("InvalidType", "", "Expected object")
        return validation_problem([errors])
    for key in set(body) - keys:
        errors.add("NotSupportedField", str(key), "This field is not supported.")
    user_id = body.get("user_id")
    if user_id is not None and (
        not is_int(user_id) or not ctx.account.users.filter(pk=user_id).exists()
    ):
        errors.add("NotSupportedChoice", "user_id", "User not found")
    if errors.errors:
        return validation_problem([errors])
    return body


@amocrm_api("POST")
def unsorted_accept_view(request: HttpRequest, ctx: ApiContext, uid: str) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    entry = _entry(ctx, uid)
    if entry is None:
        return problem_response(404, "Unsorted not found")
    body = _decision_body(request, ctx, {"user_id", "status_id"})
    if isinstance(body, HttpResponse):
        return body
    user = ctx.account.users.get(pk=body["user_id"]) if body.get("user_id") else ctx.user
    try:
        lead, contact = services.unsorted_accept(
            entry=entry, user=user, status_id=body.get("status_id")
        )
    except ValueError as exc:
        errors = ItemErrors("0")
        errors.add("NotSupportedChoice", "status_id", str(exc))
        return validation_problem([errors])
    return hal_response(
        {
            "uid": entry.uid,
            "account_id": ctx.account.pk,
            "pipeline_id": lead.pipeline_id,
            "status_id": lead.status_id,
            "_links": self_link(request, f"/api/v4/leads/unsorted/{entry.uid}/accept"),
            "_embedded": {
                "leads": [{"id": lead.pk}],
                "contacts": [{"id": contact.pk}] if contact else [],
            },
        }
    )


@amocrm_api("DELETE")
def unsorted_decline_view(request: HttpRequest, ctx: ApiContext, uid: str) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    entry = _entry(ctx, uid)
    if entry is None:
        return problem_response(404, "Unsorted not found")
    body = _decision_body(request, ctx, {"user_id"})
    if isinstance(body, HttpResponse):
        return body
    user = ctx.account.users.get(pk=body["user_id"]) if body.get("user_id") else ctx.user
    services.unsorted_decline(entry=entry, user=user)
    return hal_response(
        {
            "uid": entry.uid,
            "account_id": ctx.account.pk,
            "_links": self_link(request, f"/api/v4/leads/unsorted/{entry.uid}/decline"),
        }
    )
