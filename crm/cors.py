"""CORS for the widget API: amoCRM account origins (and the sandbox while it stands in for
amoCRM) may call /amocrm/widget/* with the X-Auth-Token header; nothing else is opened."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

AMO_ORIGIN_RE = re.compile(r"^https://[a-z0-9-]+\.(amocrm\.ru|amocrm\.com|kommo\.com)$")
WIDGET_PATH_PREFIX = "/amocrm/widget/"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def widget_origin_allowed(origin: str) -> bool:
    if AMO_ORIGIN_RE.match(origin):
        return True
    sandbox = _origin(settings.AMOCRM_API_BASE_URL) if settings.AMOCRM_API_BASE_URL else ""
    return bool(sandbox) and origin == sandbox


def cors_allow_widget(sender: Any, request: Any, **kwargs: Any) -> bool:
    """django-cors-headers ``check_request_enabled`` handler (connected in CrmConfig.ready)."""
    if not request.path.startswith(WIDGET_PATH_PREFIX):
        return False
    return widget_origin_allowed(request.headers.get("Origin", ""))
