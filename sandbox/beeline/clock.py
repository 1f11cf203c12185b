"""The emulator's one source of time, so tests can move it (monkeypatch ``clock.now``)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
