from __future__ import annotations


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok_when_database_and_redis_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content


def test_readyz_names_redis_when_it_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]
    assert "redis" in response.json()["message"]
