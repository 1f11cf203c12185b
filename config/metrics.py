"""``GET /metrics``: Prometheus text format, for operators only (docs/operations.md "Monitoring").

Two parts:

- the counters and histograms of the code paths (``core.metrics``), from this process's
  registry, or — with ``PROMETHEUS_MULTIPROC_DIR`` set — summed over every process of the host
  that writes to that directory (gunicorn workers, Celery workers);
- gauges of the state kept in PostgreSQL and Redis, read at scrape time by ``StateCollector``
  with bounded queries on partial indexes (never a count of a whole history table). A store that
  does not answer turns into ``beetel_database_up 0`` / ``beetel_redis_up 0`` and its gauges
  are left out: a scrape never raises and never waits longer than the stores' timeouts.

Access: a request with ``Authorization: Bearer <METRICS_TOKEN>`` (when the token is set), or
from an address in ``METRICS_ALLOWED_NETWORKS`` (default: loopback). Anyone else gets 404.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.client_ip import client_address
from core.redis import redis_client
from core.tenancy import scopes_disabled
from crm.models import AmoAccountState
from integration.models import CallDelivery
from pbx.models import BeelineCredentials, PbxEvent, Subscription

logger = logging.getLogger(__name__)

# Counts above this are reported as this: the gauge says "a lot", and the query stays bounded
# however large the backlog grows.
COUNT_CAP = 100_000
QUEUES = ("events", "crm", "default")
STATEMENT_TIMEOUT_MS = 2000
EXPIRING_WITHIN = timedelta(hours=6)
_GAUGE_STATUSES = (
    CallDelivery.Status.PENDING,
    CallDelivery.Status.IN_PROGRESS,
    CallDelivery.Status.FAILED,
    CallDelivery.Status.PAUSED,
)


def _capped_count(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT %s) AS capped", [*params, COUNT_CAP])
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _sql(queryset: Any) -> tuple[str, list[Any]]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


class StateCollector(Collector):
    """Gauges of what is in the database and the broker, computed at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._database()
        yield from self._queues()

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # computed at scrape time: nothing to check at registration

    def _database(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("beetel_database_up", "1 when PostgreSQL answered this scrape.")
        try:
            families = list(self._database_families())
        except Exception:
            logger.warning("metrics: database unreachable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _database_families(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        with scopes_disabled(), transaction.atomic():
            if connection.vendor == "postgresql":  # a slow database delays a scrape, no more
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [STATEMENT_TIMEOUT_MS])
            # pbx_event_unprocessed_idx holds only the rows still waiting.
            unprocessed = PbxEvent.objects.filter(processed_at__isnull=True)
            count = _capped_count(*_sql(unprocessed.values("pk")))
            oldest = unprocessed.aggregate(oldest=Min("received_at"))["oldest"]
            # integ_delivery_open_idx (pending, in progress), integ_delivery_trouble_idx
            # (failed, paused).
            deliveries = {
                status: _capped_count(
                    *_sql(CallDelivery.objects.filter(status=status).values("pk"))
                )
                for status in _GAUGE_STATUSES
            }
            # At most one active subscription per organization (pbx_subscription_one_active).
            active = Subscription.objects.filter(status=Subscription.Status.ACTIVE)
            expired = active.filter(expires_at__lte=now).count()
            expiring = active.filter(expires_at__gt=now, expires_at__lte=now + EXPIRING_WITHIN)
            expiring_count = expiring.count()
            retrying = BeelineCredentials.objects.filter(subscription_retry_at__isnull=False)
            retrying_count = retrying.count()
            # One row per organization.
            paused = {
                row["paused_reason"]: row["n"]
                for row in AmoAccountState.objects.exclude(paused_reason="")
                .values("paused_reason")
                .annotate(n=Count("pk"))
                .order_by()
            }

        events = GaugeMetricFamily(
            "beetel_events_unprocessed",
            f"Stored Beeline events not processed yet (capped at {COUNT_CAP}).",
        )
        events.add_metric([], count)
        yield events
        age = GaugeMetricFamily(
            "beetel_events_unprocessed_oldest_seconds",
            "Age of the oldest stored Beeline event not processed yet (0 when none).",
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest is not None else 0.0)
        yield age

        by_status = GaugeMetricFamily(
            "beetel_deliveries",
            f"Call deliveries now in each open or troubled status (capped at {COUNT_CAP}).",
            labels=["status"],
        )
        for status, n in deliveries.items():
            by_status.add_metric([str(status)], n)
        yield by_status

        subscriptions = GaugeMetricFamily(
            "beetel_subscriptions",
            "Active Beeline event subscriptions: 'expired' (past expires_at, not renewed), "
            f"'expiring' (within {int(EXPIRING_WITHIN.total_seconds() // 3600)} h).",
            labels=["state"],
        )
        subscriptions.add_metric(["expired"], expired)
        subscriptions.add_metric(["expiring"], expiring_count)
        yield subscriptions
        retry = GaugeMetricFamily(
            "beetel_subscriptions_retrying",
            "Organizations whose Beeline subscription failed and waits for a retry.",
        )
        retry.add_metric([], retrying_count)
        yield retry

        organizations = GaugeMetricFamily(
            "beetel_organizations_paused",
            "Organizations whose amoCRM traffic is paused: unpaid (402), banned (403), revoked.",
            labels=["reason"],
        )
        for reason in AmoAccountState.PauseReason:
            if reason.value:
                organizations.add_metric([reason.value], paused.get(reason.value, 0))
        yield organizations

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("beetel_redis_up", "1 when the Celery broker answered this scrape.")
        try:
            client = redis_client(settings.CELERY_BROKER_URL)
            with client.pipeline(transaction=False) as pipe:
                for queue in QUEUES:
                    pipe.llen(queue)
                lengths = pipe.execute()
        except Exception:
            logger.warning("metrics: redis unreachable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        queues = GaugeMetricFamily(
            "beetel_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        for queue, length in zip(QUEUES, lengths, strict=True):
            queues.add_metric([queue], int(length))
        yield queues


_state_registry = CollectorRegistry(auto_describe=False)
_state_registry.register(StateCollector())


def metrics_text() -> bytes:
    """Everything ``/metrics`` shows, in Prometheus's text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        counters = generate_latest(registry)
    else:
        counters = generate_latest(REGISTRY)
    return counters + generate_latest(_state_registry)


@lru_cache(maxsize=4)
def _networks(
    values: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        offered = header.removeprefix("Bearer ").strip()
        if hmac.compare_digest(offered.encode(), token.encode()):
            return True
    address = client_address(request)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        # As if there were nothing here: no hint to scanners that metrics exist.
        return HttpResponseNotFound("Not found", content_type="text/plain")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
