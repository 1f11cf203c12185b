"""Signals of the ground floor, for the apps above it (core never imports them)."""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: organization. Sent inside the creating transaction: receivers add the rows a new
# organization starts with (integration: the default «Настройки звонков»).
organization_created = Signal()
