"""Who may open which organization in the cabinet, and what they may do there.

A browser session unlocks organizations one access key at a time and remembers, for each, the
key generation it was unlocked with: «Сменить ключ» bumps the generation, which logs every
session opened with the old key out of that organization. Such a session is the **customer**
and may do everything on its organizations.

Support staff (Django auth, logged in through /admin/, with two-factor when STAFF_REQUIRE_2FA is
on) may open any organization:

- **support** (``is_staff``, no special permission) reads Dashboard (the call journal) and
  Диагностика, and never sees an access key or a token;
- **support acting for the customer** needs the ``core.act_for_customer`` permission;
  it opens every tab and may change settings, managers, retry calls, replace the Beeline token
  and rotate the key, and each such change is written to the organization's audit log with the
  staff member's name (``support_audit``). The access key itself is never shown to staff;
- deleting an organization from the cabinet needs a superuser (or the customer's own key).

Every organization page carries the organization id in its URL and goes through
``organization_required``: an id this request may not open is a 404 (indistinguishable from an
id that does not exist), a tab the role may not use is a 403, and the view runs inside that
organization's tenant scope.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any, overload
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from core.admin_site import staff_2fa_required
from core.models import Organization
from core.tenancy import organization_scope

# {organization id (str): access key generation it was unlocked with}
SESSION_ORGANIZATIONS = "cabinet_unlocked"
SESSION_CURRENT = "cabinet_current"
ACT_FOR_CUSTOMER = "core.act_for_customer"
_CACHE_ATTR = "_cabinet_unlocked_ids"


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    SUPPORT = "support"
    SUPPORT_ACTING = "support_acting"


def user_is_staff(request: HttpRequest) -> bool:
    """Support staff: active, is_staff, and verified by a TOTP device when that is required."""
    user = getattr(request, "user", None)
    if not (user is not None and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if staff_2fa_required():
        is_verified = getattr(user, "is_verified", None)
        return bool(is_verified and is_verified())
    return True


def user_may_act_for_customers(request: HttpRequest) -> bool:
    return user_is_staff(request) and request.user.has_perm(ACT_FOR_CUSTOMER)


def _unlocked(request: HttpRequest) -> dict[str, int]:
    raw = request.session.get(SESSION_ORGANIZATIONS)
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if k.isdigit() and isinstance(v, int)}


def session_organization_ids(request: HttpRequest) -> list[int]:
    """Organizations this session unlocked with a key that is still current. Entries of a
    rotated key (or a deleted organization) are dropped from the session on the way."""
    cached: list[int] | None = getattr(request, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    unlocked = _unlocked(request)
    ids: list[int] = []
    if unlocked:
        current = dict(
            Organization.objects.filter(pk__in=[int(k) for k in unlocked]).values_list(
                "pk", "access_key_generation"
            )
        )
        valid = {k: g for k, g in unlocked.items() if current.get(int(k)) == g}
        if valid != request.session.get(SESSION_ORGANIZATIONS):
            request.session[SESSION_ORGANIZATIONS] = valid
        ids = [int(k) for k in valid]
    setattr(request, _CACHE_ATTR, ids)
    return ids


def session_has_access(request: HttpRequest) -> bool:
    return bool(session_organization_ids(request)) or user_is_staff(request)


def session_unlock(request: HttpRequest, organization: Organization) -> None:
    """Add an organization to this session and make it the current one.

    The session key is cycled, so a session id planted before the login is worthless after it.
    """
    request.session.cycle_key()
    unlocked = {
        str(pk): generation
        for pk, generation in _unlocked(request).items()
        if int(pk) in session_organization_ids(request)
    }
    unlocked[str(organization.pk)] = organization.access_key_generation
    request.session[SESSION_ORGANIZATIONS] = unlocked
    request.session[SESSION_CURRENT] = organization.pk
    setattr(request, _CACHE_ATTR, None)


def session_forget(request: HttpRequest, organization_id: int) -> None:
    unlocked = {k: g for k, g in _unlocked(request).items() if int(k) != organization_id}
    request.session[SESSION_ORGANIZATIONS] = unlocked
    setattr(request, _CACHE_ATTR, None)
    if request.session.get(SESSION_CURRENT) == organization_id:
        ids = session_organization_ids(request)
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


def role_for(request: HttpRequest, organization_id: int) -> Role | None:
    if organization_id in session_organization_ids(request):
        return Role.CUSTOMER
    if user_may_act_for_customers(request):
        return Role.SUPPORT_ACTING
    if user_is_staff(request):
        return Role.SUPPORT
    return None


def organization_for_request(request: HttpRequest, organization_id: int) -> Organization:
    """The organization if this request may open it; Http404 otherwise (no existence oracle)."""
    role = role_for(request, organization_id)
    if role is None:
        raise Http404
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise Http404
    request.cabinet_role = role  # type: ignore[attr-defined]
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


def forbidden(request: HttpRequest, organization: Organization, message: str) -> HttpResponse:
    return render(
        request,
        "cabinet/forbidden.html",
        {"organization": organization, "message": message, "tab": ""},
        status=403,
    )


View = Callable[..., HttpResponse]


@overload
def organization_required(view: View) -> View: ...
@overload
def organization_required(*, support_may_read: bool = False) -> Callable[[View], View]: ...
def organization_required(
    view: View | None = None, *, support_may_read: bool = False
) -> View | Callable[[View], View]:
    """Decorate a view taking ``(request, organization, ...)`` and routed with ``<int:org_id>``.

    A visitor with nothing unlocked is sent to the login page (and brought back after it);
    otherwise the organization must be unlocked in this session (or the user is staff), or the
    answer is 404. Support staff without the permission to act for customers get 403 unless
    ``support_may_read`` (Dashboard, Диагностика). The view, including its template rendering,
    runs inside the organization's tenant scope and time zone.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, org_id: int, *args: Any, **kwargs: Any) -> HttpResponse:
            if not session_has_access(request):
                return login_redirect(request)
            organization = organization_for_request(request, org_id)
            request.organization = organization  # type: ignore[attr-defined]
            if request.cabinet_role == Role.SUPPORT and not support_may_read:  # type: ignore[attr-defined]
                return forbidden(
                    request,
                    organization,
                    _(
                        "Сотрудникам поддержки этот раздел доступен только с правом "
                        "«действовать от имени клиента»."
                    ),
                )
            # Every date and time on the page in the organization's own time zone.
            with organization_scope(organization), timezone.override(organization.time_zone):
                return view(request, organization, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def request_role(request: HttpRequest) -> Role | None:
    return getattr(request, "cabinet_role", None)


def support_audit(request: HttpRequest, organization: Organization, action: str) -> None:
    """Write what a staff member did for the customer to the organization's audit log."""
    if request_role(request) != Role.SUPPORT_ACTING:
        return
    from core.services import audit_staff_action

    audit_staff_action(organization=organization, user=request.user, action=action)
