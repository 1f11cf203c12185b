"""The two ways a cabinet form is answered: an HTMX fragment with a toast, or a full round trip.

With JavaScript the form posts through HTMX and gets back its own fragment plus an ``HX-Trigger``
header that shows the toast in the corner; without JavaScript the same view redirects (POST →
redirect → GET) and the toast comes from Django's messages.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _


def toast_trigger(message: str, *, level: str = "success") -> str:
    # ASCII only: HTTP headers cannot carry Cyrillic as is; JSON escapes survive the trip.
    return json.dumps({"toast": {"message": message, "level": level}}, ensure_ascii=True)


def saved_response(
    request: HttpRequest,
    *,
    fragment: str,
    context: dict[str, Any],
    message: str | None = None,
    redirect_to: str | None = None,
) -> HttpResponse:
    """Answer a successful save: the fragment + «Сохранено» toast, or a redirect back (to the
    same URL, or ``redirect_to`` when the form posts to a URL of its own)."""
    message = message or _("Сохранено")
    if getattr(request, "htmx", False):
        response = render(request, fragment, context)
        response["HX-Trigger"] = toast_trigger(message)
        return response
    messages.success(request, message)
    return redirect(redirect_to or request.get_full_path())


def form_response(
    request: HttpRequest,
    *,
    page: str,
    fragment: str,
    context: dict[str, Any],
    error: str | None = None,
) -> HttpResponse:
    """Answer an invalid form with 400: the fragment with errors and an error toast for HTMX
    (htmx swaps 400 answers, see templates/base.html), the whole page otherwise. The page keeps
    its unsaved-changes warning: nothing was saved."""
    error = error or _("Не сохранено: исправьте отмеченное.")
    if getattr(request, "htmx", False):
        response = render(request, fragment, context, status=400)
        response["HX-Trigger"] = toast_trigger(error, level="error")
        return response
    messages.error(request, error)
    return render(request, page, context, status=400)
