"""`make demo`: migrate, then serve the portal with the sandbox mounted, printing the URLs."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Beetel demo: portal + sandbox on one machine."

    def handle(self, *args: Any, **options: Any) -> None:
        host = os.environ.get("DEMO_HOST", "127.0.0.1")
        port = os.environ.get("DEMO_PORT", "8000")
        call_command("migrate", interactive=False, verbosity=0)
        base = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS("\nBeetel demo is starting.\n")
            + f"  Portal:    {base}/\n"
            + f"  Health:    {base}/healthz\n"
            + f"  Admin:     {base}/admin/\n"
            + f"  Database:  {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}\n"
        )
        call_command("runserver", f"{host}:{port}", use_reloader=False)
