"""Fire one simulated Beeline call from a script or a benchmark.

    python manage.py sandbox_call --token T --scenario inbound_answered \
        --abonent 9161110001 --phone +79031234567 [--via +74950000001] [--group 201,202]
        [--duplicate] [--reorder] [--drop] [--talk 30]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.beeline import selectors
from sandbox.beeline.errors import PortalError
from sandbox.beeline.services import SCENARIOS, call_simulate


class Command(BaseCommand):
    help = "Simulate a call on a sandbox Beeline PBX and deliver its XSI events."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token", required=True, help="the PBX's API token")
        parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
        parser.add_argument("--abonent", required=True, help="abonent phone, userId or extension")
        parser.add_argument("--phone", required=True, help="the client's number")
        parser.add_argument("--via", default=None, help="the company number dialled")
        parser.add_argument("--group", default="", help="comma-separated abonents to ring")
        parser.add_argument("--talk", type=int, default=30, help="talk time, seconds")
        parser.add_argument("--duplicate", action="store_true")
        parser.add_argument("--reorder", action="store_true")
        parser.add_argument("--drop", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        pbx = selectors.pbx_by_token(token=options["token"])
        if pbx is None:
            raise CommandError("No sandbox PBX has this token.")
        group = [item.strip() for item in options["group"].split(",") if item.strip()]
        try:
            call = call_simulate(
                pbx=pbx,
                scenario=options["scenario"],
                abonent_phone=options["abonent"],
                external_phone=options["phone"],
                via_number=options["via"],
                group=group or None,
                duplicate=options["duplicate"],
                reorder=options["reorder"],
                drop=options["drop"],
                talk_seconds=options["talk"],
            )
        except PortalError as error:
            raise CommandError(error.description) from error
        self.stdout.write(f"extTrackingId {call.ext_tracking_id}")
        for delivery in call.deliveries:
            self.stdout.write(
                f"  {delivery.event_type:<30} {delivery.status_code or delivery.error}"
            )
        if not call.deliveries:
            reason = "dropped" if options["drop"] else "no active subscription"
            self.stdout.write(f"  no events delivered ({reason})")
