"""Pytest fixtures that plug the sandbox emulators into ``responses`` (see sandbox/routing.py).

Use ``sandbox_http`` in any test that makes outbound HTTP: amoCRM, Beeline and our own
PUBLIC_URL all resolve into this process; anything else raises ConnectionError (no network).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from django.conf import settings

from sandbox.routing import route_to_django


@pytest.fixture
def sandbox_http(db: None) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        route_to_django(rsps, settings.AMOCRM_API_BASE_URL, "/sandbox/amocrm")
        route_to_django(rsps, settings.BEELINE_API_URL, "/sandbox/beeline")
        route_to_django(rsps, settings.PUBLIC_URL, "")
        yield rsps
