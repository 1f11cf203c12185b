"""The Procfile as `make run` starts it, with production settings (the default: no
DJANGO_SETTINGS_MODULE) and the required variables: `release` prepares the static files, `web`
(gunicorn) serves a cabinet page with its CSS and JavaScript, and gunicorn's access log carries
no webhook secret or recording token."""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from tests.processes import free_port, honcho, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "beetel.example.com"
# What the load balancer sends: the public host, and that the client spoke HTTPS.
HEADERS = {"Host": HOST, "X-Forwarded-Proto": "https"}


def _answers(base: str) -> bool:
    """Whether the web process at ``base`` answers its liveness probe yet."""
    try:
        return requests.get(f"{base}/healthz", headers=HEADERS, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def production_env(tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    return {
        **{k: v for k, v in os.environ.items() if k in keep},
        # No DJANGO_SETTINGS_MODULE: production is what a forgotten variable gets.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "RECORDING_SIGNING_KEYS": secrets.token_urlsafe(32),
        "PUBLIC_URL": f"https://{HOST}",
        "AMOCRM_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
        "AMOCRM_CLIENT_SECRET": "client-secret-of-the-stack-test",
        "DATABASE_URL": (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "REDIS_URL": settings.REDIS_URL,
        "STATIC_ROOT": str(tmp_path / "staticfiles"),
        "WEB_CONCURRENCY": "2",
    }


def test_procfile_release_and_web_serve_the_cabinet_with_its_static_files(tmp_path: Path):
    env = production_env(tmp_path)
    release = honcho("release", env, tmp_path / "release.log")
    assert release.wait(300) == 0, (tmp_path / "release.log").read_text()[-3000:]
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()  # hashed manifest

    port = free_port()
    log = tmp_path / "web.log"
    web = honcho("web", env, log, port=port)
    base = f"http://127.0.0.1:{port}"
    headers = HEADERS

    try:
        wait_for("gunicorn to answer", lambda: _answers(base), 60)
        page = requests.get(f"{base}/cabinet/login", headers=headers, timeout=10)
        assert page.status_code == 200
        assert "Вход в личный кабинет" in page.text
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")

        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
        kinds = {
            ".css": "text/css",
            ".js": "text/javascript",
            ".svg": "image/svg+xml",  # the favicon
        }
        assert {Path(a).suffix for a in assets} >= {".css", ".js"}, assets
        for asset in assets:
            # Hashed names (cache-busting manifest), served by WhiteNoise from STATIC_ROOT.
            assert re.search(r"\.[0-9a-f]{12}\.(css|js|svg)$", asset), asset
            response = requests.get(f"{base}{asset}", headers=headers, timeout=10)
            assert response.status_code == 200, asset
            assert response.headers["Content-Type"].startswith(kinds[Path(asset).suffix])
            assert len(response.content) > 100
            assert "max-age" in response.headers.get("Cache-Control", "")
        htmx = next(a for a in assets if "htmx" in a)
        assert "htmx" in requests.get(f"{base}{htmx}", headers=headers, timeout=10).text

        # Secrets in paths never reach gunicorn's access log.
        webhook_secret, recording_token = secrets.token_urlsafe(32), secrets.token_urlsafe(40)
        requests.post(
            f"{base}/beeline/events/{webhook_secret}", data="<x/>", headers=headers, timeout=10
        )
        requests.get(f"{base}/recordings/{recording_token}", headers=headers, timeout=10)
        requests.get(
            f"{base}/cabinet/login?access_token={webhook_secret}", headers=headers, timeout=10
        )
        wait_for("the access log", lambda: log.read_text().count("/recordings/") >= 1, 10)
    finally:
        stop(web)
    text = log.read_text()
    assert "/static/" in text  # the access log is on
    assert "/beeline/events/[redacted]" in text and "/recordings/[redacted]" in text
    assert webhook_secret not in text
    assert recording_token not in text


def test_a_client_that_never_closes_does_not_stall_the_web_process(tmp_path: Path):
    """A recording player asks for ``Connection: close`` and may still be reading when the server
    is done writing. Closing that connection must not hold up the process's other requests:
    gunicorn 26+ drains such a connection for up to 2 s on the threaded worker's event loop,
    which stalled Beeline's webhook behind slow players (hence the pin in pyproject.toml)."""
    env = {**production_env(tmp_path), "WEB_CONCURRENCY": "1"}
    port = free_port()
    web = honcho("web", env, tmp_path / "web.log", port=port)
    base = f"http://127.0.0.1:{port}"
    headers = HEADERS

    lingering: list[socket.socket] = []
    try:
        wait_for("gunicorn to answer", lambda: _answers(base), 60)
        slowest = 0.0
        for _ in range(3):
            # The answer is written and the server closes; this client reads nothing, never
            # closes, and so never sends the FIN a lingering close waits for.
            player = socket.create_connection(("127.0.0.1", port))
            lingering.append(player)
            player.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-Proto: https\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            time.sleep(0.2)  # the server has answered and is closing
            started = time.monotonic()
            assert requests.get(f"{base}/healthz", headers=headers, timeout=10).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 0.5, f"another request waited {slowest:.2f} s behind a closing client"
    finally:
        for player in lingering:
            player.close()
        stop(web)
