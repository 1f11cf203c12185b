"""Template context shared by every page."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def language_next(request: HttpRequest) -> dict[str, str]:
    """Where the language switch returns. A page drawn as the answer to a POST (a form with
    errors) has a URL that only takes POST: go back to the page the form was on instead."""
    if request.method in ("GET", "HEAD"):
        return {}
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        return {"language_next": parts.path + (f"?{parts.query}" if parts.query else "")}
    return {"language_next": "/"}
