"""Cabinet housekeeping run by Celery beat."""

from __future__ import annotations

from importlib import import_module

from celery import shared_task
from django.conf import settings


@shared_task
def sessions_clear_expired() -> None:
    """What ``manage.py clearsessions`` does: drop sessions past their expiry (beat schedule)."""
    engine = import_module(settings.SESSION_ENGINE)
    engine.SessionStore.clear_expired()
