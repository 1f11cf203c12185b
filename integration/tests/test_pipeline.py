"""The pipeline end to end: Beeline simulator → our webhook → PbxCall → call_finished →
CallDelivery → the amoCRM emulator. Assertions are on what amoCRM ends up holding."""

from __future__ import annotations

import pytest

from integration.callbacks import callback_settings_update
from integration.models import CallDelivery, CallSettings
from sandbox.amocrm.services import contact_create

CLIENT = "+79031112233"


def known(world, phone=CLIENT, responsible=None):
    return contact_create(
        account=world.account,
        name="Клиент",
        responsible=responsible or world.account.users.order_by("id").first(),
        phones=[(phone, "WORK")],
    )


def test_inbound_answered_unknown_number_creates_contact_and_logs_call(world):
    sim = world.simulate(scenario="inbound_answered", external_phone=CLIENT)

    contact = world.account.contacts.get()
    assert contact.responsible_user_id == world.anna.pk
    assert {t.name for t in contact.tags.all()} == {"BeelineConnector"}
    call = world.account.calls.get()
    assert call.contact_id == contact.pk
    assert (call.direction, call.uniq, call.call_status) == ("inbound", sim.ext_tracking_id, 4)
    assert call.source == "Звонок Beeline"
    assert call.duration == 30
    assert call.responsible_user_id == world.anna.pk and call.created_by == world.anna.pk
    assert call.link.startswith("https://beetel.test/recordings/")
    assert not world.account.tasks.exists()
    delivery = world.delivery(sim.ext_tracking_id)
    assert delivery.status == CallDelivery.Status.DONE
    assert (delivery.contact_id, delivery.amo_call_id) == (contact.pk, call.pk)
    assert delivery.contact_created is True


# --- the seven settings -------------------------------------------------------------------

CASES = {
    # name: (scenario, inbound, answered)
    "in_answered": ("inbound_answered", True, True),
    "in_missed": ("inbound_missed", True, False),
    "out_answered": ("outbound_answered", False, True),
    "out_missed": ("outbound_no_answer", False, False),
}
SWITCHES = list(CallSettings.SWITCHES)


@pytest.mark.parametrize("switched_off", [None, *SWITCHES])
@pytest.mark.parametrize("is_known", [True, False], ids=["known", "unknown"])
@pytest.mark.parametrize("case", list(CASES))
def test_settings_change_exactly_what_the_manual_says(world, case, is_known, switched_off):
    scenario, inbound, answered = CASES[case]
    if switched_off:
        world.settings_set(**{switched_off: False})
    on = {name: name != switched_off for name in SWITCHES}
    notify = on["notify_incoming"] if inbound else on["notify_outgoing"]
    create = on["create_contact_incoming"] if inbound else on["create_contact_outgoing"]
    log = on["log_call_incoming"] if inbound else on["log_call_outgoing"]
    task = inbound and not answered and on["create_task_missed"]
    if is_known:
        existing = known(world)

    sim = world.simulate(scenario=scenario, external_phone=CLIENT)

    # 1/4: the pop-up while ringing, for the mapped manager of the ringing abonent.
    events = list(world.account.events.all())
    assert len(events) == (1 if notify else 0)
    if notify:
        assert events[0].users == [world.anna.pk] and events[0].phone_number == CLIENT
    # 2/5: a contact for an unknown number, with the tag and the manager as responsible.
    has_contact = is_known or create
    contacts = list(world.account.contacts.all())
    assert len(contacts) == (1 if has_contact else 0)
    if not is_known and create:
        assert {t.name for t in contacts[0].tags.all()} == {"BeelineConnector"}
        assert contacts[0].responsible_user_id == world.anna.pk
    if is_known:
        assert contacts == [existing] and not existing.tags.exists()
    # 3/6: the call log; unknown + creation off = nothing recorded at all.
    calls = list(world.account.calls.all())
    assert len(calls) == (1 if log and has_contact else 0)
    if calls:
        assert calls[0].direction == ("inbound" if inbound else "outbound")
        assert calls[0].call_status == (4 if answered else 6)
        assert bool(calls[0].link) is answered
    # 7: the missed-call task on the contact, for the manager it rang for.
    tasks = list(world.account.tasks.all())
    assert len(tasks) == (1 if task and has_contact else 0)
    if tasks:
        assert tasks[0].text == f"Перезвонить на номер {CLIENT}"
        assert tasks[0].entity_type == "contacts" and tasks[0].entity_id == contacts[0].pk
        assert tasks[0].responsible_user_id == world.anna.pk
        assert tasks[0].task_type_id == 1
    delivery = world.delivery(sim.ext_tracking_id)
    wrote = (not is_known and create) or calls or tasks
    expected = CallDelivery.Status.DONE if wrote else CallDelivery.Status.SKIPPED_BY_SETTING
    assert delivery.status == expected, delivery.skip_reason or delivery.last_error
    if expected == CallDelivery.Status.SKIPPED_BY_SETTING:
        assert delivery.skip_reason


# --- call_status / call_result and the task's due time -------------------------------------


@pytest.mark.parametrize(
    ("scenario", "status", "result"),
    [
        ("inbound_answered", 4, "Разговор состоялся"),
        ("inbound_missed", 6, "Пропущенный звонок"),
        ("outbound_no_answer", 6, "Не дозвонился"),
        ("outbound_busy", 7, "Номер занят"),
    ],
)
def test_call_status_and_result_follow_the_outcome(world, scenario, status, result):
    known(world)
    world.simulate(scenario=scenario, external_phone=CLIENT)
    call = world.account.calls.get()
    assert (call.call_status, call.call_result) == (status, result)


@pytest.mark.parametrize("minutes", [None, 45])
def test_missed_call_task_is_due_when_the_call_back_target_runs_out(world, minutes):
    """The task's due time is the call-back SLA's deadline (docs/callbacks.md); with working
    hours around the clock that is the missed call's start plus the target."""
    values = {"working_hours": [None] * 7}
    if minutes is not None:
        values["target_minutes"] = minutes
    callback_settings_update(organization=world.organization, values=values)
    sim = world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    started = world.call(sim.ext_tracking_id).started_at
    target = 60 * (15 if minutes is None else minutes)  # default: 15 minutes
    task = world.account.tasks.get()
    assert task.complete_till == int(started.timestamp() + target)


def test_a_backlog_queues_one_drain_until_it_starts(monkeypatch):
    from integration.delivery import queue

    queued: list[int] = []
    monkeypatch.setattr(queue, "task_enqueue", lambda name, org_id: queued.append(org_id))
    for _ in range(50):  # a thousand finished calls of one organization, in short
        queue.drain_request(organization_id=7)
    queue.drain_request(organization_id=8)
    assert queued == [7, 8]
    queue.drain_started(organization_id=7)  # the drain began: new work needs a new drain
    queue.drain_request(organization_id=7)
    assert queued == [7, 8, 7]
