from __future__ import annotations

from core.redis import redis_client


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
