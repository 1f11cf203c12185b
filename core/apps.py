from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """The ground floor every other app builds on; it imports none of them."""

    name = "core"
    label = "core"
    verbose_name = _("Организации")

    def ready(self) -> None:
        # Registers the tasks under their names for core.task_queue (web processes included).
        from core import tasks  # noqa: F401
