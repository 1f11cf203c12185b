"""Who may open which organization in the cabinet.

A browser session unlocks organizations one access key at a time and keeps their ids; support
staff (Django auth, logged in through /admin/) may open any organization. Every organization
page carries the organization id in its URL and goes through ``organization_required``: an id
the session has not unlocked is a 404 (indistinguishable from an id that does not exist), and
the view runs inside that organization's tenant scope.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from core.models import Organization
from core.tenancy import organization_scope

SESSION_ORGANIZATIONS = "cabinet_organizations"
SESSION_CURRENT = "cabinet_current"

P = ParamSpec("P")


def user_is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def session_organization_ids(request: HttpRequest) -> list[int]:
    raw = request.session.get(SESSION_ORGANIZATIONS, [])
    return [int(pk) for pk in raw if isinstance(pk, int)]


def session_has_access(request: HttpRequest) -> bool:
    return bool(session_organization_ids(request)) or user_is_staff(request)


def session_unlock(request: HttpRequest, organization: Organization) -> None:
    """Add an organization to this session and make it the current one.

    The session key is cycled, so a session id planted before the login is worthless after it.
    """
    request.session.cycle_key()
    ids = session_organization_ids(request)
    if organization.pk not in ids:
        ids.append(organization.pk)
    request.session[SESSION_ORGANIZATIONS] = ids
    request.session[SESSION_CURRENT] = organization.pk


def session_forget(request: HttpRequest, organization_id: int) -> None:
    ids = [pk for pk in session_organization_ids(request) if pk != organization_id]
    request.session[SESSION_ORGANIZATIONS] = ids
    if request.session.get(SESSION_CURRENT) == organization_id:
        request.session[SESSION_CURRENT] = ids[0] if ids else None


def session_set_current(request: HttpRequest, organization_id: int) -> None:
    request.session[SESSION_CURRENT] = organization_id


def session_current_id(request: HttpRequest) -> int | None:
    """The organization the cabinet opens by default: the chosen one if still allowed."""
    current = request.session.get(SESSION_CURRENT)
    ids = session_organization_ids(request)
    if isinstance(current, int) and (current in ids or user_is_staff(request)):
        return current
    return ids[0] if ids else None


def organization_for_request(request: HttpRequest, organization_id: int) -> Organization:
    """The organization if this request may open it; Http404 otherwise (no existence oracle)."""
    if not (organization_id in session_organization_ids(request) or user_is_staff(request)):
        raise Http404
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise Http404
    return organization


def organization_required(
    view: Callable[Concatenate[HttpRequest, Organization, P], HttpResponse],
) -> Callable[..., HttpResponse]:
    """Decorate a view taking ``(request, organization, ...)`` and routed with ``<int:org_id>``.

    A visitor with nothing unlocked is sent to the login page; otherwise the organization must be
    unlocked in this session (or the user is staff), or the answer is 404. The view, including
    its template rendering, runs inside the organization's tenant scope.
    """

    @wraps(view)
    def wrapper(
        request: HttpRequest, org_id: int, *args: P.args, **kwargs: P.kwargs
    ) -> HttpResponse:
        if not session_has_access(request):
            return redirect("cabinet:login")
        organization = organization_for_request(request, org_id)
        request.organization = organization  # type: ignore[attr-defined]
        with organization_scope(organization):
            return view(request, organization, *args, **kwargs)

    return wrapper
