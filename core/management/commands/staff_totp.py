"""``python manage.py staff_totp <username>``: give a support staff member a TOTP device.

With STAFF_REQUIRE_2FA on (the production default) the admin asks for a one-time code, so the
first device cannot be added through the admin itself. This prints the ``otpauth://`` URL to
open (or turn into a QR code) in an authenticator app; the device is confirmed at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_otp.plugins.otp_totp.models import TOTPDevice


class Command(BaseCommand):
    help = "Create a TOTP two-factor device for a staff user and print its otpauth:// URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="device name")
        parser.add_argument(
            "--replace", action="store_true", help="delete the user's existing TOTP devices"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        if not user.is_staff:
            raise CommandError(f"{user.get_username()} is not staff.")
        existing = TOTPDevice.objects.filter(user=user)
        if existing.exists() and not options["replace"]:
            raise CommandError(
                f"{user.get_username()} already has a TOTP device (use --replace to swap it)."
            )
        existing.delete()
        device = TOTPDevice.objects.create(user=user, name=options["name"], confirmed=True)
        self.stdout.write(
            "Open this URL in an authenticator app (it is a secret: do not share or log it):"
        )
        self.stdout.write(device.config_url)
