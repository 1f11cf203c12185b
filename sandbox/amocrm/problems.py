"""amoCRM's error bodies (docs/amocrm-api.md §1.3, §8) and its success content type.

API errors are ``application/problem+json`` ``{"title","type","status","detail"}`` with
``type`` = ``https://httpstatus.es/<status>`` (CONFIRMED-3P: bodies quoted in SDK issues #92 and
#333). OAuth errors carry ``hint`` and the OAuthProblemJson type (CONFIRMED: SDK#123/#315).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from django.http import HttpResponse

OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
OAUTH_TITLE = "Некорректный запрос"


def hal_response(data: Any, *, status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/hal+json",
    )


def no_content() -> HttpResponse:
    # An empty list is 204 with no body at all (docs/amocrm-api.md §4, §8).
    return HttpResponse(status=204, content_type="")


def problem_response(status: int, detail: str, **extra: Any) -> HttpResponse:
    body: dict[str, Any] = {
        "title": HTTPStatus(status).phrase,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail,
        **extra,
    }
    return HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/problem+json",
    )


def oauth_problem(status: int, detail: str, hint: str) -> HttpResponse:
    body = {
        "hint": hint,
        "title": OAUTH_TITLE,
        "type": OAUTH_PROBLEM_TYPE,
        "status": status,
        "detail": detail,
    }
    return HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/problem+json",
    )


@dataclass
class ItemErrors:
    """Validation errors of one array item, as in ``validation-errors[]``."""

    request_id: str
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, code: str, path: str, detail: str) -> None:
        self.errors.append({"code": code, "path": path, "detail": detail})


def validation_problem(items: list[ItemErrors]) -> HttpResponse:
    return problem_response(
        400,
        "Request validation failed",
        **{
            "validation-errors": [
                {"request_id": item.request_id, "errors": item.errors}
                for item in items
                if item.errors
            ]
        },
    )
