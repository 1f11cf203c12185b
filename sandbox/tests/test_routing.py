from __future__ import annotations

import pytest
import requests
from django.conf import settings


def test_public_url_is_routed_into_this_process(sandbox_http):
    response = requests.get(f"{settings.PUBLIC_URL}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]


def test_other_hosts_are_unreachable(sandbox_http):
    with pytest.raises(requests.ConnectionError):
        requests.get("https://example.com/", timeout=5)
