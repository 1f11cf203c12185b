"""Query strings read the way amoCRM's PHP back end reads them, and strict filters on top.

PHP's ``parse_str`` turns ``filter[id][]=1``, ``filter[id][0]=1`` and ``filter[id][5]=1`` into
the same thing: an array under ``filter`` → ``id``. Clients send all three forms (the official
PHP SDK and ``http_build_query`` write ``[0]``, ``requests``-style clients write ``[]``), and
a scalar ``filter[id]=1`` is accepted for one value. :func:`parse_php_query` rebuilds that
nested structure; :class:`ListQuery` then lets an endpoint take exactly the parameters and
filters it implements. Anything else is refused with 400 naming it: an emulator that ignored a
filter would answer with the unfiltered list and let a test pass that fails against amoCRM.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from sandbox.amocrm.problems import problem_response

# name[a][b][] → base "name", segments "a", "b", "" ("" = append, as PHP's [] does).
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

Node = str | dict[str, Any]


def _next_index(container: dict[str, Any]) -> str:
    # PHP appends at (largest integer key + 1), or 0 for an array without integer keys.
    indexes = [int(k) for k in container if re.fullmatch(r"-?(0|[1-9]\d*)", k)]
    return str(max(indexes) + 1 if indexes else 0)


def parse_php_query(query_string: str) -> dict[str, Any]:
    """``a[b][]=1&a[b][]=2&c=3`` → ``{"a": {"b": {"0": "1", "1": "2"}}, "c": "3"}``.

    As in PHP: a later value replaces an earlier one with the same key, dots and spaces in the
    base name become underscores, and a key whose brackets do not pair is kept literally (it
    then fails as an unknown parameter instead of being half-understood).
    """
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query_string, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if match is None:
            result[raw_key] = value
            continue
        base = re.sub(r"[ .]", "_", match.group(1))
        segments = _SEGMENT.findall(match.group(2))
        container = result
        key = base
        for segment in segments:
            child = container.get(key)
            if not isinstance(child, dict):
                child = {}
                container[key] = child
            container = child
            key = segment if segment != "" else _next_index(container)
        container[key] = value
    return result


def display_path(path: tuple[str, ...]) -> str:
    """("filter", "id") → ``filter[id]``."""
    return path[0] + "".join(f"[{p}]" for p in path[1:])


class QueryProblem(Exception):
    """A query parameter the emulator refuses; rendered as 400 problem+json naming it."""

    def __init__(self, path: tuple[str, ...], detail: str, code: str = "NotSupportedChoice"):
        super().__init__(detail)
        self.path = path
        self.detail = detail
        self.code = code

    def response(self) -> HttpResponse:
        name = display_path(self.path)
        return problem_response(
            400,
            f"{name}: {self.detail}",
            **{
                "validation-errors": [
                    {
                        "request_id": "0",
                        "errors": [
                            {"code": self.code, "path": ".".join(self.path), "detail": self.detail}
                        ],
                    }
                ]
            },
        )


def unsupported(path: tuple[str, ...]) -> QueryProblem:
    return QueryProblem(path, "this parameter is not supported by the sandbox emulator")


# --- reading values ---------------------------------------------------------------------------


def strings(node: Node, path: tuple[str, ...]) -> list[str]:
    """One value or an array of values (``x=1``, ``x[]=1&x[]=2``, ``x[0]=1``) as strings."""
    if isinstance(node, str):
        return [node]
    values: list[str] = []
    for key, item in node.items():
        if not isinstance(item, str):
            raise QueryProblem((*path, key), "expected a value, not a nested array", "InvalidType")
        values.append(item)
    return values


def integers(node: Node, path: tuple[str, ...]) -> list[int]:
    out = []
    for value in strings(node, path):
        # Commas are not a list separator in amoCRM: "1,2" is one (invalid) id.
        if not re.fullmatch(r"\d+", value.strip()):
            raise QueryProblem(path, f"{value!r} is not an integer", "InvalidType")
        out.append(int(value))
    return out


def boolean(node: Node, path: tuple[str, ...]) -> bool:
    values = {v.strip().lower() for v in strings(node, path)}
    if values <= {"1", "true"} and values:
        return True
    if values <= {"0", "false"} and values:
        return False
    raise QueryProblem(path, "expected 0/1 (or true/false)", "InvalidType")


def int_range(node: Node, path: tuple[str, ...]) -> tuple[int | None, int | None]:
    """``x=5`` (exactly 5) or ``x[from]=1&x[to]=9`` (inclusive, either side optional)."""
    if isinstance(node, str):
        (value,) = integers(node, path)
        return value, value
    unknown = set(node) - {"from", "to"}
    if unknown:
        raise unsupported((*path, sorted(unknown)[0]))
    low = integers(node["from"], (*path, "from"))[0] if "from" in node else None
    high = integers(node["to"], (*path, "to"))[0] if "to" in node else None
    if low is None and high is None:
        raise QueryProblem(path, "expected from and/or to", "InvalidType")
    return low, high


# --- a list endpoint's query ------------------------------------------------------------------

FilterApply = Callable[[QuerySet[Any], Node, tuple[str, ...]], QuerySet[Any]]


@dataclass
class ListQuery:
    """The parsed query of one request, consumed parameter by parameter.

    Every ``take*`` marks a parameter as understood; :meth:`finish` refuses whatever is left.
    """

    params: dict[str, Any]
    pairs: list[tuple[str, str]]
    _taken: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, request: HttpRequest) -> ListQuery:
        raw = request.META.get("QUERY_STRING", "")
        return cls(parse_php_query(raw), parse_qsl(raw, keep_blank_values=True))

    def take(self, name: str) -> Node | None:
        self._taken.add(name)
        return self.params.get(name)

    def take_text(self, name: str) -> str:
        node = self.take(name)
        if node is None:
            return ""
        if not isinstance(node, str):
            raise QueryProblem((name,), "expected a single value", "InvalidType")
        return node

    def take_with(self, allowed: Iterable[str]) -> set[str]:
        """``with=a,b``: every value must be one the endpoint implements."""
        raw = self.take_text("with")
        values = {v.strip() for v in raw.split(",") if v.strip()}
        allowed = set(allowed)
        for value in sorted(values):
            if value not in allowed:
                raise QueryProblem(
                    ("with",),
                    f"{value!r} is not supported here (supported: {', '.join(sorted(allowed))})",
                )
        return values

    def apply_filters(self, rows: QuerySet[Any], filters: dict[str, FilterApply]) -> QuerySet[Any]:
        node = self.take("filter")
        if node is None:
            return rows
        if isinstance(node, str):
            raise QueryProblem(("filter",), "expected filter[name]=value", "InvalidType")
        for name, value in node.items():
            apply = filters.get(name)
            if apply is None:
                raise unsupported(("filter", name))
            rows = apply(rows, value, ("filter", name))
        return rows

    def apply_order(self, rows: QuerySet[Any], fields: dict[str, str]) -> QuerySet[Any]:
        """``order[created_at]=asc|desc`` (several keys sort in the order given); ``fields``
        maps API names to model fields."""
        node = self.take("order")
        if node is None:
            return rows
        if isinstance(node, str) or not node:
            raise QueryProblem(("order",), "expected order[field]=asc|desc", "InvalidType")
        keys = []
        for name, direction in node.items():
            if name not in fields:
                raise unsupported(("order", name))
            if direction not in ("asc", "desc"):
                raise QueryProblem(("order", name), "expected asc or desc", "InvalidType")
            keys.append(("-" if direction == "desc" else "") + fields[name])
        last = keys[-1].startswith("-")
        return rows.order_by(*keys, "-id" if last else "id")

    def finish(self) -> None:
        for name in self.params:
            if name not in self._taken:
                raise unsupported((name,))

    def pairs_without(self, *names: str) -> list[tuple[str, str]]:
        """The query as sent (same bracket forms), minus the named top-level parameters."""
        return [(k, v) for k, v in self.pairs if re.split(r"[\[]", k, maxsplit=1)[0] not in names]


# --- ready-made filters -------------------------------------------------------------------------


def by_ids(field_name: str) -> FilterApply:
    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        return rows.filter(**{f"{field_name}__in": integers(node, path)})

    return apply


def by_range(field_name: str) -> FilterApply:
    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        low, high = int_range(node, path)
        if low is not None:
            rows = rows.filter(**{f"{field_name}__gte": low})
        if high is not None:
            rows = rows.filter(**{f"{field_name}__lte": high})
        return rows

    return apply


def by_choice(field_name: str, choices: Iterable[str]) -> FilterApply:
    allowed = set(choices)

    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        values = strings(node, path)
        for value in values:
            if value not in allowed:
                raise QueryProblem(path, f"{value!r} is not one of {sorted(allowed)}")
        return rows.filter(**{f"{field_name}__in": values})

    return apply


def by_timestamp_range(field_name: str) -> FilterApply:
    """A range of unix seconds over a DateTimeField (the API shows whole seconds, so ``to``
    takes in the whole second it names)."""

    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        low, high = int_range(node, path)
        if low is not None:
            rows = rows.filter(**{f"{field_name}__gte": datetime.fromtimestamp(low, UTC)})
        if high is not None:
            rows = rows.filter(**{f"{field_name}__lt": datetime.fromtimestamp(high + 1, UTC)})
        return rows

    return apply


def by_bool(field_name: str) -> FilterApply:
    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        return rows.filter(**{field_name: boolean(node, path)})

    return apply


def by_text(field_name: str) -> FilterApply:
    """Exact match on one of the given values (amoCRM's ``filter[name]``)."""

    def apply(rows: QuerySet[Any], node: Node, path: tuple[str, ...]) -> QuerySet[Any]:
        return rows.filter(**{f"{field_name}__in": strings(node, path)})

    return apply
