"""Fixtures of the join: ``world`` is an organization wired to both emulators (see
integration.testing.world_make)."""

from __future__ import annotations

from typing import Any

import pytest

from integration.testing import World, world_make


@pytest.fixture
def world(beeline_pbx: Any, outsider: Any, settings: Any, monkeypatch: Any) -> World:
    settings.PBX_HTTP_RETRY_DELAYS = (0, 0)
    # amoCRM's own 429 backoff sleeps up to seconds; the emulator's 429s come at once here.
    monkeypatch.setattr("crm.client.backoff_seconds", lambda *args, **kwargs: 0.0)
    return world_make(pbx=beeline_pbx)
