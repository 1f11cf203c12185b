"""Signals other apps connect to (crm never imports them): the integration layer drops the
Beeline subscription on disconnect, for instance."""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: organization_id, created (sent on commit after a successful install/re-authorization)
amo_installed = Signal()
# kwargs: organization_id (sent on commit after amoCRM's uninstall hook was accepted)
amo_disconnected = Signal()
