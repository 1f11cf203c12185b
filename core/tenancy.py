"""Fail-closed tenancy (django-scopes).

Every tenant-owned model derives from ``TenantModel``: its default manager raises ``ScopeError``
unless a scope on ``organization`` is active. Views enter the scope after authorizing the
organization; tasks of one organization derive from ``OrganizationTask``, which enters it from
the task's ``organization_id`` argument; Django admin runs unscoped because support staff see
every organization.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from celery import Task
from django.db import models
from django.http import HttpRequest, HttpResponse
from django_scopes import ScopedManager, scope, scopes_disabled

__all__ = [
    "AdminUnscopedMiddleware",
    "OrganizationTask",
    "TenantModel",
    "organization_scope",
    "scope",
    "scopes_disabled",
]


class TenantModel(models.Model):
    organization = models.ForeignKey(
        "core.Organization", on_delete=models.CASCADE, related_name="+", db_index=True
    )

    # django-scopes builds the manager class at runtime, so the type checker cannot see its
    # model: each concrete model re-declares ``objects: ClassVar[models.Manager[ThatModel]]``.
    objects: ClassVar[models.Manager[Any]] = ScopedManager(organization="organization")

    class Meta:
        abstract = True


@contextmanager
def organization_scope(organization: models.Model | int) -> Iterator[None]:
    """Activate the tenant scope for one organization (instance or primary key)."""
    with scope(organization=organization):
        yield


class OrganizationTask(Task[Any, Any]):
    """Base of every Celery task that works for one organization (pretix's ``EventTask``).

    The task takes an ``organization_id`` argument (positional or keyword); its body runs
    inside that organization's scope, entered once here. Raises TypeError when the task has
    no such argument or it is not an id.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            organization_id = (
                inspect.signature(self.run).bind(*args, **kwargs).arguments["organization_id"]
            )
        except (KeyError, TypeError) as exc:
            raise TypeError(f"{self.name}: an OrganizationTask takes organization_id") from exc
        if not isinstance(organization_id, int):
            raise TypeError(f"{self.name}: organization_id must be an id, not {organization_id!r}")
        with organization_scope(organization_id):
            return super().__call__(*args, **kwargs)


class AdminUnscopedMiddleware:
    """Support staff in Django admin see every organization (admin enforces is_staff itself)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = "/admin/"

    def __call__(self, request: HttpRequest) -> Any:
        if request.path.startswith(self.prefix):
            with scopes_disabled():
                return self.get_response(request)
        return self.get_response(request)
