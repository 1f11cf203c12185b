"""The emulated amoCRM API, continued: leads, pipelines, notes and tasks
(docs/amocrm-api.md §5–§6b).

Same rules as ``sandbox.amocrm.api``: PHP-style query strings, every accepted filter applied,
anything else refused with 400 naming it. Bodies and answers after the official SDK
(LeadModel, NoteModel/CallInNote, TaskModel) and amoCRM's v4 reference pages.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from sandbox.amocrm import services
from sandbox.amocrm.api import collection, no_query, one_with, unknown_keys, update_one
from sandbox.amocrm.gate import ApiContext, amocrm_api
from sandbox.amocrm.models import Lead, Note, Task
from sandbox.amocrm.pipelines import Pipeline, main_pipeline, pipeline_get, pipelines
from sandbox.amocrm.problems import (
    ItemErrors,
    hal_response,
    no_content,
    problem_response,
    validation_problem,
)
from sandbox.amocrm.query import (
    ListQuery,
    Node,
    QueryProblem,
    boolean,
    by_choice,
    by_ids,
    by_range,
    by_text,
    by_timestamp_range,
    integers,
    strings,
)
from sandbox.amocrm.rest import (
    array_body,
    filtered_page,
    is_int,
    request_id_of,
    self_link,
    ts,
)

TASK_ENTITY_TYPES = {"leads", "contacts", "companies", "customers"}
TASK_TYPES = (1, 2)  # Связаться, Встреча (the emulated account has no custom types)
NOTE_ENTITY_TYPES = ("contacts", "leads")


# --- pipelines -------------------------------------------------------------------------------


def _pipeline_json(request: HttpRequest, ctx: ApiContext, pipeline: Pipeline) -> dict[str, Any]:
    base = f"/api/v4/leads/pipelines/{pipeline.id}"
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "sort": 1 if pipeline.id == main_pipeline(ctx.account).id else 2,
        "is_main": pipeline.id == main_pipeline(ctx.account).id,
        "is_unsorted_on": pipeline.is_unsorted_on,
        "is_archive": False,
        "account_id": ctx.account.pk,
        "_links": self_link(request, base),
        "_embedded": {
            "statuses": [
                {
                    "id": stage.id,
                    "name": stage.name,
                    "sort": stage.sort,
                    "is_editable": stage.is_editable,
                    "pipeline_id": pipeline.id,
                    "color": stage.color,
                    "type": stage.type,
                    "account_id": ctx.account.pk,
                    "_links": self_link(request, f"{base}/statuses/{stage.id}"),
                }
                for stage in pipeline.stages
            ]
        },
    }


@amocrm_api("GET")
def pipelines_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    items = [_pipeline_json(request, ctx, p) for p in pipelines(ctx.account)]
    return hal_response(
        {
            "_total_items": len(items),
            "_links": self_link(request, "/api/v4/leads/pipelines"),
            "_embedded": {"pipelines": items},
        }
    )


@amocrm_api("GET")
def pipeline_detail_view(request: HttpRequest, ctx: ApiContext, pipeline_id: int) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    pipeline = pipeline_get(ctx.account, pipeline_id)
    if pipeline is None:
        return problem_response(404, "Pipeline not found")
    return hal_response(_pipeline_json(request, ctx, pipeline))


@amocrm_api("GET")
def pipeline_statuses_view(request: HttpRequest, ctx: ApiContext, pipeline_id: int) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    pipeline = pipeline_get(ctx.account, pipeline_id)
    if pipeline is None:
        return problem_response(404, "Pipeline not found")
    statuses = _pipeline_json(request, ctx, pipeline)["_embedded"]["statuses"]
    return hal_response(
        {
            "_total_items": len(statuses),
            "_links": self_link(request, f"/api/v4/leads/pipelines/{pipeline.id}/statuses"),
            "_embedded": {"statuses": statuses},
        }
    )


# --- leads -----------------------------------------------------------------------------------

_LEAD_WITH = {"contacts"}


def _lead_json(request: HttpRequest, lead: Lead, with_: set[str]) -> dict[str, Any]:
    embedded: dict[str, Any] = {
        "tags": [{"id": t.pk, "name": t.name, "color": None} for t in lead.tags.all()],
        "companies": [],
    }
    if "contacts" in with_:
        contacts = sorted(lead.contacts.all(), key=lambda c: c.pk)
        embedded["contacts"] = [
            {
                "id": c.pk,
                "is_main": i == 0,  # the first linked contact is the main one
                "_links": self_link(request, f"/api/v4/contacts/{c.pk}"),
            }
            for i, c in enumerate(contacts)
        ]
    return {
        "id": lead.pk,
        "name": lead.name,
        "price": lead.price,
        "responsible_user_id": lead.responsible_user_id,
        "group_id": 0,
        "status_id": lead.status_id,
        "pipeline_id": lead.pipeline_id,
        "loss_reason_id": None,
        "created_by": lead.created_by,
        "updated_by": lead.updated_by,
        "created_at": ts(lead.created_at),
        "updated_at": ts(lead.updated_at),
        "closed_at": ts(lead.closed_at),
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": None,
        "score": None,
        "account_id": lead.account_id,
        "labor_cost": None,
        "_links": self_link(request, f"/api/v4/leads/{lead.pk}"),
        "_embedded": embedded,
    }


def _by_statuses(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    """``filter[statuses][0][pipeline_id]=…&filter[statuses][0][status_id]=…`` (SDK LeadsFilter)."""
    if isinstance(node, str):
        raise QueryProblem(path, "expected statuses[n][pipeline_id] and [status_id]", "InvalidType")
    pairs = []
    for index, entry in node.items():
        if not isinstance(entry, dict) or set(entry) != {"pipeline_id", "status_id"}:
            raise QueryProblem(
                (*path, index), "expected [pipeline_id] and [status_id]", "InvalidType"
            )
        pipeline = integers(entry["pipeline_id"], (*path, index, "pipeline_id"))[0]
        status = integers(entry["status_id"], (*path, index, "status_id"))[0]
        pairs.append((pipeline, status))
    condition = rows.none()
    for pipeline, status in pairs:
        condition = condition | rows.filter(pipeline_id=pipeline, status_id=status)
    return condition


# filter[...] of GET /api/v4/leads (SDK LeadsFilter). Not implemented, hence refused:
# closest_task_at, custom_fields_values, and the deprecated filter[status].
LEAD_FILTERS = {
    "id": by_ids("pk"),
    "name": by_text("name"),
    "price": by_range("price"),
    "responsible_user_id": by_ids("responsible_user_id"),
    "created_by": by_ids("created_by"),
    "updated_by": by_ids("updated_by"),
    "pipeline_id": by_ids("pipeline_id"),
    "statuses": _by_statuses,
    "created_at": by_timestamp_range("created_at"),
    "updated_at": by_timestamp_range("updated_at"),
    "closed_at": by_timestamp_range("closed_at"),
}
_LEAD_ORDER = {"id": "id", "created_at": "created_at", "updated_at": "updated_at"}


def _leads_list(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    try:
        with_ = query.take_with(_LEAD_WITH)
        text = query.take_text("query").strip()
    except QueryProblem as problem:
        return problem.response()
    rows = ctx.account.leads.prefetch_related("tags", "contacts")
    if text:
        rows = rows.filter(name__icontains=text)
    return filtered_page(
        request,
        query,
        rows=rows,
        filters=LEAD_FILTERS,
        order=_LEAD_ORDER,
        path="/api/v4/leads",
        key="leads",
        render=lambda lead: _lead_json(request, lead, with_),
    )


_LEAD_KEYS = {
    "name",
    "price",
    "pipeline_id",
    "status_id",
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "request_id",
    "_embedded",
}


def _leads_add(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = array_body(request)
    if error is not None:
        return error
    main = main_pipeline(ctx.account)
    users = {u.pk: u for u in ctx.account.users.all()}
    all_errors: list[ItemErrors] = []
    prepared: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        if not isinstance(item, dict):
            errors.add("InvalidType", "", "Expected object")
            continue
        unknown_keys(item, _LEAD_KEYS, errors)
        if "name" in item and not isinstance(item["name"], str):
            errors.add("InvalidType", "name", "This value should be of type string.")
        price = item.get("price", 0)
        if not is_int(price) or price < 0:
            errors.add("InvalidType", "price", "This value should be of type int.")
        pipeline: Pipeline | None = main
        if item.get("pipeline_id") is not None:
            pipeline_id = item["pipeline_id"]
            pipeline = pipeline_get(ctx.account, pipeline_id) if is_int(pipeline_id) else None
            if pipeline is None:
                errors.add("NotSupportedChoice", "pipeline_id", "Pipeline not found")
        status = item.get("status_id")
        stage = next((s for s in pipeline.stages if s.id == status), None) if pipeline else None
        if status is not None and pipeline is not None and stage is None:
            errors.add("NotSupportedChoice", "status_id", "Status not found")
        elif stage is not None and stage.type == 1:
            # Entries reach «Неразобранное» through the Unsorted API, not as leads (GUESS).
            errors.add("NotSupportedChoice", "status_id", "Status not found")
        responsible = item.get("responsible_user_id", ctx.user.pk)
        if not is_int(responsible) or responsible not in users:
            errors.add("NotSupportedChoice", "responsible_user_id", "User not found")
        embedded = item.get("_embedded") or {}
        contact_ids: list[int] = []
        tag_names: list[str] = []
        if not isinstance(embedded, dict):
            errors.add("InvalidType", "_embedded", "Expected object")
            embedded = {}
        unknown_keys(embedded, {"contacts", "tags"}, errors)
        for i, ref in enumerate(embedded.get("contacts") or []):
            if not isinstance(ref, dict) or not is_int(ref.get("id")):
                errors.add("InvalidType", f"_embedded.contacts.{i}.id", "Expected {id}")
            else:
                contact_ids.append(ref["id"])
        found = set(ctx.account.contacts.filter(pk__in=contact_ids).values_list("pk", flat=True))
        for i, contact_id in enumerate(contact_ids):
            if contact_id not in found:
                errors.add("NotSupportedChoice", f"_embedded.contacts.{i}.id", "Entity not found")
        for i, tag in enumerate(embedded.get("tags") or []):
            if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"].strip():
                tag_names.append(tag["name"].strip())
            else:
                errors.add("InvalidType", f"_embedded.tags.{i}", "Tag needs a name")
        prepared.append(
            {
                "name": item.get("name") or "",
                "price": price,
                "pipeline_id": pipeline.id if pipeline else main.id,
                "status_id": status,
                "responsible": responsible,
                "contact_ids": contact_ids,
                "tag_names": tag_names,
                "created_by": item.get("created_by") or ctx.user.pk,
                "request_id": errors.request_id,
            }
        )
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    created = []
    with transaction.atomic():
        for data in prepared:
            lead = services.lead_create(
                account=ctx.account,
                name=data["name"],
                price=data["price"],
                pipeline_id=data["pipeline_id"],
                status_id=data["status_id"],
                responsible=users[data["responsible"]],
                contacts=list(ctx.account.contacts.filter(pk__in=data["contact_ids"])),
                tag_names=data["tag_names"],
                created_by=data["created_by"],
            )
            created.append((lead, data["request_id"]))
    return hal_response(
        {
            "_links": self_link(request, "/api/v4/leads"),
            "_embedded": {
                "leads": [
                    {
                        "id": lead.pk,
                        "request_id": request_id,
                        "_links": self_link(request, f"/api/v4/leads/{lead.pk}"),
                    }
                    for lead, request_id in created
                ]
            },
        }
    )


@amocrm_api("GET", "POST")
def leads_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    return collection(request, ctx, listing=_leads_list, add=_leads_add)


@amocrm_api("GET")
def lead_detail_view(request: HttpRequest, ctx: ApiContext, lead_id: int) -> HttpResponse:
    return one_with(
        request, ctx.account.leads.all(), lead_id, allowed_with=_LEAD_WITH, render=_lead_json
    )


# --- notes -----------------------------------------------------------------------------------


def _note_json(request: HttpRequest, note: Note) -> dict[str, Any]:
    return {
        "id": note.pk,
        "entity_id": note.entity_id,
        "created_by": note.created_by,
        "updated_by": note.created_by,
        "created_at": ts(note.created_at),
        "updated_at": ts(note.updated_at),
        "responsible_user_id": note.responsible_user_id,
        "group_id": 0,
        "note_type": note.note_type,
        "params": note.params,
        "account_id": note.account_id,
        "_links": self_link(
            request, f"/api/v4/{note.entity_type}/{note.entity_id}/notes/{note.pk}"
        ),
    }


NOTE_TYPES = {"common", "call_in", "call_out", "service_message"}
NOTE_FILTERS = {
    "id": by_ids("pk"),
    "note_type": by_choice("note_type", NOTE_TYPES),
    "updated_at": by_timestamp_range("updated_at"),
}
_NOTE_ORDER = {"id": "id", "updated_at": "updated_at"}


def _notes_list(
    request: HttpRequest, ctx: ApiContext, entity: str, entity_id: int | None
) -> HttpResponse:
    filters = dict(NOTE_FILTERS)
    if entity_id is None:
        filters["entity_id"] = by_ids("entity_id")
    query = ListQuery.of(request)
    rows = ctx.account.notes.filter(entity_type=entity)
    if entity_id is not None:
        rows = rows.filter(entity_id=entity_id)
    path = f"/api/v4/{entity}/notes" if entity_id is None else f"/api/v4/{entity}/{entity_id}/notes"
    return filtered_page(
        request,
        query,
        rows=rows,
        filters=filters,
        order=_NOTE_ORDER,
        path=path,
        key="notes",
        render=lambda n: _note_json(request, n),
    )


def _note_params_errors(note_type: Any, params: Any, errors: ItemErrors) -> None:
    if note_type not in NOTE_TYPES:
        errors.add("NotSupportedChoice", "note_type", f"Supported: {', '.join(sorted(NOTE_TYPES))}")
        return
    if not isinstance(params, dict):
        errors.add("NotBlank", "params", "This value should not be blank.")
        return
    if note_type in ("common", "service_message"):
        if not isinstance(params.get("text"), str) or not params["text"].strip():
            errors.add("NotBlank", "params.text", "This value should not be blank.")
        if note_type == "service_message" and not isinstance(params.get("service"), str):
            errors.add("NotBlank", "params.service", "This value should not be blank.")
        return
    # call_in / call_out (SDK CallInNote; link, call_result, call_status not null, SDK#383).
    for key in ("uniq", "source", "phone"):
        if not isinstance(params.get(key), str) or not params[key].strip():
            errors.add("NotBlank", f"params.{key}", "This value should not be blank.")
    if not is_int(params.get("duration")) or params["duration"] < 0:
        errors.add("InvalidType", "params.duration", "This value should be of type int.")
    for key in ("link", "call_result", "call_status"):
        if key in params and params[key] is None:
            errors.add("NotNullable", f"params.{key}", "This value should not be null.")
    status = params.get("call_status")
    if status is not None and (not is_int(status) or not 1 <= status <= 8):
        errors.add("NotSupportedChoice", "params.call_status", "call_status must be 1..8")


_NOTE_KEYS = {
    "entity_id",
    "note_type",
    "params",
    "created_by",
    "responsible_user_id",
    "request_id",
    "is_need_to_trigger_digital_pipeline",
}


def _notes_add(
    request: HttpRequest, ctx: ApiContext, entity: str, entity_id: int | None
) -> HttpResponse:
    items, error = array_body(request)
    if error is not None:
        return error
    model = ctx.account.contacts if entity == "contacts" else ctx.account.leads
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    all_errors: list[ItemErrors] = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        if not isinstance(item, dict):
            errors.add("InvalidType", "", "Expected object")
            continue
        unknown_keys(item, _NOTE_KEYS, errors)
        target: Any = entity_id if entity_id is not None else item.get("entity_id")
        if not is_int(target):
            errors.add("InvalidType", "entity_id", "This value should be of type int.")
        elif not model.filter(pk=int(target)).exists():
            errors.add("NotSupportedChoice", "entity_id", "Entity not found")
        _note_params_errors(item.get("note_type"), item.get("params"), errors)
        for key in ("created_by", "responsible_user_id"):
            value = item.get(key)
            if value is not None and (not is_int(value) or (value and value not in user_ids)):
                errors.add("NotSupportedChoice", key, "User not found")
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    created = []
    with transaction.atomic():
        for index, item in enumerate(items):
            target = entity_id if entity_id is not None else item["entity_id"]
            created.append(
                services.note_add(
                    account=ctx.account,
                    entity_type=entity,
                    entity_id=target,
                    note_type=item["note_type"],
                    params=item["params"],
                    created_by=item.get("created_by") or ctx.user.pk,
                    responsible_user_id=item.get("responsible_user_id") or ctx.user.pk,
                    request_id=request_id_of(item, index),
                )
            )
    return hal_response(
        {
            "_links": self_link(request, f"/api/v4/{entity}/notes"),
            "_embedded": {
                "notes": [
                    {
                        "id": note.pk,
                        "entity_id": note.entity_id,
                        "request_id": note.request_id,
                        "_links": self_link(
                            request, f"/api/v4/{entity}/{note.entity_id}/notes/{note.pk}"
                        ),
                    }
                    for note in created
                ]
            },
        }
    )


@amocrm_api("GET", "POST")
def entity_notes_view(request: HttpRequest, ctx: ApiContext, entity: str) -> HttpResponse:
    """``/api/v4/{contacts|leads}/notes``: notes of every entity of the type."""
    if request.method == "GET":
        return _notes_list(request, ctx, entity, None)
    refused = no_query(request)
    if refused is not None:
        return refused
    return _notes_add(request, ctx, entity, None)


@amocrm_api("GET", "POST")
def entity_notes_of_view(
    request: HttpRequest, ctx: ApiContext, entity: str, entity_id: int
) -> HttpResponse:
    """``/api/v4/{contacts|leads}/{id}/notes``: one entity's notes."""
    entity_id = int(entity_id)  # re_path hands over digits as text
    if request.method == "GET":
        return _notes_list(request, ctx, entity, entity_id)
    refused = no_query(request)
    if refused is not None:
        return refused
    return _notes_add(request, ctx, entity, entity_id)


