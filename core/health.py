"""Load-balancer probes and the Redis health for monitoring.

``/healthz``: the process answers (liveness). ``/readyz``: this web process can do its job,
which needs PostgreSQL (the webhook stores every event there, the cabinet reads it): 503 when
the database does not answer, within ``DATABASE_CONNECT_TIMEOUT``. Redis is reported in the
same answer but does not make it fail: without Redis the webhook still stores events (the
sweeper queues them once Redis is back), so taking every web instance out of the balancer
during a Redis outage would lose the calls it could have kept. ``/healthz/redis`` answers 503
while Redis is down, for monitoring and alerts.
"""

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
        # A new connection waits at most DATABASE_CONNECT_TIMEOUT (a broken one is replaced
        # first: CONN_HEALTH_CHECKS in production).
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("readyz: database unreachable", exc_info=True)
        return False


def _redis_ok() -> bool:
    try:
        return bool(redis_client(settings.CELERY_BROKER_URL).ping())
    except Exception:
        logger.warning("readyz: redis unreachable", exc_info=True)
        return False


def _state(ok: bool) -> str:
    return "ok" if ok else "down"


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    database, redis = _database_ok(), _redis_ok()
    states = {"database": _state(database), "redis": _state(redis)}
    if not database:
        return JsonResponse(
            {"status": "unavailable", "down": ["database"], "message": "Unavailable: database"}
            | states,
            status=503,
        )
    return JsonResponse({"status": "ok"} | states)


@never_cache
@require_GET
def healthz_redis(request: HttpRequest) -> JsonResponse:
    if _redis_ok():
        return JsonResponse({"status": "ok", "redis": "ok"})
    return JsonResponse(
        {"status": "unavailable", "redis": "down", "message": "Unavailable: redis"}, status=503
    )
