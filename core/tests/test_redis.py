from __future__ import annotations

import redis
from celery import shared_task
from django.core.cache import caches
from kombu.exceptions import OperationalError as KombuOperationalError

from core.redis import redis_client
from core.testing import call_timed, celery_broker_at, closed_port, frozen_tcp_server


def test_one_shared_client_with_the_timeouts_from_settings(settings):
    settings.REDIS_CONNECT_TIMEOUT, settings.REDIS_SOCKET_TIMEOUT = 0.5, 1.5
    client = redis_client()

    assert client is redis_client()
    options = client.connection_pool.connection_kwargs
    assert options["socket_connect_timeout"] == 0.5 and options["socket_timeout"] == 1.5
    assert client.ping()


def test_changed_timeouts_give_a_client_that_uses_them(settings):
    settings.REDIS_SOCKET_TIMEOUT = 0.25
    assert redis_client().connection_pool.connection_kwargs["socket_timeout"] == 0.25


# --- Redis frozen (accepts connections, never answers): every use fails within seconds -------


@shared_task(name="core.tests.publish_probe")
def publish_probe(number: int) -> None:
    """Never runs: only published."""


def test_the_shared_client_gives_up_on_a_frozen_redis(settings):
    with frozen_tcp_server() as port:
        timed = call_timed(lambda: redis_client(f"redis://127.0.0.1:{port}/0").ping(), limit=10)
    assert isinstance(timed.error, redis.TimeoutError)
    assert timed.seconds < settings.REDIS_CONNECT_TIMEOUT + settings.REDIS_SOCKET_TIMEOUT + 1


def test_the_cache_gives_up_on_a_frozen_redis(settings):
    with frozen_tcp_server() as port:
        settings.CACHES = {
            "default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}
        }
        cache = caches.create_connection("default")
        timed = call_timed(lambda: cache.get("anything"), limit=10)
    assert isinstance(timed.error, redis.RedisError)
    assert timed.seconds < settings.REDIS_CONNECT_TIMEOUT + settings.REDIS_SOCKET_TIMEOUT + 1


def test_publishing_a_task_gives_up_on_a_frozen_broker():
    """Kombu's Redis transport waits for ever by default; the broker's socket timeouts and the
    bounded publish retry policy make a publish (in a web request too) fail in seconds."""
    with frozen_tcp_server() as port, celery_broker_at(f"redis://127.0.0.1:{port}/0"):
        timed = call_timed(lambda: publish_probe.delay(1), limit=20)
    assert isinstance(timed.error, KombuOperationalError)
    assert timed.seconds < 8


def test_publishing_to_a_refusing_broker_fails_at_once():
    with celery_broker_at(f"redis://127.0.0.1:{closed_port()}/0"):
        timed = call_timed(lambda: publish_probe.delay(1), limit=10)
    assert isinstance(timed.error, KombuOperationalError)
    assert timed.seconds < 3
