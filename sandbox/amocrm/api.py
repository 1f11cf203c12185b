"""The emulated amoCRM REST API (docs/amocrm-api.md §3–§8): account, users, contacts, calls, the v2
call notification and SIP Unsorted. Leads, pipelines, notes and tasks are in ``api_crm``.

Shapes follow the reference; where it says GUESS, the emulator picks the stricter plausible
behaviour (so code that copes here copes with the real thing) and says so next to the code.
Query strings are read as amoCRM's PHP back end reads them, and a parameter or filter the
emulator does not implement is refused with 400 naming it (``sandbox.amocrm.query``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.amocrm import clock, selectors, services, webhooks
from sandbox.amocrm.gate import ApiContext, amocrm_api
from sandbox.amocrm.models import Call, Contact, Event, Lead, UnsortedEntry, User
from sandbox.amocrm.pipelines import LOST, WON, main_pipeline, pipeline_get
from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    no_content,
    problem_response,
    validation_problem,
)
from sandbox.amocrm.query import (
    ListQuery,
    QueryProblem,
    by_ids,
    by_text,
    by_timestamp_range,
)
from sandbox.amocrm.rest import (
    array_body,
    filtered_page,
    is_int,
    json_body,
    object_body,
    paginated,
    request_id_of,
    self_link,
    ts,
)

MAX_CALLS_PER_REQUEST = 50  # the SDK's recommended batch size; real amoCRM may allow more
CALL_DIRECTIONS = {"inbound", "outbound"}


def no_query(request: HttpRequest) -> HttpResponse | None:
    """Endpoints that take no query parameter refuse any, rather than ignore it."""
    try:
        ListQuery.of(request).finish()
    except QueryProblem as problem:
        return problem.response()
    return None


EntityView = Callable[[HttpRequest, ApiContext], HttpResponse]
EntityUpdate = Callable[..., HttpResponse]


def collection(
    request: HttpRequest,
    ctx: ApiContext,
    *,
    listing: EntityView,
    add: EntityView,
    update: EntityUpdate | None = None,
) -> HttpResponse:
    """An entity collection of API v4: GET lists, POST adds, PATCH updates a batch. Writes take
    no query parameter; ``update`` is left out where the endpoint allows no PATCH."""
    if request.method == "GET":
        return listing(request, ctx)
    refused = no_query(request)
    if refused is not None:
        return refused
    if request.method == "POST" or update is None:
        return add(request, ctx)
    items, error = array_body(request)
    if error is not None:
        return error
    return update(request, ctx, items, single=False)


def update_one(
    request: HttpRequest, ctx: ApiContext, update: EntityUpdate, entity_id: int
) -> HttpResponse:
    """PATCH of one entity by id: the batch update with that one item, answered unwrapped."""
    refused = no_query(request)
    if refused is not None:
        return refused
    item, error = object_body(request)
    if error is not None:
        return error
    return update(request, ctx, [{**item, "id": entity_id}], single=True)


def one_with(
    request: HttpRequest,
    rows: QuerySet[Any],
    entity_id: int,
    *,
    allowed_with: set[str],
    render: Callable[[HttpRequest, Any, set[str]], dict[str, Any]],
) -> HttpResponse:
    """GET of one entity by id with its ``with=`` parts; amoCRM answers a missing entity
    with 204 (GUESS)."""
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(allowed_with)
        query.finish()
    except QueryProblem as problem:
        return problem.response()
    entity = rows.filter(pk=entity_id).first()
    if entity is None:
        return no_content()
    return hal_response(render(request, entity, with_))


# --- account and users ----------------------------------------------------------------------

_ACCOUNT_WITH = {
    "amojo_id",
    "uuid",
    "version",
    "amojo_rights",
    "users_groups",
    "task_types",
    "datetime_settings",
    "invoices_settings",
    "is_api_filter_enabled",
    "drive_url",
}


@amocrm_api("GET")
def account_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(_ACCOUNT_WITH)
        query.finish()
    except QueryProblem as problem:
        return problem.response()
    account = ctx.account
    admin = account.users.filter(is_admin=True).order_by("id").first()
    created_by = admin.pk if admin else 0
    body: dict[str, Any] = {
        "id": account.pk,
        "name": account.name,
        "subdomain": account.subdomain,
        "created_at": ts(account.created_at),
        "created_by": created_by,
        "updated_at": ts(account.created_at),
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
        "_links": self_link(request, "/api/v4/account"),
    }
    # Top level or _embedded as the official SDK's AccountModel::fromArray reads them.
    embedded: dict[str, Any] = {}
    if "amojo_id" in with_:
        body["amojo_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"amojo:{account.pk}"))
    if "uuid" in with_:
        body["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"account:{account.pk}"))
    if "version" in with_:
        body["version"] = 26
    if "invoices_settings" in with_:
        body["invoices_settings"] = {"lang": "ru"}
    if "is_api_filter_enabled" in with_:
        body["is_api_filter_enabled"] = True
    if "drive_url" in with_:
        body["drive_url"] = f"https://drive-b.amocrm.ru/{account.subdomain}"
    if "amojo_rights" in with_:
        embedded["amojo_rights"] = {"can_direct": False, "can_create_groups": False}
    if "datetime_settings" in with_:
        embedded["datetime_settings"] = {
            "date_pattern": "d.m.Y H:i",
            "short_date_pattern": "d.m.Y",
            "short_time_pattern": "H:i",
            "date_format": "d.m.Y",
            "time_format": "H:i:s",
            "timezone": "Europe/Moscow",
            "timezone_offset": "+03:00",
        }
    if "task_types" in with_:
        embedded["task_types"] = [
            {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
            {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
        ]
    if "users_groups" in with_:
        embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
    if embedded:
        body["_embedded"] = embedded
    return hal_response(body)


_USER_WITH = {"phone_number", "role", "group", "uuid", "amojo_id"}


def _user_json(request: HttpRequest, user: User, with_: set[str]) -> dict[str, Any]:
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
        "_links": self_link(request, f"/api/v4/users/{user.pk}"),
    }
    if "phone_number" in with_:
        # The profile field as typed, or null when empty (free text: clients must normalise).
        body["phone_number"] = user.phone or None
    if "uuid" in with_:
        body["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{user.pk}"))
    if "amojo_id" in with_:
        body["amojo_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"amojo-user:{user.pk}"))
    embedded: dict[str, Any] = {}
    if "role" in with_:
        embedded["roles"] = []  # the emulator has no roles: every user has role_id null
    if "group" in with_:
        embedded["groups"] = [{"id": 0, "name": "Отдел продаж"}]
    if embedded:
        body["_embedded"] = embedded
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
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(_USER_WITH)
    except QueryProblem as problem:
        return problem.response()
    return paginated(
        request,
        query,
        rows=ctx.account.users.order_by("id"),
        path="/api/v4/users",
        key="users",
        render=lambda u: _user_json(request, u, with_),
        total=True,
    )


@amocrm_api("GET")
def user_detail_view(request: HttpRequest, ctx: ApiContext, user_id: int) -> HttpResponse:
    denied = _admin_only(ctx)
    if denied is not None:
        return denied
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(_USER_WITH)
        query.finish()
    except QueryProblem as problem:
        return problem.response()
    user = ctx.account.users.filter(pk=user_id).first()
    if user is None:
        return problem_response(404, "User not found")
    return hal_response(_user_json(request, user, with_))


# --- contacts -------------------------------------------------------------------------------

_CONTACT_WITH = {"leads", "customers", "catalog_elements"}


def _contact_json(request: HttpRequest, contact: Contact, with_: set[str]) -> dict[str, Any]:
    embedded: dict[str, Any] = {
        "tags": [{"id": t.pk, "name": t.name, "color": None} for t in contact.tags.all()],
        "companies": [],
    }
    if "leads" in with_:
        embedded["leads"] = [
            {"id": lead.pk, "_links": self_link(request, f"/api/v4/leads/{lead.pk}")}
            for lead in contact.leads.all()
        ]
    if "customers" in with_:
        embedded["customers"] = []  # the emulator has no customers
    if "catalog_elements" in with_:
        embedded["catalog_elements"] = []  # nor catalogs
    return {
        "id": contact.pk,
        "name": contact.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "responsible_user_id": contact.responsible_user_id,
        "group_id": 0,
        "created_by": contact.created_by,
        "updated_by": contact.updated_by,
        "created_at": ts(contact.created_at),
        "updated_at": ts(contact.updated_at),
        "closest_task_at": None,
        "is_deleted": False,
        "is_unsorted": False,
        # amoCRM sends null, not [], for a contact with no custom field filled.
        "custom_fields_values": contact.custom_fields_values or None,
        "account_id": contact.account_id,
        "_links": self_link(request, f"/api/v4/contacts/{contact.pk}"),
        "_embedded": embedded,
    }


# filter[...] of GET /api/v4/contacts (SDK ContactsFilter). Not implemented, hence refused:
# closest_task_at, custom_fields_values.
CONTACT_FILTERS = {
    "id": by_ids("pk"),
    "name": by_text("name"),
    "responsible_user_id": by_ids("responsible_user_id"),
    "created_by": by_ids("created_by"),
    "updated_by": by_ids("updated_by"),
    "created_at": by_timestamp_range("created_at"),
    "updated_at": by_timestamp_range("updated_at"),
}
_ORDER_FIELDS = {"id": "id", "created_at": "created_at", "updated_at": "updated_at"}


def _contacts_list(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(_CONTACT_WITH)
        rows = selectors.contacts_search(account=ctx.account, query=query.take_text("query"))
    except QueryProblem as problem:
        return problem.response()
    return filtered_page(
        request,
        query,
        rows=rows.prefetch_related("tags", "leads"),
        filters=CONTACT_FILTERS,
        order=_ORDER_FIELDS,
        path="/api/v4/contacts",
        key="contacts",
        render=lambda c: _contact_json(request, c, with_),
    )


@amocrm_api("GET", "POST", "PATCH")
def contacts_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    return collection(
        request, ctx, listing=_contacts_list, add=_contacts_add, update=_contacts_update
    )


@amocrm_api("GET", "PATCH")
def contact_detail_view(request: HttpRequest, ctx: ApiContext, contact_id: int) -> HttpResponse:
    if request.method == "PATCH":
        return update_one(request, ctx, _contacts_update, contact_id)
    return one_with(
        request,
        ctx.account.contacts.all(),
        contact_id,
        allowed_with=_CONTACT_WITH,
        render=_contact_json,
    )


_FIELD_ENUMS = {"PHONE": services.PHONE_ENUMS, "EMAIL": services.EMAIL_ENUMS}


def _contact_fields(
    ctx: ApiContext, raw: Any, errors: ItemErrors, *, allow_clear: bool = False
) -> dict[str, list[tuple[str, str]]]:
    """``custom_fields_values`` → {"PHONE": [(value, enum_code)], "EMAIL": [...]} for the fields
    the item names. With ``allow_clear`` (PATCH), ``"values": null`` or ``[]`` clears a field."""
    found: dict[str, list[tuple[str, str]]] = {}
    if raw is None:
        return found
    if not isinstance(raw, list):
        errors.add("InvalidType", "custom_fields_values", "Expected array")
        return found
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
        if allow_clear and values in (None, []):
            found[code] = []
            continue
        if not isinstance(values, list) or not values:
            errors.add("NotBlank", f"{path}.values", "This value should not be blank.")
            continue
        enums = _FIELD_ENUMS[code]
        collected = found.setdefault(code, [])
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
            collected.append((value, enum_code))
    return found


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
        elif isinstance(tag, dict) and is_int(tag.get("id")):
            if not ctx.account.tags.filter(pk=tag["id"]).exists():
                errors.add("NotSupportedChoice", f"_embedded.tags.{i}.id", "Tag not found")
            ids.append(tag["id"])
        else:
            errors.add("InvalidType", f"_embedded.tags.{i}", "Tag needs a name or an id")
    return names, ids


# Body keys of a contact write. Read-only ones (sent back by clients that PATCH what they
# read) are accepted and ignored, as amoCRM does; anything else is a validation error rather
# than silently dropped.
_CONTACT_WRITABLE = {
    "name",
    "first_name",
    "last_name",
    "responsible_user_id",
    "custom_fields_values",
    "_embedded",
    "request_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
}
_CONTACT_READ_ONLY = {
    "id",
    "group_id",
    "is_deleted",
    "is_unsorted",
    "account_id",
    "closest_task_at",
    "_links",
}


def unknown_keys(item: dict[str, Any], known: set[str], errors: ItemErrors) -> None:
    for key in item:
        if key not in known:
            errors.add("NotSupportedField", str(key), "This field is not supported.")


def _contact_item_errors(
    ctx: ApiContext, item: Any, errors: ItemErrors, user_ids: set[int], *, update: bool
) -> dict[str, Any] | None:
    """Validate one contact of a POST or PATCH; returns the changes, or None if invalid."""
    if not isinstance(item, dict):
        errors.add("InvalidType", "", "Expected object")
        return None
    unknown_keys(item, _CONTACT_WRITABLE | _CONTACT_READ_ONLY, errors)
    for key in ("name", "first_name", "last_name"):
        if key in item and not isinstance(item[key], str):
            errors.add("InvalidType", key, "This value should be of type string.")
    responsible = item.get("responsible_user_id", None if update else ctx.user.pk)
    if responsible is not None and (not is_int(responsible) or responsible not in user_ids):
        errors.add("NotSupportedChoice", "responsible_user_id", "User not found")
    for key in ("created_by", "updated_by"):
        value = item.get(key)
        if value is not None and (not is_int(value) or (value and value not in user_ids)):
            errors.add("NotSupportedChoice", key, "User not found")
    for key in ("created_at", "updated_at"):
        if item.get(key) is not None and not is_int(item[key]):
            errors.add("InvalidType", key, "This value should be of type int.")
    fields = _contact_fields(ctx, item.get("custom_fields_values"), errors, allow_clear=update)
    embedded = item.get("_embedded")
    if isinstance(embedded, dict):
        unknown_keys(embedded, {"tags"}, errors)
    tag_names, tag_ids = _contact_tags(ctx, embedded, errors)
    return {
        "name": item.get("name") if isinstance(item.get("name"), str) else None,
        "first_name": item.get("first_name") if isinstance(item.get("first_name"), str) else None,
        "last_name": item.get("last_name") if isinstance(item.get("last_name"), str) else None,
        "responsible": responsible,
        "phones": fields.get("PHONE"),
        "emails": fields.get("EMAIL"),
        "tags": (tag_names, tag_ids) if isinstance(embedded, dict) and "tags" in embedded else None,
        "author": item.get("updated_by") or item.get("created_by") or ctx.user.pk,
        "request_id": errors.request_id,
    }


def _contacts_add(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = array_body(request)
    if error is not None:
        return error
    prepared: list[dict[str, Any]] = []
    all_errors: list[ItemErrors] = []
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        data = _contact_item_errors(ctx, item, errors, user_ids, update=False)
        if data is not None:
            prepared.append(data)
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    users = {u.pk: u for u in ctx.account.users.all()}
    created = []
    with transaction.atomic():
        for data in prepared:
            first, last = data["first_name"] or "", data["last_name"] or ""
            name = data["name"] or " ".join(p for p in (first, last) if p)
            tag_names, tag_ids = data["tags"] or ((), ())
            contact = services.contact_create(
                account=ctx.account,
                name=name,
                first_name=first,
                last_name=last,
                responsible=users[data["responsible"]],
                phones=data["phones"] or (),
                emails=data["emails"] or (),
                tag_names=tag_names,
                tag_ids=tag_ids,
                created_by=data["author"],
            )
            created.append((contact, data["request_id"]))
    webhooks.contact_events_send(
        ctx.account, [webhooks.contact_added(contact) for contact, _ in created]
    )
    return hal_response(
        {
            "_links": self_link(request, "/api/v4/contacts"),
            "_embedded": {
                "contacts": [
                    {
                        "id": contact.pk,
                        "request_id": request_id,
                        "is_deleted": False,
                        "is_unsorted": False,
                        "_links": self_link(request, f"/api/v4/contacts/{contact.pk}"),
                    }
                    for contact, request_id in created
                ]
            },
        }
    )


def _contacts_update(
    request: HttpRequest, ctx: ApiContext, items: list[Any], *, single: bool
) -> HttpResponse:
    """``PATCH /api/v4/contacts`` (array, each with ``id``) and ``PATCH …/contacts/{id}``."""
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    contacts = {
        c.pk: c
        for c in ctx.account.contacts.filter(
            pk__in=[i.get("id") for i in items if isinstance(i, dict) and is_int(i.get("id"))]
        )
    }
    all_errors: list[ItemErrors] = []
    prepared: list[tuple[Contact, dict[str, Any]]] = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        data = _contact_item_errors(ctx, item, errors, user_ids, update=True)
        if data is None:
            continue
        contact = contacts.get(item.get("id")) if is_int(item.get("id")) else None
        if contact is None:
            if single:
                return problem_response(404, "Contact not found")  # GUESS: 404 for a PATCH
            errors.add("NotSupportedChoice", "id", "Entity not found")
            continue
        prepared.append((contact, data))
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    users = {u.pk: u for u in ctx.account.users.all()}
    out = []
    events: list[webhooks.ContactEvent] = []
    with transaction.atomic():
        for contact, data in prepared:
            old_responsible = contact.responsible_user_id
            services.contact_update(
                contact=contact,
                updated_by=data["author"],
                name=data["name"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                responsible=users.get(data["responsible"]) if data["responsible"] else None,
                phones=data["phones"],
                emails=data["emails"],
                tags=data["tags"],
            )
            if contact.responsible_user_id != old_responsible:
                events.append(webhooks.contact_responsible_changed(contact, old_responsible))
            events.append(webhooks.contact_updated(contact))
            out.append(
                {
                    "id": contact.pk,
                    "name": contact.name,
                    "updated_at": ts(contact.updated_at),
                    "request_id": data["request_id"],
                    "_links": self_link(request, f"/api/v4/contacts/{contact.pk}"),
                }
            )
    webhooks.contact_events_send(ctx.account, events)
    if single:
        body = {k: v for k, v in out[0].items() if k != "request_id"}
        return hal_response(body)
    return hal_response(
        {"_links": self_link(request, "/api/v4/contacts"), "_embedded": {"contacts": out}}
    )


# --- calls ----------------------------------------------------------------------------------


def _call_item_errors(item: Any, errors: ItemErrors, user_ids: set[int]) -> None:
    if not isinstance(item, dict):
        errors.add("InvalidType", "", "Expected object")
        return
    if item.get("direction") not in CALL_DIRECTIONS:
        errors.add("NotSupportedChoice", "direction", "direction must be inbound or outbound")
    if not is_int(item.get("duration")) or item["duration"] < 0:
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
    if status is not None and (not is_int(status) or not 1 <= status <= 8):
        errors.add("NotSupportedChoice", "call_status", "call_status must be 1..8")
    for key in ("responsible_user_id", "created_by"):
        value = item.get(key)
        if value is not None and (not is_int(value) or (value and value not in user_ids)):
            errors.add("NotSupportedChoice", key, "User not found")
    if item.get("created_at") is not None and not is_int(item["created_at"]):
        errors.add("InvalidType", "created_at", "This value should be of type int.")


@amocrm_api("POST")
def calls_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    items, error = array_body(request)
    if error is not None:
        return error
    if len(items) > MAX_CALLS_PER_REQUEST:
        return validation_problem(
            [ItemErrors("0", [{"code": "TooMany", "path": "", "detail": "At most 50 calls"}])]
        )
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    all_errors = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        _call_item_errors(item, errors, user_ids)
        all_errors.append(errors)
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)

    added: list[dict[str, Any]] = []
    not_found: list[dict[str, Any]] = []
    now = clock.now()
    with transaction.atomic():
        # Matched on the last 10 digits (CONFIRMED); no match → not added (CONFIRMED).
        contacts = selectors.contacts_by_phone_suffixes(
            account=ctx.account, phones=[item["phone"] for item in items], suffix_len=10
        )
        open_leads: dict[int, list[int]] = {}
        for contact_id, open_lead_id in (
            Lead.contacts.through.objects.filter(contact_id__in={c.pk for c in contacts.values()})
            .exclude(lead__status_id__in=(WON, LOST))
            .order_by("lead_id")
            .values_list("contact_id", "lead_id")
        ):
            open_leads.setdefault(contact_id, []).append(open_lead_id)
        placed: list[tuple[Call, str, int]] = []
        for index, item in enumerate(items):
            request_id = request_id_of(item, index)
            contact = contacts.get(item["phone"])
            if contact is None:
                # Body shape from SDK#52; per-item fields beyond the title are a GUESS.
                not_found.append(
                    {"request_id": request_id, "title": "Entity not found", "status": 400}
                )
                continue
            # Exactly one open lead (and no customers: the emulator has none) → the call goes
            # on the lead, otherwise on the contact (CONFIRMED, docs/amocrm-api.md §5).
            leads = open_leads.get(contact.pk, [])
            lead_id = leads[0] if len(leads) == 1 else None
            entity_type, entity_id = ("leads", lead_id) if lead_id else ("contacts", contact.pk)
            # `uniq` is stored, not deduplicated: no evidence amoCRM dedupes on it (GUESS).
            call = Call(
                account=ctx.account,
                contact=contact,
                lead_id=lead_id,
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
            placed.append((call, entity_type, entity_id))
        Call.objects.bulk_create([call for call, _, _ in placed])
        # Each call shows on the card as a call note (what GET …/notes reads back).
        services.call_notes_add(account=ctx.account, calls=placed)
        for call, entity_type, entity_id in placed:
            added.append(
                {
                    "id": call.pk,
                    "entity_id": entity_id,
                    "entity_type": entity_type,
                    "account_id": ctx.account.pk,
                    "request_id": call.request_id,
                    "_embedded": {
                        "entity": {
                            "id": entity_id,
                            "_links": self_link(request, f"/api/v4/{entity_type}/{entity_id}"),
                        }
                    },
                }
            )
    body = {"_total_items": len(added), "_embedded": {"calls": added}, "errors": not_found}
    # Nothing added → 400 (CONFIRMED, SDK#52); a partly failed batch → 200 + errors (GUESS).
    return hal_response(body, status=200 if added else 400)


# --- v2 events (incoming-call notification) -------------------------------------------------


@amocrm_api("POST")
def events_v2_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    data, error = json_body(request)
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
    refused = no_query(request)
    if refused is not None:
        return refused
    items, error = array_body(request)
    if error is not None:
        return error
    if not ctx.account.is_unsorted_on:
        return problem_response(400, "Unsorted is turned off for this account")  # GUESS
    all_errors = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
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
        pipeline_id = item.get("pipeline_id")
        if pipeline_id is not None and (
            not is_int(pipeline_id) or pipeline_get(ctx.account, pipeline_id) is None
        ):
            errors.add("NotSupportedChoice", "pipeline_id", "Pipeline not found")
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    main_pipeline_id = main_pipeline(ctx.account).id
    now = clock.now()
    out = []
    with transaction.atomic():
        for index, item in enumerate(items):
            entry = UnsortedEntry.objects.create(
                account=ctx.account,
                uid=uuid.uuid4().hex,
                source_uid=item["source_uid"],
                source_name=item["source_name"],
                pipeline_id=item.get("pipeline_id") or main_pipeline_id,
                metadata=item["metadata"],
                embedded=item.get("_embedded") or {},
                request_id=request_id_of(item, index),
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
            "_links": self_link(request, "/api/v4/leads/unsorted/sip"),
            "_embedded": {"unsorted": out},
        }
    )


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any path the emulator does not serve: amoCRM's 404 problem+json, never an HTML page."""
    return problem_response(404, "Not Found")
