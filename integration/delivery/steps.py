"""The amoCRM steps of a batch of deliveries, in order: contacts, «Неразобранное», a lead for a
new client, call log, missed-call task.

Each step takes the batch's active items and carries out their plans (``rules``), batched where
amoCRM accepts arrays (≤ 50 per request). Contacts go through crm's one contact service; calls
through the one exactly-once protocol (``posting``); tasks by the same protocol, grouped per
client number as call-back tracking decides (``integration/callbacks.py``); the Unsorted entry
and the lead follow the same protocol by hand (their remote ids are not call/task ids). A step
raises the AmoError of a whole-request failure; a problem of one item is left on the item
(``error`` / ``transient``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.utils.translation import gettext as _

from core import metrics
from core.models import AuditEntry, Organization
from core.services import audit_record
from crm.client import AmoClient, ItemResult
from crm.contacts import ContactRequest, ContactResult, contacts_resolve
from crm.errors import AmoError, AmoPermanentError
from integration.callbacks import callback_tasks_attach, callback_tasks_prepare
from integration.delivery import rules
from integration.delivery.posting import Posting, ambiguous, entity_not_found, post_exactly_once
from integration.delivery.work import Work, flush, mark, settle, store
from integration.models import CallDelivery
from integration.routing import routing_contacts_changed

Status = CallDelivery.Status
Step = CallDelivery.Step


# --- 1. contacts --------------------------------------------------------------------------------


def contacts_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """Give every item its contact (index → search → one batched create); an item whose number
    amoCRM does not know and may not get a contact is skipped by setting. With «Неразобранное»
    chosen, an unknown inbound caller gets no contact: it goes to Unsorted (next step)."""
    work = [w for w in work if not w.to_unsorted]

    def wants_owner(w: Work) -> bool:
        return w.plan.wants_contact_owner and w.delivery.task_state != Step.DONE

    def may_create(w: Work) -> bool:
        # Unsorted first: a contact only once the account turned out to have it off.
        return w.plan.create_contact and not w.plan.unsorted

    _contacts_resolve(organization, work, wants_owner=wants_owner, may_create=may_create)
    unknown = [w for w in work if w.delivery.contact_id is None and not w.error]
    fallback = _unsorted_decide(organization, client, [w for w in unknown if w.plan.unsorted])
    if fallback:
        _contacts_resolve(organization, fallback, wants_owner=wants_owner, may_create=bool)
    created = [int(w.delivery.contact_id or 0) for w in work if w.delivery.contact_created]
    # «Звонок ответственному»: the new contacts' numbers get their routing rules.
    routing_contacts_changed(organization_id=organization.pk, contact_ids=created)
    for w in work:
        if w.delivery.contact_id is None and not w.error and not w.to_unsorted:
            settle(w.delivery, Status.SKIPPED_BY_SETTING, rules.no_contact_reason(w.plan))
            w.handled = True


def _contacts_resolve(
    organization: Organization,
    work: list[Work],
    *,
    wants_owner: Callable[[Work], bool],
    may_create: Callable[[Work], bool],
) -> None:
    asking = [
        (w, w.plan.phone)
        for w in work
        if w.plan.phone is not None  # always: a call without a number is skipped by the plan
        and (w.delivery.contact_id is None or wants_owner(w))
    ]
    requests = [
        ContactRequest(
            phone=phone,
            create=may_create(w) and w.delivery.contact_id is None,
            tags=w.plan.tags,
            responsible_user_id=w.plan.responsible,
            owner_wanted=wants_owner(w),
        )
        for w, phone in asking
    ]
    results: list[ContactResult] = (
        contacts_resolve(organization=organization, requests=requests) if requests else []
    )
    for (w, _phone), found in zip(asking, results, strict=True):
        if found.error:
            w.error = _("amoCRM не создал контакт: %(e)s") % {"e": found.error}
            continue
        if w.delivery.contact_id is None and found.contact_id is not None:
            store(w.delivery, contact_id=found.contact_id, contact_created=found.created)
        if wants_owner(w):
            w.task_user = rules.task_user_for(w.plan, contact_owner=found.owner_id)


def _unsorted_decide(
    organization: Organization, client: AmoClient, unknown: list[Work]
) -> list[Work]:
    """Unknown inbound callers with «Неразобранное» chosen go there — unless the account has
    Unsorted switched off: then they get a contact after all (returned), and Диагностика says
    so. (What ``…/unsorted/sip`` answers when it is off is a GUESS, docs/amocrm-api.md §7.3:
    the account is asked first.)"""
    if not unknown:
        return []
    if client.account().is_unsorted_on is not False:
        for w in unknown:
            w.to_unsorted = True
        return []
    for w in unknown:
        if rules.FLAG_UNSORTED_OFF not in w.delivery.flags:
            store(w.delivery, flags=[*w.delivery.flags, rules.FLAG_UNSORTED_OFF])
    audit_record(
        organization=organization,
        kind=rules.AUDIT_UNSORTED_OFF,
        level=AuditEntry.Level.WARNING,
        message=_(
            "В аккаунте amoCRM выключено «Неразобранное»: звонки с неизвестных номеров "
            "записаны в новые контакты (%(n)s)."
        )
        % {"n": len(unknown)},
    )
    return unknown


# --- «Неразобранное» (option) -------------------------------------------------------------------


def unsorted_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """One SIP Unsorted entry per call, exactly once: ``posting`` is committed before the POST,
    and a delivery met in ``posting`` again is looked up in Unsorted (by ``source_uid``) before
    anything is posted. Unsorted is the follow-up: no call log (amoCRM adds it when the entry
    is accepted) and no task."""
    mine = [w for w in work if w.to_unsorted]
    for w in mine:
        for field in ("call_state", "task_state"):
            if getattr(w.delivery, field) == Step.NONE:
                store(w.delivery, **{field: Step.NOT_NEEDED})
    todo = [w for w in mine if w.delivery.unsorted_state != Step.DONE]
    ambiguous_items = [w for w in todo if w.delivery.unsorted_state == Step.POSTING]
    for pipeline_id in {w.plan.unsorted_pipeline_id for w in ambiguous_items}:
        group = [w for w in ambiguous_items if w.plan.unsorted_pipeline_id == pipeline_id]
        found = client.unsorted_sip_find(
            source_uids=[w.call.ext_tracking_id for w in group], pipeline_id=pipeline_id
        )
        for w in group:
            if w.call.ext_tracking_id in found:
                uid = found[w.call.ext_tracking_id]
                store(w.delivery, unsorted_state=Step.DONE, unsorted_uid=uid)
    post = [w for w in todo if w.delivery.unsorted_state != Step.DONE]
    flush([w.delivery for w in work])
    if not post:
        return
    mark(post, unsorted_state=Step.POSTING)
    try:
        uids = _unsorted_post(client, post)
    except AmoError as exc:
        if not ambiguous(exc):
            mark(post, unsorted_state=Step.NONE)
        raise
    for w, answer in zip(post, uids, strict=True):
        if isinstance(answer, AmoPermanentError):
            store(w.delivery, unsorted_state=Step.NONE)
            reason = answer.message
            w.error = _("amoCRM не принял звонок в «Неразобранное»: %(e)s") % {"e": reason}
        else:
            store(w.delivery, unsorted_state=Step.DONE, unsorted_uid=answer)


def _unsorted_post(client: AmoClient, items: list[Work]) -> list[str | AmoPermanentError]:
    """Entry uids in the order of ``items``; amoCRM's refusal for an entry it would not take."""
    try:
        return list(client.unsorted_sip_add([rules.unsorted_entry(w.call, w.plan) for w in items]))
    except AmoPermanentError as exc:
        if len(items) == 1:
            return [exc]
    # A validation error in one entry rejects the batch (nothing is added): one by one.
    return [_unsorted_post(client, [w])[0] for w in items]


