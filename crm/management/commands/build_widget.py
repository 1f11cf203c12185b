"""``python manage.py build_widget`` [contract]: the widget zip for upload to amoCRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from crm.widget_bundle import widget_zip_build


class Command(BaseCommand):
    help = "Build the amoCRM widget archive (manifest.json at the root, PUBLIC_URL baked in)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output-dir",
            default=str(Path(settings.BASE_DIR) / "dist"),
            help="where to write the zip (default: dist/)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.PUBLIC_URL.startswith("https://"):
            self.stderr.write(
                self.style.WARNING(
                    f"PUBLIC_URL is {settings.PUBLIC_URL}: amoCRM pages are https, so the widget "
                    "can only reach an https backend."
                )
            )
        target = widget_zip_build(output_dir=Path(options["output_dir"]))
        self.stdout.write(
            self.style.SUCCESS(f"Widget written to {target} for {settings.PUBLIC_URL}")
        )
