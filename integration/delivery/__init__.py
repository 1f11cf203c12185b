"""Call delivery: every finished PBX call into amoCRM, per the seven settings, exactly once.

``call_finished`` → ``queue.delivery_enqueue`` (one ``CallDelivery`` per call) →
``drain.deliveries_drain`` for the organization, which claims due deliveries batch after batch
and takes each batch (``batch``) through the steps (``steps``: contacts, call log, missed-call
task) per the plan of each call (``rules``); ``outcomes`` settles what amoCRM's answers leave.

The modules, one job each (docs/architecture.md flow 4):

- ``rules`` — pure: given a finished call and the settings, what amoCRM should get, and why not;
- ``steps`` — the three amoCRM steps; contacts through crm's batched contact service,
  calls and tasks through ``posting``, the one exactly-once protocol;
- ``work`` — a claimed delivery in a batch and the writes it owes the database;
- ``batch`` — one batch: load, plan, steps, outcomes; ``outcomes`` — pause, retry, fail, done;
- ``queue`` — the rows' states: enqueue, claim and lease, pause and resume, the beat's sweeps,
  backoff and giving up; ``drain`` — one bounded, single-flight drain per organization;
- ``operations`` — what people do: «Повторить» (cabinet journal, admin).
"""