# --- a lead for a new client (option) -----------------------------------------------------------


def lead_step(organization: Organization, client: AmoClient, work: list[Work]) -> None:
    """A contact created for this call gets a lead in the chosen pipeline and stage (before the
    call log, so amoCRM logs the call on it: a contact's only open lead takes its calls). Once
    per call: after an unanswered POST, a lead found on the new contact is taken as ours. A
    lead amoCRM refuses (its pipeline or stage deleted since it was chosen) does not cost the
    call its log: the call goes on the contact, and Диагностика gets amoCRM's reason."""

    def wanted(w: Work) -> bool:
        return w.plan.lead and w.delivery.contact_created and w.delivery.contact_id is not None

    for w in work:
        if w.delivery.lead_state == Step.NONE and not wanted(w):
            store(w.delivery, lead_state=Step.NOT_NEEDED)
    todo = [w for w in work if wanted(w) and w.delivery.lead_state in (Step.NONE, Step.POSTING)]
    for w in todo:
        if w.delivery.lead_state == Step.POSTING:
            leads = client.contact_lead_ids(int(w.delivery.contact_id or 0))
            if leads:
                store(w.delivery, lead_state=Step.DONE, lead_id=max(leads))
    post = [w for w in todo if w.delivery.lead_state != Step.DONE]
    flush([w.delivery for w in work])
    if not post:
        return
    mark(post, lead_state=Step.POSTING)
    try:
        ids = client.leads_add(
            [rules.lead_draft(w.plan, contact_id=int(w.delivery.contact_id or 0)) for w in post]
        )
    except AmoPermanentError as exc:
        mark(post, lead_state=Step.NOT_NEEDED)
        for w in post:
            store(w.delivery, flags=[*w.delivery.flags, rules.FLAG_LEAD_REFUSED])
        audit_record(
            organization=organization,
            kind=rules.AUDIT_LEAD_REFUSED,
            level=AuditEntry.Level.WARNING,
            message=_("amoCRM не создал сделку для нового клиента: %(e)s") % {"e": exc.message},
            data={"count": len(post)},
        )
        return
    except AmoError as exc:
        if not ambiguous(exc):
            mark(post, lead_state=Step.NONE)
        raise
    for w, lead_id in zip(post, ids, strict=True):
        store(w.delivery, lead_state=Step.DONE, lead_id=lead_id)


