from __future__ import annotations

import time

from django.db import OperationalError

from core import health
from core.testing import closed_port, frozen_tcp_server


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_when_database_and_redis_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_redis_down_leaves_the_web_process_ready_and_is_reported_apart(client, db, settings):
    """The webhook keeps storing events without Redis: a balancer must not take the web tier
    out for it. Monitoring sees it in /readyz's body and on /healthz/redis."""
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "down"}

    response = client.get("/healthz/redis")
    assert response.status_code == 503
    assert response.json()["redis"] == "down" and "redis" in response.json()["message"]


def test_healthz_redis_answers_200_while_redis_answers(client):
    response = client.get("/healthz/redis")
    assert response.status_code == 200 and response.json() == {"status": "ok", "redis": "ok"}


def test_database_down_makes_the_web_process_unready(client, db, monkeypatch):
    class Unreachable:
        def cursor(self):
            raise OperationalError("connection to server failed: Connection refused")

    monkeypatch.setattr(health, "connection", Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["down"] == ["database"]
    assert body["database"] == "down" and body["redis"] == "ok"


def test_readyz_with_redis_frozen_answers_within_the_redis_timeouts(client, db, settings):
    with frozen_tcp_server() as port:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["redis"] == "down"
    assert elapsed < settings.REDIS_CONNECT_TIMEOUT + settings.REDIS_SOCKET_TIMEOUT + 1
