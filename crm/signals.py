"""Signals other apps connect to (crm never imports them): the integration layer drops the
Beeline subscription on disconnect, for instance."""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: organization_id, created (sent on commit after a successful install/re-authorization)
amo_installed = Signal()
# kwargs: organization_id (sent on commit after amoCRM's uninstall hook was accepted)
amo_disconnected = Signal()
# kwargs: organization_id, contact_ids (amoCRM said these contacts were added, changed, handed
# to another user, deleted or restored; receivers must re-read them through the API)
amo_contacts_changed = Signal()