# --- 2. the call log ----------------------------------------------------------------------------


MAX_LEADS_LOOKED_AT = 5


def _call_posted(client: AmoClient, w: Work) -> int | None:
    # /api/v4/calls has no GET: a logged call is a call note carrying our uniq, on the contact
    # or on the contact's lead (amoCRM puts a call on the contact's only open lead).
    assert w.delivery.contact_id is not None
    uniq = w.call.ext_tracking_id
    for note in client.contact_call_notes(w.delivery.contact_id):
        if note.uniq == uniq:
            _call_landed(w, "contacts", w.delivery.contact_id)
            return note.id
    for lead_id in client.contact_lead_ids(w.delivery.contact_id)[:MAX_LEADS_LOOKED_AT]:
        for note in client.lead_call_notes(lead_id):
            if note.uniq == uniq:
                _call_landed(w, "leads", lead_id)
                return note.id
    return None


def _call_landed(w: Work, entity_type: str, entity_id: int | None) -> None:
    """Where amoCRM put the call (the journal shows it): the contact, or its open lead."""
    store(w.delivery, call_entity_type=entity_type, call_entity_id=entity_id)
    metrics.released_to_amocrm_observe(released_at=w.call.ended_at, recovered=w.call.recovered)


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
    posted=lambda w, result: _call_landed(
        w, result.entity_type or "contacts", result.entity_id or w.delivery.contact_id
    ),
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


STEPS = (contacts_step, unsorted_step, lead_step, call_log_step, missed_call_task_step)
