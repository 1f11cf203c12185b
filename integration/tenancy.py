"""Fail-closed tenancy (django-scopes).

Every tenant-owned model derives from ``TenantModel``: its default manager raises ``ScopeError``
unless a scope on ``organization`` is active. Views enter the scope after authorizing the
organization; tasks enter it from the organization id they were given; Django admin runs
unscoped because support staff see every organization.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import models
from django.http import HttpRequest, HttpResponse
from django_scopes import ScopedManager, scope, scopes_disabled

if TYPE_CHECKING:
    from integration.models import Organization

__all__ = [
    "AdminUnscopedMiddleware",
    "TenantModel",
    "organization_scope",
    "scope",
    "scopes_disabled",
]


class TenantModel(models.Model):
    organization = models.ForeignKey(
        "integration.Organization", on_delete=models.CASCADE, related_name="+", db_index=True
    )

    objects: models.Manager[Any] = ScopedManager(organization="organization")

    class Meta:
        abstract = True


@contextmanager
def organization_scope(organization: Organization | int) -> Iterator[None]:
    """Activate the tenant scope for one organization (instance or primary key)."""
    with scope(organization=organization):
        yield


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