@amocrm_api("GET")
def note_detail_view(
    request: HttpRequest, ctx: ApiContext, entity: str, entity_id: int, note_id: int
) -> HttpResponse:
    refused = no_query(request)
    if refused is not None:
        return refused
    note = ctx.account.notes.filter(
        entity_type=entity, entity_id=int(entity_id), pk=int(note_id)
    ).first()
    if note is None:
        return no_content()
    return hal_response(_note_json(request, note))


# --- tasks -----------------------------------------------------------------------------------


def _task_json(request: HttpRequest, task: Task) -> dict[str, Any]:
    return {
        "id": task.pk,
        "created_by": task.created_by,
        "updated_by": task.updated_by,
        "created_at": ts(task.received_at),
        "updated_at": ts(task.changed_at),
        "responsible_user_id": task.responsible_user_id,
        "group_id": 0,
        "entity_id": task.entity_id,
        "entity_type": task.entity_type or None,
        "duration": task.duration,
        "is_completed": task.is_completed,
        "task_type_id": task.task_type_id,
        "text": task.text,
        # An empty PHP array when there is no result, as the reference shows it.
        "result": {"text": task.result_text} if task.result_text else [],
        "complete_till": task.complete_till,
        "account_id": task.account_id,
        "_links": self_link(request, f"/api/v4/tasks/{task.pk}"),
    }


