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
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

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


def _local_path(request: HttpRequest, url: str) -> str:
    """``url`` as a path on this site, or "" when it points elsewhere."""
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return ""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login_redirect(request: HttpRequest) -> HttpResponse:
    """Off to the login page, and back to the page the visitor was on after logging in.

    An HTMX request (a form or filter sent from a cabinet page whose session has expired) gets
    ``HX-Redirect``: the whole page goes to the login page, instead of the login page being
    drawn inside the form. The login page then says that the session expired.
    """
    htmx = getattr(request, "htmx", None)
    if htmx:
        page = _local_path(request, htmx.current_url or "")
    elif request.method in ("GET", "HEAD"):
        page = request.get_full_path()
    else:  # a form sent without JavaScript: back to the page it was on
        page = _local_path(request, request.headers.get("Referer", ""))
    query = {"next": page} if page else {}
    # A session cookie that no longer unlocks anything: the session has expired.
    if htmx or request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        query["expired"] = "1"
    url = reverse("cabinet:login") + (f"?{urlencode(query)}" if query else "")
    if htmx:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def safe_next_path(request: HttpRequest, url: str) -> str:
    """``url`` if it may be carried through the login form (a cabinet path of this site)."""
    path = _local_path(request, url)
    return path if path.startswith("/cabinet/") else ""


def safe_next(request: HttpRequest, url: str) -> str:
    """``url`` if it is a cabinet page this session may open now, else ""."""
    path = _local_path(request, url)
    if not path.startswith("/cabinet/"):
        return ""
    try:
        match = resolve(urlsplit(path).path)
    except Resolver404:
        return ""
    if match.namespace != "cabinet" or match.url_name in {"login", "logout", "install"}:
        return ""
    org_id = match.kwargs.get("org_id")
    if org_id is not None and not (
        org_id in session_organization_ids(request) or user_is_staff(request)
    ):
        return ""
    return path


def organization_required(
    view: Callable[Concatenate[HttpRequest, Organization, P], HttpResponse],
) -> Callable[..., HttpResponse]:
    """Decorate a view taking ``(request, organization, ...)`` and routed with ``<int:org_id>``.

    A visitor with nothing unlocked is sent to the login page (and brought back after it);
    otherwise the organization must be unlocked in this session (or the user is staff), or the
    answer is 404. The view, including its template rendering, runs inside the organization's
    tenant scope and time zone.
    """

    @wraps(view)
    def wrapper(
        request: HttpRequest, org_id: int, *args: P.args, **kwargs: P.kwargs
    ) -> HttpResponse:
        if not session_has_access(request):
            return login_redirect(request)
        organization = organization_for_request(request, org_id)
        request.organization = organization  # type: ignore[attr-defined]
        # Every date and time on the page in the organization's own time zone.
        with organization_scope(organization), timezone.override(organization.time_zone):
            return view(request, organization, *args, **kwargs)

    return wrapper
