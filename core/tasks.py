"""Celery entry points of the ground floor."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from core import services


@shared_task
def audit_prune() -> int:
    return services.audit_prune(older_than=timezone.now() - settings.AUDIT_RETENTION)