def _task_completed(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    return rows.filter(is_completed=boolean(node, path))


def _task_type(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    return rows.filter(task_type_id__in=integers(node, path))


def _entity_type(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
    values = strings(node, path)
    for value in values:
        if value not in TASK_ENTITY_TYPES:
            raise QueryProblem(path, f"{value!r} is not one of {sorted(TASK_ENTITY_TYPES)}")
    return rows.filter(entity_type__in=values)


# filter[...] of GET /api/v4/tasks (SDK TasksFilter; docs/amocrm-api.md §6). entity_id only makes
# sense with entity_type (the reference says it must come with it).
TASK_FILTERS = {
    "id": by_ids("pk"),
    "responsible_user_id": by_ids("responsible_user_id"),
    "is_completed": _task_completed,
    "task_type": _task_type,
    "task_type_id": _task_type,
    "entity_type": _entity_type,
    "entity_id": by_ids("entity_id"),
    "created_by": by_ids("created_by"),
    "updated_at": by_timestamp_range("updated_at"),
}
_TASK_ORDER = {"id": "id", "created_at": "received_at", "complete_till": "complete_till"}


def _tasks_list(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    query = ListQuery.of(request)
    filter_node = query.params.get("filter")
    if isinstance(filter_node, dict) and "entity_id" in filter_node:
        if "entity_type" not in filter_node:
            return QueryProblem(
                ("filter", "entity_id"), "needs filter[entity_type] too", "NotBlank"
            ).response()
    return filtered_page(
        request,
        query,
        rows=ctx.account.tasks.all(),
        filters=TASK_FILTERS,
        order=_TASK_ORDER,
        path="/api/v4/tasks",
        key="tasks",
        render=lambda t: _task_json(request, t),
    )


_TASK_KEYS = {
    "text",
    "complete_till",
    "entity_id",
    "entity_type",
    "task_type_id",
    "responsible_user_id",
    "duration",
    "is_completed",
    "result",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "request_id",
}
_TASK_READ_ONLY = {"id", "group_id", "account_id", "_links"}


def _task_changes(
    ctx: ApiContext, item: Any, errors: ItemErrors, user_ids: set[int], *, create: bool
) -> dict[str, Any]:
    """Validate one task of a POST (``create``) or PATCH; returns model field → value."""
    if not isinstance(item, dict):
        errors.add("InvalidType", "", "Expected object")
        return {}
    unknown_keys(item, _TASK_KEYS | _TASK_READ_ONLY, errors)
    changes: dict[str, Any] = {}
    if create or "text" in item:
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            errors.add("NotBlank", "text", "This value should not be blank.")
        else:
            changes["text"] = item["text"]
    if create or "complete_till" in item:
        if not is_int(item.get("complete_till")):
            errors.add("InvalidType", "complete_till", "This value should be of type int.")
        else:
            changes["complete_till"] = item["complete_till"]
    if "entity_type" in item or "entity_id" in item:
        entity_type = item.get("entity_type")
        if entity_type not in TASK_ENTITY_TYPES:
            errors.add("NotSupportedChoice", "entity_type", "Unknown entity type")
        elif not is_int(item.get("entity_id")):
            errors.add("InvalidType", "entity_id", "This value should be of type int.")
        elif (
            entity_type in ("contacts", "leads")
            and not getattr(ctx.account, entity_type).filter(pk=item["entity_id"]).exists()
        ):
            errors.add("NotSupportedChoice", "entity_id", "Entity not found")
        else:
            changes["entity_type"], changes["entity_id"] = entity_type, item["entity_id"]
    if create or "responsible_user_id" in item:
        responsible = item.get("responsible_user_id", ctx.user.pk)
        if not is_int(responsible) or responsible not in user_ids:
            errors.add("NotSupportedChoice", "responsible_user_id", "User not found")
        else:
            changes["responsible_user_id"] = responsible
    if create or "task_type_id" in item:
        task_type = item.get("task_type_id", 1)
        if not is_int(task_type) or task_type not in TASK_TYPES:
            errors.add("NotSupportedChoice", "task_type_id", "Task type not found")
        else:
            changes["task_type_id"] = task_type
    if "duration" in item:
        if not is_int(item["duration"]) or item["duration"] < 0:
            errors.add("InvalidType", "duration", "This value should be of type int.")
        else:
            changes["duration"] = item["duration"]
    if "is_completed" in item:
        if not isinstance(item["is_completed"], bool):
            errors.add("InvalidType", "is_completed", "This value should be of type bool.")
        else:
            changes["is_completed"] = item["is_completed"]
    if "result" in item:
        result = item["result"]
        if not isinstance(result, dict) or not isinstance(result.get("text"), str):
            errors.add("InvalidType", "result.text", "This value should be of type string.")
        elif set(result) - {"text"}:
            errors.add("NotSupportedField", "result", "Only result.text is supported.")
        else:
            changes["result_text"] = result["text"]
    for key in ("created_by", "updated_by"):
        value = item.get(key)
        if value is not None and (not is_int(value) or (value and value not in user_ids)):
            errors.add("NotSupportedChoice", key, "User not found")
    for key in ("created_at", "updated_at"):
        if item.get(key) is not None and not is_int(item[key]):
            errors.add("InvalidType", key, "This value should be of type int.")
    return changes


def _tasks_add(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    items, error = array_body(request)
    if error is not None:
        return error
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    all_errors = []
    prepared = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        prepared.append(_task_changes(ctx, item, errors, user_ids, create=True))
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    created: list[Task] = []
    with transaction.atomic():
        for index, (item, changes) in enumerate(zip(items, prepared, strict=True)):
            created.append(
                services.task_create(
                    account=ctx.account,
                    created_by=item.get("created_by") or ctx.user.pk,
                    request_id=request_id_of(item, index),
                    payload=item,
                    **changes,
                )
            )
    return hal_response(
        {
            "_links": self_link(request, "/api/v4/tasks"),
            "_embedded": {
                "tasks": [
                    {
                        "id": task.pk,
                        "request_id": task.request_id,
                        "_links": self_link(request, f"/api/v4/tasks/{task.pk}"),
                    }
                    for task in created
                ]
            },
        }
    )


def _tasks_update(
    request: HttpRequest, ctx: ApiContext, items: list[Any], *, single: bool
) -> HttpResponse:
    """``PATCH /api/v4/tasks`` (array, each with ``id``) and ``PATCH /api/v4/tasks/{id}``.

    Completing a task is ``{"is_completed": true, "result": {"text": "…"}}``
    (docs/amocrm-api.md §6).
    """
    user_ids = set(ctx.account.users.values_list("pk", flat=True))
    ids = [int(i["id"]) for i in items if isinstance(i, dict) and is_int(i.get("id"))]
    tasks = {t.pk: t for t in ctx.account.tasks.filter(pk__in=ids)}
    all_errors = []
    prepared: list[tuple[Task, dict[str, Any], str, int]] = []
    for index, item in enumerate(items):
        errors = ItemErrors(request_id_of(item, index))
        all_errors.append(errors)
        changes = _task_changes(ctx, item, errors, user_ids, create=False)
        task_id: Any = item.get("id") if isinstance(item, dict) else None
        task = tasks.get(int(task_id)) if is_int(task_id) else None
        if task is None:
            if single:
                return problem_response(404, "Task not found")  # GUESS: 404 for a PATCH
            errors.add("NotSupportedChoice", "id", "Entity not found")
            continue
        author = (item.get("updated_by") if isinstance(item, dict) else None) or ctx.user.pk
        prepared.append((task, changes, errors.request_id, author))
    if any(e.errors for e in all_errors):
        return validation_problem(all_errors)
    out = []
    with transaction.atomic():
        for task, changes, request_id, author in prepared:
            services.task_update(task=task, changes=changes, updated_by=author)
            out.append(
                {
                    "id": task.pk,
                    "updated_at": ts(task.changed_at),
                    "request_id": request_id,
                    "_links": self_link(request, f"/api/v4/tasks/{task.pk}"),
                }
            )
    if single:
        return hal_response({k: v for k, v in out[0].items() if k != "request_id"})
    return hal_response(
        {"_links": self_link(request, "/api/v4/tasks"), "_embedded": {"tasks": out}}
    )


@amocrm_api("GET", "POST", "PATCH")
def tasks_view(request: HttpRequest, ctx: ApiContext) -> HttpResponse:
    return collection(request, ctx, listing=_tasks_list, add=_tasks_add, update=_tasks_update)


@amocrm_api("GET", "PATCH")
def task_detail_view(request: HttpRequest, ctx: ApiContext, task_id: int) -> HttpResponse:
    if request.method == "PATCH":
        return update_one(request, ctx, _tasks_update, task_id)
    refused = no_query(request)
    if refused is not None:
        return refused
    task = ctx.account.tasks.filter(pk=task_id).first()
    if task is None:
        return no_content()  # as for a contact (GUESS)
    return hal_response(_task_json(request, task))
