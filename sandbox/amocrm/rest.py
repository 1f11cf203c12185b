"""Plumbing shared by the emulated API's endpoints: links, bodies, pagination, timestamps."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    no_content,
    problem_response,
    validation_problem,
)
from sandbox.amocrm.query import FilterApply, ListQuery, QueryProblem

MAX_LIMIT = 250
DEFAULT_LIMIT = 50


def api_url(
    request: HttpRequest, path: str, query: dict[str, Any] | list[tuple[str, Any]] | None = None
) -> str:
    """An absolute link a client can follow: on the base URL it called us through."""
    base = settings.AMOCRM_API_BASE_URL or request.build_absolute_uri("/sandbox/amocrm")
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base}{path}{suffix}"


def self_link(request: HttpRequest, path: str) -> dict[str, Any]:
    return {"self": {"href": api_url(request, path)}}


def ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def request_id_of(item: Any, index: int) -> str:
    if isinstance(item, dict) and item.get("request_id") not in (None, ""):
        return str(item["request_id"])
    return str(index)


def json_body(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    try:
        return json.loads(request.body or b"null"), None
    except (ValueError, UnicodeDecodeError):
        return None, problem_response(400, "Request body is not valid JSON")


def array_body(request: HttpRequest) -> tuple[list[Any], HttpResponse | None]:
    data, error = json_body(request)
    if error is not None:
        return [], error
    if not isinstance(data, list) or not data:
        # amoCRM wants a JSON array of entities even for one entity.
        return [], validation_problem(
            [ItemErrors("0", [{"code": "InvalidType", "path": "", "detail": "Expected array"}])]
        )
    return data, None


def object_body(request: HttpRequest) -> tuple[dict[str, Any], HttpResponse | None]:
    data, error = json_body(request)
    if error is not None:
        return {}, error
    if not isinstance(data, dict):
        return {}, validation_problem(
            [ItemErrors("0", [{"code": "InvalidType", "path": "", "detail": "Expected object"}])]
        )
    return data, None


def page_params(query: ListQuery) -> tuple[int, int]:
    """``page`` (from 1) and ``limit`` (1..250); raises QueryProblem."""
    page_raw = query.take_text("page") or "1"
    limit_raw = query.take_text("limit") or str(DEFAULT_LIMIT)
    if not page_raw.isdigit() or int(page_raw) < 1:
        raise QueryProblem(("page",), "page must be a positive integer", "InvalidValue")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_LIMIT:
        raise QueryProblem(("limit",), f"limit must be between 1 and {MAX_LIMIT}", "OutOfRange")
    return int(page_raw), int(limit_raw)


def paginated(
    request: HttpRequest,
    query: ListQuery,
    *,
    rows: QuerySet[Any],
    path: str,
    key: str,
    render: Callable[[Any], dict[str, Any]],
    total: bool = False,
) -> HttpResponse:
    """One page of ``rows`` as HAL, or 204 when empty. Links repeat the query as the client
    sent it (same bracket forms) with only ``page``/``limit`` changed.

    The caller must have taken every parameter it understands: anything left is refused here.
    """
    try:
        page, limit = page_params(query)
        query.finish()
    except QueryProblem as problem:
        return problem.response()
    window = list(rows[(page - 1) * limit : page * limit + 1])
    if not window[:limit]:
        return no_content()
    kept = query.pairs_without("page", "limit")
    links: dict[str, Any] = {
        "self": {"href": api_url(request, path, [*kept, ("page", page), ("limit", limit)])}
    }
    if len(window) > limit:
        links["next"] = {
            "href": api_url(request, path, [*kept, ("page", page + 1), ("limit", limit)])
        }
    if page > 1:
        links["prev"] = {
            "href": api_url(request, path, [*kept, ("page", page - 1), ("limit", limit)])
        }
    body: dict[str, Any] = {"_page": page, "_links": links}
    if total:
        body["_total_items"] = rows.count()
    body["_embedded"] = {key: [render(r) for r in window[:limit]]}
    return hal_response(body)


def filtered_page(
    request: HttpRequest,
    query: ListQuery,
    *,
    rows: QuerySet[Any],
    filters: dict[str, FilterApply],
    order: dict[str, str],
    path: str,
    key: str,
    render: Callable[[Any], dict[str, Any]],
) -> HttpResponse:
    """A list endpoint's answer: ``rows`` narrowed by ``filter[...]``, sorted by ``order[...]``
    (by id when none is asked) and paginated; a refused parameter is answered with its problem."""
    try:
        rows = query.apply_filters(rows, filters)
        rows = query.apply_order(rows.order_by("id"), order)
    except QueryProblem as problem:
        return problem.response()
    return paginated(request, query, rows=rows, path=path, key=key, render=render)
