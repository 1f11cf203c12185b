"""Load-balancer probes. ``/healthz``: the process answers. ``/readyz``: its dependencies do."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.redis import redis_client

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readyz: database unreachable", exc_info=True)
        return False


def _broker_ok() -> bool:
    try:
        return bool(redis_client(settings.CELERY_BROKER_URL).ping())
    except Exception:
        logger.warning("readyz: redis unreachable", exc_info=True)
        return False


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    down = [name for name, ok in (("database", _database_ok()), ("redis", _broker_ok())) if not ok]
    if down:
        return JsonResponse(
            {"status": "unavailable", "down": down, "message": f"Unavailable: {', '.join(down)}"},
            status=503,
        )
    return JsonResponse({"status": "ok"})
