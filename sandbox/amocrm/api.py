"""The emulated amoCRM REST API (amocrm-api.md §3–§8): request validation, writes, HAL bodies.

Shapes follow the reference; where it says GUESS, the emulator picks the stricter plausible
behaviour (so code that copes here copes with the real thing) and says so next to the code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.amocrm import clock, selectors, services
from sandbox.amocrm.gate import ApiContext, amocrm_api
from sandbox.amocrm.models import Call, Contact, Event, Task, UnsortedEntry, User
from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    no_content,
    problem_response,
    validation_problem,
)

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
MAX_CALLS_PER_REQUEST = 50  # the SDK's recommended batch size; real amoCRM may allow more
TASK_ENTITY_TYPES = {"leads", "contacts", "companies", "customers"}
CALL_DIRECTIONS = {"inbound", "outbound"}


# --- helpers --------------------------------------------------------------------------------


def api_url(request: HttpRequest, path: str, query: dict[str, Any] | None = None) -> str:
    """An absolute link a client can follow: on the base URL it called us through."""
    base = settings.AMOCRM_API_BASE_URL or request.build_absolute_uri("/sandbox/amocrm")
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base}{path}{suffix}"


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def _json_body(request: HttpRequest) -> tuple[Any, HttpResponse | None]:
    try:
        return json.loads(request.body or b"null"), None
    except (ValueError, UnicodeDecodeError):
        return None, problem_response(400, "Request body is not valid JSON")


def _array_body(request: HttpRequest) -> tuple[list[Any], HttpResponse | None]:
    data, error = _json_body(request)
    if error is not None:
        return [], error
    if not isinstance(data, list) or not data:
        # amoCRM wants a JSON array of entities even for one entity.
        return [], validation_problem(
            [ItemErrors("0", [{"code": "InvalidType", "path": "", "detail": "Expected array"}])]
        )
    return data, None


def _page_params(request: HttpRequest) -> tuple[int, int, HttpResponse | None]:
    errors = ItemErrors("0")
    page = limit = 0
    try:
        page = int(request.GET.get("page", "1"))
        if page < 1:
            raise ValueError
    except ValueError:
        errors.add("InvalidValue", "page", "page must be a positive integer")
    try:
        limit = int(request.GET.get("limit", str(DEFAULT_LIMIT)))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        errors.add("OutOfRange", "limit", f"limit must be between 1 and {MAX_LIMIT}")
    if errors.errors:
        return 0, 0, validation_problem([errors])
    return page, limit, None


def _paginated(
    request: HttpRequest,
    *,
    rows: QuerySet[Any],
    path: str,
    key: str,
    render: Callable[[Any], dict[str, Any]],
    extra_query: dict[str, str],
) -> HttpResponse:
    page, limit, error = _page_params(request)
    if error is not None:
        return error
    window = list(rows[(page - 1) * limit : page * limit + 1])
    if not window[:limit]:
        return no_content()
    query = {**extra_query, "page": page, "limit": limit}
    links: dict[str, Any] = {"self": {"href": api_url(request, path, query)}}
    if len(window) > limit:
        links["next"] = {"href": api_url(request, path, {**query, "page": page + 1})}
    if page > 1:
        links["prev"] = {"href": api_url(request, path, {**query, "page": page - 1})}
    return hal_response(
        {"_page": page, "_links": links, "_embedded": {key: [render(r) for r in window[:limit]]}}
    )


def _request_id(item: Any, index: int) -> str:
    if isinstance(item, dict) and item.get("request_id") not in (None, ""):
        return str(item["request_id"])
    return str(index)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _self_link(request: HttpRequest, path: str) -> dict[str, Any]:
    return {"self": {"href": api_url(request, path)}}


# --- account and users ----------------------------------------------------------------------


@amocrm_api("GET")
def account_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    account = ctx.account
    admin = account.users.filter(is_admin=True).order_by("id").first()
    created_by = admin.pk if admin else 0
    body: dict[str, Any] = {
        "id": account.pk,
        "name": account.name,
        "subdomain": account.subdomain,
        "created_at": _ts(account.created_at),
        "created_by": created_by,
        "updated_at": _ts(account.created_at),
        "updated_by": created_by,
        "current_user_id": ctx.user.pk,
        "country": "RU",
        "currency": "RUB",
        "currency_symbol": "₽",
        "customers_mode": "disabled",
        "is_unsorted_on": account.is_unsorted_on,
        "mobile_feature_version": 0,
        "is_loss_reason_enabled": True,
        "is_helpbot_enabled": False,
        "is_technical_account": False,
        "contact_name_display_order": 1,
        "_links": _self_link(request, "/api/v4/account"),
    }
    with_ = set(request.GET.get("with", "").split(","))
    if "amojo_id" in with_:
        body["amojo_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"amojo:{account.pk}"))
    if "uuid" in with_:
        body["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"account:{account.pk}"))
    if "version" in with_:
        body["version"] = 26
    if "datetime_settings" in with_:
        body["datetime_settings"] = {"timezone": "Europe/Moscow", "timezone_offset": "+03:00"}
    if "task_types" in with_:
        body.setdefault("_embedded", {})["task_types"] = [
            {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
            {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
        ]
    if "users_groups" in with_:
        body.setdefault("_embedded", {})["users_groups"] = [
            {"id": 0, "name": "Отдел продаж", "uuid": None}
        ]
    return hal_response(body)


def _user_json(request: HttpRequest, user: User, *, with_phone: bool) -> dict[str, Any]:
    rights_view = "A" if user.is_admin else "M"
    body: dict[str, Any] = {
        "id": user.pk,
        "name": user.name,
        "email": user.email,
        "lang": "ru",
        "rights": {
            "leads": {"view": rights_view, "edit": rights_view, "add": "A", "delete": "A"},
            "contacts": {"view": rights_view, "edit": rights_view, "add": "A", "delete": "A"},
            "companies": {"view": rights_view, "edit": rights_view, "add": "A", "delete": "A"},
            "tasks": {"edit": "A", "delete": "A"},
            "mail_access": True,
            "catalog_access": True,
            "is_admin": user.is_admin,
            "is_free": False,
            "is_active": user.is_active,
            "group_id": None,
            "role_id": None,
        },
        "_links": _self_link(request, f"/api/v4/users/{user.pk}"),
    }
    if with_phone:
        # The profile field as typed, or null when empty (free text: clients must normalise).
        body["phone_number"] = user.phone or None
    return body


def _admin_only(ctx: ApiContext) -> HttpResponse | None:
    if not ctx.user.is_admin:
        return problem_response(403, "Не хватает прав")
    return None


@amocrm_api("GET")
def users_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    denied = _admin_only(ctx)
    if denied is not None:
        return denied
    with_ = request.GET.get("with", "")
    with_phone = "phone_number" in with_.split(",")
    response = _paginated(
        request,
        rows=ctx.account.users.order_by("id"),
        path="/api/v4/users",
        key="users",
        render=lambda u: _user_json(request, u, with_phone=with_phone),
        extra_query={"with": with_} if with_ else {},
    )
    if response.status_code == 200:
        body = json.loads(response.content)
        body["_total_items"] = ctx.account.users.count()
        response = hal_response(body)
    return response


@amocrm_api("GET")
def user_detail_view(request: HttpRequest, ctx: ApiContext, user_id: int) -> HttpResponse:
    denied = _admin_only(ctx)
    if denied is not None:
        return denied
    user = ctx.account.users.filter(pk=user_id).first()
    if user is None:
        return problem_response(404, "User not found")
    with_phone = "phone_number" in request.GET.get("with", "").split(",")
    return hal_response(_user_json(request, user, with_phone=with_phone))


# --- contacts -------------------------------------------------------------------------------


def _contact_json(request: HttpRequest, contact: Contact, with_: set[str]) -> dict[str, Any]:
    embedded: dict[str, Any] = {
        "tags": [{"id": t.pk, "name": t.name, "color": None} for t in contact.tags.all()],
        "companies": [],
    }
    if "leads" in with_:
        embedded["leads"] = []
    if "customers" in with_:
        embedded["customers"] = []
    return {
        "id": contact.pk,
        "name": contact.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "responsible_user_id": contact.responsible_user_id,
        "group_id": 0,
        "created_by": contact.created_by,
        "updated_by": contact.created_by,
        "created_at": _ts(contact.created_at),
        "updated_at": _ts(contact.updated_at),
        "closest_task_at": None,
        "is_deleted": False,
        "is_unsorted": False,
        # amoCRM sends null, not [], for a contact with no custom field filled.
        "custom_fields_values": contact.custom_fields_values or None,
        "account_id": contact.account_id,
        "_links": _self_link(request, f"/api/v4/contacts/{contact.pk}"),
        "_embedded": embedded,
    }


def _filter_ids(request: HttpRequest) -> list[int] | None:
    raw = request.GET.getlist("filter[id][]") + request.GET.getlist("filter[id]")
    try:
        return [int(v) for value in raw for v in value.split(",") if v]
    except ValueError:
        return None


@amocrm_api("GET", "POST")
def contacts_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    if request.method == "POST":
        return _contacts_add(request, ctx)
    ids = _filter_ids(request)
    if ids is None:
        return validation_problem(
            [ItemErrors("0", [{"code": "InvalidType", "path": "filter.id", "detail": "int"}])]
        )
    with_raw = request.GET.get("with", "")
    with_ = set(with_raw.split(",")) if with_raw else set()
    query = request.GET.get("query", "")
    extra = {k: v for k, v in (("query", query), ("with", with_raw)) if v}
    return _paginated(
        request,
        rows=selectors.contacts_search(account=ctx.account, query=query, ids=ids).prefetch_related(
            "tags"
        ),
        path="/api/v4/contacts",
        key="contacts",
        render=lambda c: _contact_json(request, c, with_),
        extra_query=extra,
    )


@amocrm_api("GET")
def contact_detail_view(request: HttpRequest, ctx: ApiContext, contact_id: int) -> HttpResponse:
    contact = ctx.account.contacts.filter(pk=contact_id).first()
    if contact is None:
        return no_content()  # amoCRM answers a missing entity by id with 204 (GUESS)
    with_ = set(request.GET.get("with", "").split(","))
    return hal_response(_contact_json(request, contact, with_))


_FIELD_ENUMS = {"PHONE": services.PHONE_ENUMS, "EMAIL": services.EMAIL_ENUMS}


def _contact_fields(
    ctx: ApiContext, raw: Any, errors: ItemErrors
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    phones: list[tuple[str, str]] = []
    emails: list[tuple[str, str]] = []
    if raw is None:
        return phones, emails
    if not isinstance(raw, list):
        errors.add("InvalidType", "custom_fields_values", "Expected array")
        return phones, emails
    by_id = {ctx.account.phone_field_id: "PHONE", ctx.account.email_field_id: "EMAIL"}
    for i, field in enumerate(raw):
        path = f"custom_fields_values.{i}"
        if not isinstance(field, dict):
            errors.add("InvalidType", path, "Expected object")
            continue
        code = field.get("field_code")
        if code is None and "field_id" in field:
            code = by_id.get(field["field_id"])
            if code is None:
                errors.add("NotSupportedChoice", f"{path}.field_id", "Field not found")
                continue
        if code not in _FIELD_ENUMS:
            errors.add("NotSupportedChoice", f"{path}.field_code", "Field not found")
            continue
        values = field.get("values")
        if not isinstance(values, list) or not values:
            errors.add("NotBlank", f"{path}.values", "This value should not be blank.")
            continue
        enums = _FIELD_ENUMS[code]
        for j, item in enumerate(values):
            vpath = f"{path}.values.{j}"
            if not isinstance(item, dict) or not isinstance(item.get("value"), str | int):
                errors.add("InvalidType", f"{vpath}.value", "This value should be of type string.")
                continue
            value = str(item["value"]).strip()
            if not value:
                errors.add("NotBlank", f"{vpath}.value", "This value should not be blank.")
                continue
            enum_code = item.get("enum_code")
            if enum_code is None and "enum_id" in item:
                enum_code = next((k for k, v in enums.items() if v == item["enum_id"]), None)
                if enum_code is None:
                    errors.add("NotSupportedChoice", f"{vpath}.enum_id", "Enum not found")
                    continue
            enum_code = enum_code or "WORK"
            if enum_code not in enums:
                errors.add("NotSupportedChoice", f"{vpath}.enum_code", "Enum not found")
                continue
            (phones if code == "PHONE" else emails).append((value, enum_code))
    return phones, emails


def _contact_tags(
    ctx: ApiContext, embedded: Any, errors: ItemErrors
) -> tuple[list[str], list[int]]:
    names: list[str] = []
    ids: list[int] = []
    if embedded is None:
        return names, ids
    tags = embedded.get("tags") if isinstance(embedded, dict) else None
    if tags is None:
        return names, ids
    if not isinstance(tags, list):
        errors.add("InvalidType", "_embedded.tags", "Expected array")
        return names, ids
    for i, tag in enumerate(tags):
        if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"].strip():
            names.append(tag["name"].strip())
        elif isinstance(tag, dict) and _is_int(tag.get("id")):
            if not ctx.account.tags.filter(pk=tag["id"]).exists():
                errors.add("NotSupportedChoice", f"_embedded.tags.{i}.id", "Tag not found")
            ids.append(tag["id"])
        else:
            errors.add("InvalidType", f"_embedded.tags.{i}", "Tag needs a name or an id")
    return names, ids


def _contacts_add(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = _array_body(request)
    if error is not None:
        return error
    prepared: list[dict[str, Any]] = []
    all_errors: list[ItemErrors] = []
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    for index, item in enumerate(items):
        errors = ItemErrors(_request_id(item, index))
        all_errors.append(errors)
        if not isinstance(item, dict):
            errors.add("InvalidType", "", "Expected object")
            continue
        for key in ("name", "first_name", "last_name"):
            if key in item and not isinstance(item[key], str):
                errors.add("InvalidType", key, "This value should be of type string.")
        responsible = item.get("responsible_user_id", ctx.user.pk)
        if not _is_int(responsible) or responsible not in user_ids:
            errors.add("NotSupportedChoice", "responsible_user_id", "User not found")
        phones, emails = _contact_fields(ctx, item.get("custom_fields_values"), errors)
        tag_names, tag_ids = _contact_tags(ctx, item.get("_embedded"), errors)
        prepared.append(
            {
                "name": item.get("name") if isinstance(item.get("name"), str) else "",
                "first_name": item.get("first_name") or "",
                "last_name": item.get("last_name") or "",
                "responsible": responsible,
                "phones": phones,
                "emails": emails,
                "tag_names": tag_names,
                "tag_ids": tag_ids,
                "request_id": errors.request_id,
            }
        )
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    users = {u.pk: u for u in ctx.account.users.all()}
    created = []
    with transaction.atomic():
        for data in prepared:
            name = data["name"] or " ".join(p for p in (data["first_name"], data["last_name"]) if p)
            contact = services.contact_create(
                account=ctx.account,
                name=name,
                first_name=str(data["first_name"]),
                last_name=str(data["last_name"]),
                responsible=users[data["responsible"]],
                phones=data["phones"],
                emails=data["emails"],
                tag_names=data["tag_names"],
                tag_ids=data["tag_ids"],
                created_by=ctx.user.pk,
            )
            created.append((contact, data["request_id"]))
    return hal_response(
        {
            "_links": _self_link(request, "/api/v4/contacts"),
            "_embedded": {
                "contacts": [
                    {
                        "id": contact.pk,
                        "request_id": request_id,
                        "is_deleted": False,
                        "is_unsorted": False,
                        "_links": _self_link(request, f"/api/v4/contacts/{contact.pk}"),
                    }
                    for contact, request_id in created
                ]
            },
        }
    )


# --- calls ----------------------------------------------------------------------------------


def _call_item_errors(item: Any, errors: ItemErrors, user_ids: set[int]) -> None:
    if not isinstance(item, dict):
        errors.add("InvalidType", "", "Expected object")
        return
    if item.get("direction") not in CALL_DIRECTIONS:
        errors.add("NotSupportedChoice", "direction", "direction must be inbound or outbound")
    if not _is_int(item.get("duration")) or item["duration"] < 0:
        errors.add("InvalidType", "duration", "This value should be of type int.")
    for key in ("source", "phone"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            errors.add("NotBlank", key, "This value should not be blank.")
    # Optional fields must be absent rather than null (SDK#570).
    for key in ("uniq", "link", "call_result", "call_status", "call_responsible"):
        if key in item and item[key] is None:
            errors.add("NotNullable", key, "This value should not be null.")
    for key in ("uniq", "link", "call_result"):
        if item.get(key) is not None and not isinstance(item[key], str):
            errors.add("InvalidType", key, "This value should be of type string.")
    status = item.get("call_status")
    if status is not None and (not _is_int(status) or not 1 <= status <= 8):
        errors.add("NotSupportedChoice", "call_status", "call_status must be 1..8")
    for key in ("responsible_user_id", "created_by"):
        value = item.get(key)
        if value is not None and (not _is_int(value) or (value and value not in user_ids)):
            errors.add("NotSupportedChoice", key, "User not found")
    if item.get("created_at") is not None and not _is_int(item["created_at"]):
        errors.add("InvalidType", "created_at", "This value should be of type int.")


@amocrm_api("POST")
def calls_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = _array_body(request)
    if error is not None:
        return error
    if len(items) > MAX_CALLS_PER_REQUEST:
        return validation_problem(
            [ItemErrors("0", [{"code": "TooMany", "path": "", "detail": "At most 50 calls"}])]
        )
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    all_errors = []
    for index, item in enumerate(items):
        errors = ItemErrors(_request_id(item, index))
        _call_item_errors(item, errors, user_ids)
        all_errors.append(errors)
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)

    added: list[dict[str, Any]] = []
    not_found: list[dict[str, Any]] = []
    now = clock.now()
    with transaction.atomic():
        for index, item in enumerate(items):
            request_id = _request_id(item, index)
            # Matched on the last 10 digits (CONFIRMED); no match → not added (CONFIRMED).
            contact = selectors.contact_by_phone_suffix(
                account=ctx.account, phone=item["phone"], suffix_len=10
            )
            if contact is None:
                # Body shape from SDK#52; per-item fields beyond the title are a GUESS.
                not_found.append(
                    {"request_id": request_id, "title": "Entity not found", "status": 400}
                )
                continue
            # `uniq` is stored, not deduplicated: no evidence amoCRM dedupes on it (GUESS).
            call = Call.objects.create(
                account=ctx.account,
                contact=contact,
                direction=item["direction"],
                duration=item["duration"],
                source=item["source"],
                phone=item["phone"],
                uniq=item.get("uniq") or "",
                link=item.get("link") or "",
                call_result=item.get("call_result") or "",
                call_status=item.get("call_status"),
                call_responsible=str(item.get("call_responsible") or ""),
                responsible_user_id=item.get("responsible_user_id"),
                created_by=item.get("created_by"),
                request_id=request_id,
                payload=item,
                received_at=now,
            )
            added.append(
                {
                    "id": call.pk,
                    "entity_id": contact.pk,
                    "entity_type": "contacts",
                    "account_id": ctx.account.pk,
                    "request_id": request_id,
                    "_embedded": {
                        "entity": {
                            "id": contact.pk,
                            "_links": _self_link(request, f"/api/v4/contacts/{contact.pk}"),
                        }
                    },
                }
            )
    body = {"_total_items": len(added), "_embedded": {"calls": added}, "errors": not_found}
    # Nothing added → 400 (CONFIRMED, SDK#52); a partly failed batch → 200 + errors (GUESS).
    return hal_response(body, status=200 if added else 400)


# --- tasks ----------------------------------------------------------------------------------


# GET /api/v4/contacts/{id}/notes (read-only, call notes only): added for the pipeline, which
# must check whether a call whose POST had an ambiguous outcome is already there. Shape after
# the SDK's NoteModel / CallInNote (amocrm-api.md §5 "Alternative when the entity is known"):
# note_type call_in/call_out with params {uniq, duration, source, link, phone, call_result,
# call_status}. A call posted through /api/v4/calls is shown as such a note on its contact.
_NOTE_TYPES = {"inbound": "call_in", "outbound": "call_out"}


def _call_note_json(request: HttpRequest, call: Call) -> dict[str, Any]:
    params: dict[str, Any] = {
        "uniq": call.uniq,
        "duration": call.duration,
        "source": call.source,
        "link": call.link,
        "phone": call.phone,
        "call_result": call.call_result,
        "call_status": call.call_status,
    }
    return {
        "id": call.pk,
        "entity_id": call.contact_id,
        "created_by": call.created_by or 0,
        "updated_by": call.created_by or 0,
        "created_at": _ts(call.received_at),
        "updated_at": _ts(call.received_at),
        "responsible_user_id": call.responsible_user_id or 0,
        "group_id": 0,
        "note_type": _NOTE_TYPES.get(call.direction, "call_in"),
        "params": params,
        "account_id": call.account_id,
        "_links": _self_link(request, f"/api/v4/contacts/{call.contact_id}/notes/{call.pk}"),
    }


@amocrm_api("GET")
def contact_notes_view(request: HttpRequest, ctx: ApiContext, contact_id: int) -> HttpResponse:
    wanted = set(
        request.GET.getlist("filter[note_type][]") + request.GET.getlist("filter[note_type]")
    )
    directions = [d for d, t in _NOTE_TYPES.items() if not wanted or t in wanted]
    rows = ctx.account.calls.filter(contact_id=contact_id, direction__in=directions).order_by("id")
    extra = {"filter[note_type][]": ",".join(sorted(wanted))} if wanted else {}
    return _paginated(
        request,
        rows=rows,
        path=f"/api/v4/contacts/{contact_id}/notes",
        key="notes",
        render=lambda c: _call_note_json(request, c),
        extra_query=extra,
    )


def _task_json(request: HttpRequest, task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "text": task.text,
        "complete_till": task.complete_till,
        "entity_type": task.entity_type or None,
        "entity_id": task.entity_id,
        "task_type_id": task.task_type_id,
        "responsible_user_id": task.responsible_user_id,
        "is_completed": task.is_completed,
        "created_at": _ts(task.received_at),
        "account_id": task.account_id,
        "_links": _self_link(request, f"/api/v4/tasks/{task.pk}"),
    }


def _tasks_list(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    # GET /api/v4/tasks?filter[entity_type]=&filter[entity_id][]=&filter[is_completed]=
    # (amocrm-api.md §6, CONFIRMED filters); added for the pipeline's "already posted?" check.
    rows = ctx.account.tasks.all()
    entity_type = request.GET.get("filter[entity_type]")
    if entity_type:
        rows = rows.filter(entity_type=entity_type)
    raw_ids = request.GET.getlist("filter[entity_id][]") + request.GET.getlist("filter[entity_id]")
    try:
        ids = [int(v) for value in raw_ids for v in value.split(",") if v]
    except ValueError:
        return validation_problem(
            [
                ItemErrors(
                    "0", [{"code": "InvalidType", "path": "filter.entity_id", "detail": "int"}]
                )
            ]
        )
    if ids:
        rows = rows.filter(entity_id__in=ids)
    completed = request.GET.get("filter[is_completed]")
    if completed in ("0", "1"):
        rows = rows.filter(is_completed=completed == "1")
    extra = {
        k: str(request.GET.get(k, ""))
        for k in request.GET
        if k.startswith("filter[") and k not in ("filter[entity_id][]",)
    }
    if ids:
        extra["filter[entity_id][]"] = ",".join(str(i) for i in ids)
    return _paginated(
        request,
        rows=rows.order_by("id"),
        path="/api/v4/tasks",
        key="tasks",
        render=lambda t: _task_json(request, t),
        extra_query=extra,
    )


@amocrm_api("GET", "POST")
def tasks_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    if request.method == "GET":
        return _tasks_list(request, ctx)
    items, error = _array_body(request)
    if error is not None:
        return error
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    all_errors = []
    for index, item in enumerate(items):
        errors = ItemErrors(_request_id(item, index))
        all_errors.append(errors)
        if not isinstance(item, dict):
            errors.add("InvalidType", "", "Expected object")
            continue
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            errors.add("NotBlank", "text", "This value should not be blank.")
        if not _is_int(item.get("complete_till")):
            errors.add("InvalidType", "complete_till", "This value should be of type int.")
        entity_type = item.get("entity_type")
        if entity_type is not None and entity_type not in TASK_ENTITY_TYPES:
            errors.add("NotSupportedChoice", "entity_type", "Unknown entity type")
        if entity_type is not None and not _is_int(item.get("entity_id")):
            errors.add("InvalidType", "entity_id", "This value should be of type int.")
        elif (
            entity_type == "contacts"
            and not ctx.account.contacts.filter(pk=item["entity_id"]).exists()
        ):
            errors.add("NotSupportedChoice", "entity_id", "Entity not found")
        responsible = item.get("responsible_user_id", ctx.user.pk)
        if not _is_int(responsible) or responsible not in user_ids:
            errors.add("NotSupportedChoice", "responsible_user_id", "User not found")
        task_type = item.get("task_type_id", 1)
        if not _is_int(task_type) or task_type not in (1, 2):
            errors.add("NotSupportedChoice", "task_type_id", "Task type not found")
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    now = clock.now()
    created: list[Task] = []
    with transaction.atomic():
        for index, item in enumerate(items):
            created.append(
                Task.objects.create(
                    account=ctx.account,
                    text=item["text"],
                    complete_till=item["complete_till"],
                    entity_type=item.get("entity_type") or "",
                    entity_id=item.get("entity_id"),
                    task_type_id=item.get("task_type_id", 1),
                    responsible_user_id=item.get("responsible_user_id", ctx.user.pk),
                    is_completed=bool(item.get("is_completed", False)),
                    request_id=_request_id(item, index),
                    payload=item,
                    received_at=now,
                )
            )
    return hal_response(
        {
            "_links": _self_link(request, "/api/v4/tasks"),
            "_embedded": {
                "tasks": [
                    {
                        "id": task.pk,
                        "request_id": task.request_id,
                        "_links": _self_link(request, f"/api/v4/tasks/{task.pk}"),
                    }
                    for task in created
                ]
            },
        }
    )


# --- v2 events (incoming-call notification) -------------------------------------------------


@amocrm_api("POST")
def events_v2_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    data, error = _json_body(request)
    if error is not None:
        return error
    items = data.get("add") if isinstance(data, dict) else None
    errors = ItemErrors("0")
    if not isinstance(items, list) or not items:
        errors.add("NotBlank", "add", "Expected a non-empty array in `add`")
        return validation_problem([errors])
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.add("InvalidType", f"add.{i}", "Expected object")
            continue
        if item.get("type") != "phone_call":
            errors.add("NotSupportedChoice", f"add.{i}.type", "Only phone_call is supported")
        if not isinstance(item.get("phone_number"), str) or not item["phone_number"].strip():
            errors.add("NotBlank", f"add.{i}.phone_number", "This value should not be blank.")
        users = item.get("users")
        if users is not None and (
            not isinstance(users, list) or any(u not in user_ids for u in users)
        ):
            errors.add("NotSupportedChoice", f"add.{i}.users", "User not found")
    if errors.errors:
        return validation_problem([errors])
    now = clock.now()
    out = []
    for item in items:
        # The notification matches on the last 8 digits (CONFIRMED, kommo-docs).
        contact = selectors.contact_by_phone_suffix(
            account=ctx.account, phone=item["phone_number"], suffix_len=8
        )
        event = Event.objects.create(
            account=ctx.account,
            uid=uuid.uuid4().hex,
            type=item["type"],
            phone_number=item["phone_number"],
            # Omitting `users` is not documented (GUESS: everyone gets it).
            users=item.get("users") if item.get("users") is not None else sorted(user_ids),
            contact=contact,
            payload=item,
            received_at=now,
        )
        out.append(
            {
                "uid": event.uid,
                "phone_number": event.phone_number,
                "element_id": contact.pk if contact else None,
                "element_type": 1 if contact else None,
            }
        )
    # The v2 answer's shape is a GUESS; clients should only rely on the 2xx status.
    return hal_response(
        {
            "_links": {"self": {"href": "/api/v2/events", "method": "post"}},
            "_embedded": {"items": out},
        }
    )


# --- unsorted (SIP) -------------------------------------------------------------------------

_SIP_REQUIRED_METADATA = ("uniq", "service_code", "phone", "from", "called_at")


@amocrm_api("POST")
def unsorted_sip_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = _array_body(request)
    if error is not None:
        return error
    if not ctx.account.is_unsorted_on:
        return problem_response(400, "Unsorted is turned off for this account")  # GUESS
    all_errors = []
    for index, item in enumerate(items):
        errors = ItemErrors(_request_id(item, index))
        all_errors.append(errors)
        if not isinstance(item, dict):
            errors.add("InvalidType", "", "Expected object")
            continue
        for key in ("source_uid", "source_name"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                errors.add("NotBlank", key, "This value should not be blank.")
        metadata = item.get("metadata")
        if not isinstance(metadata, dict):
            errors.add("NotBlank", "metadata", "This value should not be blank.")
            continue
        # Which metadata keys are required is a GUESS; the SDK always sends these.
        for key in _SIP_REQUIRED_METADATA:
            if metadata.get(key) in (None, ""):
                errors.add("NotBlank", f"metadata.{key}", "This value should not be blank.")
        embedded = item.get("_embedded")
        if embedded is not None and not isinstance(embedded, dict):
            errors.add("InvalidType", "_embedded", "Expected object")
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    now = clock.now()
    out = []
    with transaction.atomic():
        for index, item in enumerate(items):
            entry = UnsortedEntry.objects.create(
                account=ctx.account,
                uid=uuid.uuid4().hex,
                source_uid=item["source_uid"],
                source_name=item["source_name"],
                pipeline_id=item.get("pipeline_id") if _is_int(item.get("pipeline_id")) else None,
                metadata=item["metadata"],
                embedded=item.get("_embedded") or {},
                request_id=_request_id(item, index),
                received_at=now,
            )
            embedded = entry.embedded
            # Leads and contacts in Unsorted are not real entities until accepted; the ids are
            # derived from the entry so clients get stable numbers to show.
            out.append(
                {
                    "uid": entry.uid,
                    "account_id": ctx.account.pk,
                    "request_id": entry.request_id,
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
            )
    return hal_response(
        {
            "_total_items": len(out),
            "_links": _self_link(request, "/api/v4/leads/unsorted/sip"),
            "_embedded": {"unsorted": out},
        }
    )


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problem_response(404, "Not Found")
