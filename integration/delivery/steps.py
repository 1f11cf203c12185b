"""The three amoCRM steps of a batch of deliveries, in order: contacts, call log, missed-call task.

Each step takes the batch's active items and carries out their plans (``rules``), batched where
amoCRM accepts arrays (≤ 50 per request). Contacts go through crm's one contact service; calls
through the one exactly-once protocol (``posting``); tasks by the same protocol, grouped per
client number as call-back tracking decides (``integration/callbacks.py``). A step raises the
AmoError of a whole-request failure; a problem of one item is left on the item (``error`` /
``transient``).
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.translation import gettext as _

from core.models import Organization
from crm.client import AmoClient, ItemResult
from crm.contacts import ContactRequest, contacts_resolve
from crm.errors import AmoError
from integration.callbacks import callback_tasks_attach, callback_tasks_prepare
from integration.delivery import rules
from integration.delivery.posting import Posting, ambiguous, entity_not_found, post_exactly_once
from integration.delivery.work import Work, flush, mark, settle, store
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


def _task_posted(client: AmoClient, w: Work) -> int | None:
    # A task POST without a clear answer: our task on the contact, by its text and due time.
    assert w.delivery.contact_id is not None and w.plan.phone is not None
    base, due = rules.missed_task_text(w.plan.phone.e164), w.delivery.task_complete_till
    return next(
        (
            t.id
            for t in client.tasks_for_contact(w.delivery.contact_id)
            if t.text.startswith(base) and t.complete_till == due
        ),
        None,
    )


def _tasks_attach(organization: Organization, items: list[Work], task_id: int) -> None:
    callback_tasks_attach(
        organization=organization,
        call_ids=[w.delivery.pbx_call_id for w in items],
        task_id=task_id,
        responsible_user_id=items[0].task_user,
    )


def missed_call_task_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """«Перезвонить» for missed inbound calls (setting 7), as call-back tracking decides
    (docs/callbacks.md): the number's open task is updated (``PATCH``), or one task is posted per
    number, due at the SLA deadline. Posting follows the exactly-once protocol of ``posting``:
    ``posting`` committed before the POST, looked up in amoCRM when met again."""
    for w in work:
        if not w.plan.create_task and w.delivery.task_state == Step.NONE:
            store(w.delivery, task_state=Step.NOT_NEEDED)
    todo = [
        w
        for w in work
        if w.plan.create_task
        and w.plan.phone is not None
        and w.delivery.task_state in (Step.NONE, Step.POSTING)
    ]
    for w in todo:
        if w.delivery.task_state == Step.POSTING and w.delivery.contact_id is not None:
            task_id = _task_posted(client, w)
            if task_id is not None:
                store(w.delivery, task_state=Step.DONE, task_id=task_id)
                _tasks_attach(organization, [w], task_id)
    todo = [w for w in todo if w.delivery.task_state != Step.DONE]
    flush([w.delivery for w in work])
    if not todo:
        return
    plans = callback_tasks_prepare(
        organization=organization,
        client=client,
        calls=[(w.delivery.pbx_call_id, w.plan.phone.e164) for w in todo if w.plan.phone],
    )
    by_number: dict[str, list[Work]] = defaultdict(list)
    for w in todo:
        task = plans[w.delivery.pbx_call_id]
        if task.task_id is not None:  # the number's open task, updated
            store(
                w.delivery,
                task_state=Step.DONE,
                task_id=task.task_id,
                task_complete_till=task.complete_till,
            )
            callback_tasks_attach(
                organization=organization,
                call_ids=[w.delivery.pbx_call_id],
                task_id=task.task_id,
                responsible_user_id=None,
            )
        else:
            store(w.delivery, task_complete_till=task.complete_till)
            assert w.plan.phone is not None
            by_number[w.plan.phone.national].append(w)
    flush([w.delivery for w in work])
    if not by_number:
        return
    groups = list(by_number.values())
    drafts = [
        rules.task_draft(
            group[0].plan,
            contact_id=group[0].delivery.contact_id,
            due=plans[group[0].delivery.pbx_call_id].complete_till,
            user=group[0].task_user,
            text=plans[group[0].delivery.pbx_call_id].text,
        )
        for group in groups
    ]
    posting = [w for group in groups for w in group]
    mark(posting, task_state=Step.POSTING)
    try:
        ids = client.tasks_add(drafts)  # amoCRM takes or refuses the whole batch
    except AmoError as exc:
        if not ambiguous(exc):
            mark(posting, task_state=Step.NONE)
        raise
    for group, task_id in zip(groups, ids, strict=True):
        for w in group:
            store(w.delivery, task_state=Step.DONE, task_id=task_id)
        _tasks_attach(organization, group, task_id)


STEPS = (contacts_step, call_log_step, missed_call_task_step)
