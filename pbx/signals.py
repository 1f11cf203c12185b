"""What pbx tells the rest of the system. pbx never imports the pipeline: the integration layer
connects receivers to these signals.

- ``call_ringing`` (sender=PbxCall; organization_id, call_id, leg_ids): sent after commit as soon
  as one or more legs of a customer call start ringing (for the incoming-call pop-up).
- ``call_finished`` (sender=PbxCall; organization_id, call_id): sent exactly once per call, after
  all its legs are released and the settle delay passed; claimed with a conditional UPDATE on
  ``PbxCall.handed_off_at``, so concurrent finalizers cannot both send it.

Receivers run in the sending worker; they should enqueue their own work rather than call out.
"""

from __future__ import annotations

from django.dispatch import Signal

call_ringing = Signal()
call_finished = Signal()
