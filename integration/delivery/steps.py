"""The three amoCRM steps of a batch of deliveries, in order: contacts, call log, missed-call task.

Each step takes the batch's active items and carries out their plans (``rules``), batched where
amoCRM accepts arrays (≤ 50 per request). Contacts go through crm's one contact service; calls
and tasks through the one exactly-once protocol (``posting``). A step raises the AmoError of a
whole-request failure; a problem of one item is left on the item (``error`` / ``transient``).
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import Organization
from crm.client import AmoClient, ItemResult
from crm.contacts import ContactRequest, contacts_resolve
from integration.delivery import rules
from integration.delivery.posting import Posting, entity_not_found, post_exactly_once
from integration.delivery.work import Work, settle, store
from integration.models import CallDelivery

Status = CallDelivery.Status
Step = CallDelivery.Step


# --- 1. contacts --------------------------------------------------------------------------------


def contacts_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """Give every item its contact (index → search → one batched create); an item whose number
    amoCRM does not know and may not get a contact is skipped by setting."""

    def wants_owner(w: Work) -> bool:
        return w.plan.wants_contact_owner and w.delivery.task_state != Step.DONE

    asking = [
        (w, w.plan.phone)
        for w in work
        if w.plan.phone is not None  # always: a call without a number is skipped by the plan
        and (w.delivery.contact_id is None or wants_owner(w))
    ]
    requests = [
        ContactRequest(
            phone=phone,
            create=w.plan.create_contact and w.delivery.contact_id is None,
            tags=w.plan.tags,
            responsible_user_id=w.plan.responsible,
            owner_wanted=wants_owner(w),
        )
        for w, phone in asking
    ]
    results = contacts_resolve(organization=organization, requests=requests) if requests else []
    for (w, _phone), found in zip(asking, results, strict=True):
        if found.error:
            w.error = _("amoCRM не создал контакт: %(e)s") % {"e": found.error}
            continue
        if w.delivery.contact_id is None and found.contact_id is not None:
            store(w.delivery, contact_id=found.contact_id, contact_created=found.created)
        if wants_owner(w):
            w.task_user = rules.task_user_for(w.plan, contact_owner=found.owner_id)
    for w in work:
        if w.delivery.contact_id is None and not w.error:
            settle(w.delivery, Status.SKIPPED_BY_SETTING, rules.no_contact_reason(w.plan))
            w.handled = True


# --- 2. the call log ----------------------------------------------------------------------------


def _call_posted(client: AmoClient, w: Work) -> int | None:
    # /api/v4/calls has no GET: a logged call is a call note on the contact, carrying our uniq.
    assert w.delivery.contact_id is not None
    uniq = w.call.ext_tracking_id
    return next(
        (n.id for n in client.contact_call_notes(w.delivery.contact_id) if n.uniq == uniq), None
    )


def _calls_post(client: AmoClient, items: list[Work]) -> list[ItemResult]:
    results = client.calls_add([rules.call_draft(w.call, w.plan) for w in items])
    if (
        len(items) > 1
        and all(not r.ok for r in results)
        and not all(entity_not_found(r.error) for r in results)
    ):
        # A validation error in one item rejects the whole batch (nothing is added): one by
        # one, so a single bad call does not fail its 49 neighbours.
        return [_calls_post(client, [w])[0] for w in items]
    return results


CALL_LOG = Posting(
    state_field="call_state",
    id_field="amo_call_id",
    wanted=lambda w: w.plan.log_call,
    find_posted=_call_posted,
    post=_calls_post,
    refused=lambda reason: _("amoCRM не принял звонок: %(e)s") % {"e": reason},
)


def call_log_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """``POST /api/v4/calls`` for the items whose direction's setting wants the call logged."""
    post_exactly_once(organization, client, work, CALL_LOG)


# --- 3. the missed-call task --------------------------------------------------------------------


def _task_due_stored(items: list[Work]) -> None:
    # Stored before the POST: the "already posted?" lookup matches on text and due time.
    now = timezone.now()
    for w in items:
        if w.delivery.task_complete_till is None:
            store(w.delivery, task_complete_till=rules.task_due(w.plan, now=now))


def _task_posted(client: AmoClient, w: Work) -> int | None:
    assert w.delivery.contact_id is not None
    text, due = rules.task_text(w.plan), w.delivery.task_complete_till
    return next(
        (
            t.id
            for t in client.tasks_for_contact(w.delivery.contact_id)
            if t.text == text and t.complete_till == due
        ),
        None,
    )


def _tasks_post(client: AmoClient, items: list[Work]) -> list[ItemResult]:
    drafts = [
        rules.task_draft(
            w.plan,
            contact_id=w.delivery.contact_id,
            due=int(w.delivery.task_complete_till or 0),
            user=w.task_user,
        )
        for w in items
    ]
    # amoCRM accepts or refuses the whole batch of tasks (a refusal raises).
    return [ItemResult(request_id=str(i), id=id_) for i, id_ in enumerate(client.tasks_add(drafts))]


MISSED_CALL_TASK = Posting(
    state_field="task_state",
    id_field="task_id",
    wanted=lambda w: w.plan.create_task,
    find_posted=_task_posted,
    post=_tasks_post,
    refused=lambda reason: _("amoCRM не принял задачу: %(e)s") % {"e": reason},
    prepare=_task_due_stored,
)


def missed_call_task_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """``POST /api/v4/tasks`` «Перезвонить на номер …» for missed inbound calls (setting 7)."""
    post_exactly_once(organization, client, work, MISSED_CALL_TASK)


STEPS = (contacts_step, call_log_step, missed_call_task_step)
