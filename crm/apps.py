from __future__ import annotations

from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "amoCRM"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from crm import tasks  # noqa: F401  (registers the task names core.task_queue uses)
        from crm.cors import cors_allow_widget

        check_request_enabled.connect(cors_allow_widget, dispatch_uid="crm.cors_allow_widget")
