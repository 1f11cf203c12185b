"""The exactly-once protocol for amoCRM writes that are not idempotent (calls, tasks), written once.

amoCRM has no idempotency key for ``POST /api/v4/calls`` or ``/tasks``
(docs/architecture.md flow 4, «Exactly once»), so each such step of a delivery keeps a state
(``CallDelivery.Step``) and a remote id, and goes:

1. not wanted → ``not_needed``;
2. met in ``posting`` (an earlier POST got no clear answer: timeout, 5xx, a killed worker) →
   look it up in amoCRM first; found → ``done`` with its id, nothing is posted;
3. ``posting`` **committed** before the POST;
4. POST, ≤ 50 items a request, the requests of one step together; each id amoCRM returns is
   stored (``done``) before the next step's request, also when another request of the step
   failed;
5. a clear refusal of the whole request (429, 4xx) resets ``posting``; no answer leaves it.

A single item amoCRM refused fails its delivery with amoCRM's reason; "entity not found" means
the contact is gone from amoCRM: the delivery forgets it and retries (the contact step finds or
creates it again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext as _

from core.models import Organization
from crm.client import BATCH_SIZE, AmoClient, ItemResult
from crm.contacts import contact_index_forget
from crm.errors import AmoError
from crm.inflight import requests_in_flight
from integration.delivery.work import Work, flush, mark, store
from integration.models import CallDelivery

Step = CallDelivery.Step


@dataclass(frozen=True)
class Posting:
    """One kind of non-idempotent write, described for ``post_exactly_once``."""

    state_field: str  # the CallDelivery field holding the step's state
    id_field: str  # … and the one receiving amoCRM's id
    wanted: Callable[[Work], bool]
    # After an ambiguous failure: the id of what was posted for this item, if amoCRM has it.
    find_posted: Callable[[AmoClient, Work], int | None]
    post: Callable[[AmoClient, list[Work]], list[ItemResult]]  # in the order of the items
    refused: Callable[[str], str]  # the delivery's error, given amoCRM's reason for one item
    # Runs on the items about to be looked up or posted (e.g. store a task's due time).
    prepare: Callable[[list[Work]], None] = lambda items: None
    # Runs for each item amoCRM took (e.g. store where amoCRM put the call).
    posted: Callable[[Work, ItemResult], None] = lambda w, result: None

    def done(self, w: Work, remote_id: int | None) -> None:
        store(w.delivery, **{self.state_field: Step.DONE, self.id_field: remote_id})


def ambiguous(exc: AmoError) -> bool:
    """Might amoCRM have done the work although we got no answer? (429 is refused up front.)"""
    return exc.transient and not exc.rate_limited


def entity_not_found(error: str | None) -> bool:
    return "entity not found" in (error or "").lower()


def post_exactly_once(
    organization: Organization, client: AmoClient, work: list[Work], posting: Posting
) -> None:
    """Take ``work`` through ``posting``. Raises the AmoError of a whole-request failure."""

    def state(w: Work) -> str:
        return str(getattr(w.delivery, posting.state_field))

    for w in work:
        if not posting.wanted(w) and state(w) == Step.NONE:
            store(w.delivery, **{posting.state_field: Step.NOT_NEEDED})
    todo = [w for w in work if posting.wanted(w) and state(w) in (Step.NONE, Step.POSTING)]
    posting.prepare(todo)
    for w in todo:
        if state(w) == Step.POSTING and w.delivery.contact_id is not None:
            remote_id = posting.find_posted(client, w)
            if remote_id is not None:
                posting.done(w, remote_id)
    post = [w for w in todo if state(w) != Step.DONE]
    flush([w.delivery for w in work])
    if not post:
        return
    mark(post, **{posting.state_field: Step.POSTING})
    # amoCRM takes ≤ 50 items a request: the batches go out together (crm.inflight), and what
    # each one got back is recorded even when another failed.
    chunks = [post[start : start + BATCH_SIZE] for start in range(0, len(post), BATCH_SIZE)]
    failures: list[AmoError] = []
    crashes: list[Exception] = []
    for chunk, outcome in zip(
        chunks, requests_in_flight(lambda items: posting.post(client, items), chunks), strict=True
    ):
        if isinstance(outcome, AmoError):
            if not ambiguous(outcome):
                mark(chunk, **{posting.state_field: Step.NONE})
            failures.append(outcome)
        elif isinstance(outcome, Exception):
            crashes.append(outcome)  # not amoCRM's answer: the task fails, the lease retries
        else:
            _record(organization, chunk, outcome, posting)
    if crashes:
        raise crashes[0]
    if failures:
        # What stops the account (403, 402, revoked) outranks what only delays this round.
        raise min(failures, key=lambda exc: exc.transient)


def _record(
    organization: Organization,
    chunk: list[Work],
    results: list[ItemResult],
    posting: Posting,
) -> None:
    for w, result in zip(chunk, results, strict=True):
        if result.ok:
            posting.done(w, result.id)
            posting.posted(w, result)
        elif entity_not_found(result.error):
            if w.delivery.contact_id is not None:
                contact_index_forget(organization=organization, contact_id=w.delivery.contact_id)
            store(
                w.delivery,
                **{posting.state_field: Step.NONE},
                contact_id=None,
                contact_created=False,
            )
            w.transient = _("amoCRM не нашёл контакт звонка: %(e)s") % {"e": result.error}
        else:
            store(w.delivery, **{posting.state_field: Step.NONE})
            w.error = posting.refused(result.error or "")
