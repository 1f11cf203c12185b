from __future__ import annotations

from django.apps import AppConfig


class PbxConfig(AppConfig):
    name = "pbx"
    verbose_name = "Beeline"

    def ready(self) -> None:
        from pbx import tasks  # noqa: F401  (registers the task names core.task_queue uses)
