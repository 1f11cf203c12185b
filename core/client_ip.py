"""The client's address, for login throttling (cabinet and admin) [docs/security.md].

Behind ``TRUSTED_PROXY_COUNT`` reverse proxies of ours, each proxy appends the address it saw to
X-Forwarded-For, so the client is the N-th entry from the right; entries further left are
whatever the client sent and are ignored. A header shorter than promised, or an entry that is
not an IP address, falls back to REMOTE_ADDR (never to a client-chosen value).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address, or None when the request carries none (a test's fake request)."""
    remote = _ip(str(request.META.get("REMOTE_ADDR") or ""))
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = header.split(",") if header.strip() else []
    if len(forwarded) < proxies:
        return remote
    return _ip(forwarded[-proxies]) or remote
