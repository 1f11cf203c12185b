"""The delivery rules alone: no database, no HTTP. Every switch × direction × known/unknown
number × answered/missed, checked against the manual's table (docs/architecture.md «The seven
call settings»), then responsibility, flags, tags and the drafts amoCRM receives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.phones import phone_parse
from integration.delivery import rules
from integration.delivery.rules import FinishedCall, Manager
from integration.models import CallDelivery, CallSettings

Status, Step = CallDelivery.Status, CallDelivery.Step
SWITCHES = list(CallSettings.SWITCHES)
ANNA, BORIS, OLEG = 11, 12, 13  # abonents
ANNA_USER, BORIS_USER = 101, 102  # their amoCRM users (Олег: «Нет»)
MANAGERS = {ANNA: Manager(ANNA_USER), BORIS: Manager(BORIS_USER), OLEG: Manager(None)}
STARTED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LINK = "https://beetel.test/recordings/token"


def switches(**values: bool) -> CallSettings:
    return CallSettings(**values)  # never saved


def finished(
    *, inbound: bool = True, answered: bool = True, outcome: str | None = None, **kwargs
) -> FinishedCall:
    values = {
        "ext_tracking_id": "track-1",
        "inbound": inbound,
        "outcome": outcome if outcome is not None else ("answered" if answered else "missed"),
        "phone": phone_parse("+79031112233"),
        "abonent_id": ANNA,
        "leg_abonent_ids": (ANNA,),
        "talk_seconds": 30 if answered else 0,
        "started_at": STARTED,
        "recording_url": LINK if answered else None,
    }
    return FinishedCall(**(values | kwargs))


@pytest.mark.parametrize("switched_off", [None, *SWITCHES])
@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
@pytest.mark.parametrize("inbound", [True, False], ids=["inbound", "outbound"])
@pytest.mark.parametrize("answered", [True, False], ids=["answered", "missed"])
def test_each_switch_changes_exactly_what_the_manual_says(switched_off, known, inbound, answered):
    on = {name: name != switched_off for name in SWITCHES}
    create = on["create_contact_incoming" if inbound else "create_contact_outgoing"]
    log = on["log_call_incoming" if inbound else "log_call_outgoing"]
    task = inbound and not answered and on["create_task_missed"]
    settings = switches(**on)
    call = finished(inbound=inbound, answered=answered)

    plan = rules.plan(call, settings, MANAGERS)

    # 1/4: the pop-up while ringing.
    assert (
        rules.pop_up_wanted(settings, inbound=inbound)
        is on["notify_incoming" if inbound else "notify_outgoing"]
    )
    assert plan.skip_reason == ""  # one switch off always leaves something to do
    assert (plan.create_contact, plan.log_call, plan.create_task) == (create, log, task)
    assert plan.responsible == ANNA_USER and plan.task_user == ANNA_USER
    # 2/5: an unknown number without a new contact is not recorded at all, and says why.
    if not known and not create:
        reason = rules.no_contact_reason(plan)
        label = "Создание контакта при " + ("входящих" if inbound else "исходящих")
        assert label in reason and "звонок не записан" in reason
        return
    # 3/6 and 7: what was written decides between done and skipped by setting.
    status, reason = rules.outcome(
        plan,
        contact_created=not known,
        call_state=Step.DONE if log else Step.NOT_NEEDED,
        task_state=Step.DONE if task else Step.NOT_NEEDED,
    )
    wrote = (not known) or log or task
    assert status == (Status.DONE if wrote else Status.SKIPPED_BY_SETTING)
    if not wrote:
        assert ("Добавление звонка при " + ("входящих" if inbound else "исходящих")) in reason
    else:
        assert reason == ""


@pytest.mark.parametrize("inbound", [True, False], ids=["inbound", "outbound"])
def test_nothing_switched_on_for_the_direction_skips_the_call(inbound):
    direction = "incoming" if inbound else "outgoing"
    settings = switches(
        **{f"create_contact_{direction}": False, f"log_call_{direction}": False},
        create_task_missed=False,
    )

    plan = rules.plan(finished(inbound=inbound, answered=False), settings, MANAGERS)

    assert "выключены" in plan.skip_reason


def test_a_hidden_number_skips_the_call():
    plan = rules.plan(finished(phone=None), switches(), MANAGERS)

    assert plan.skip_reason == "Номер клиента скрыт или не распознан."


def test_a_call_that_never_connected_is_logged_as_missed_but_gets_no_task():
    call = finished(answered=False, outcome="")
    plan = rules.plan(call, switches(), MANAGERS)

    assert not plan.create_task
    assert rules.call_draft(call, plan).call_status == 6


# --- responsibility and flags ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("abonent", "managers", "responsible", "flags"),
    [
        (ANNA, MANAGERS, ANNA_USER, ()),
        (None, MANAGERS, None, ("no_abonent",)),
        (OLEG, MANAGERS, None, ("unmapped_abonent",)),
        (99, MANAGERS, None, ("unmapped_abonent",)),
        (ANNA, {ANNA: Manager(ANNA_USER, enabled=False)}, None, ("abonent_disabled",)),
    ],
    ids=["mapped", "no-abonent", "none-chosen", "not-in-table", "switched-off"],
)
def test_responsible_is_the_mapped_manager_else_a_flag(abonent, managers, responsible, flags):
    plan = rules.plan(finished(abonent_id=abonent), switches(), managers)

    assert plan.responsible == responsible
    assert plan.flags == flags
    assert rules.call_draft(finished(), plan).responsible_user_id == responsible


def test_a_recovered_call_is_flagged():
    plan = rules.plan(finished(recovered=True), switches(), MANAGERS)

    assert plan.flags == ("recovered",)


def test_group_call_through_multichannel_number_is_tagged_inbound_only():
    inbound = rules.plan(finished(multichannel_name="Отдел продаж"), switches(), MANAGERS)
    outbound = rules.plan(
        finished(inbound=False, multichannel_name="Отдел продаж"), switches(), MANAGERS
    )

    assert inbound.tags == ("BeelineConnector", "Отдел продаж") and inbound.group
    assert outbound.tags == ("BeelineConnector",) and outbound.group


def test_unnamed_multichannel_number_is_a_group_call_without_a_digit_tag():
    """Until the admin names the number on «Организация» a new contact gets no tag of bare
    digits (it would stay on the contact for good)."""
    plan = rules.plan(finished(multichannel_name=""), switches(), MANAGERS)

    assert plan.tags == ("BeelineConnector",) and plan.group


def test_group_missed_call_task_goes_to_the_responsible_manager():
    call = finished(answered=False, abonent_id=BORIS, leg_abonent_ids=(ANNA, BORIS))

    plan = rules.plan(call, switches(), MANAGERS)

    assert plan.group and plan.wants_contact_owner
    assert plan.task_user == BORIS_USER


def test_group_missed_call_task_goes_to_the_first_mapped_manager_rung_otherwise():
    call = finished(answered=False, abonent_id=None, leg_abonent_ids=(OLEG, BORIS, ANNA))

    plan = rules.plan(call, switches(), MANAGERS)

    assert plan.responsible is None
    assert plan.task_user == BORIS_USER  # Олег has no manager


def test_group_missed_call_task_goes_to_the_contacts_responsible_when_mapped():
    call = finished(answered=False, abonent_id=None, leg_abonent_ids=(ANNA, BORIS))
    plan = rules.plan(call, switches(), MANAGERS)

    assert rules.task_user_for(plan, contact_owner=BORIS_USER) == BORIS_USER
    assert rules.task_user_for(plan, contact_owner=555) == ANNA_USER  # not a manager
    assert rules.task_user_for(plan, contact_owner=None) == ANNA_USER


def test_group_answered_call_has_no_task_user_and_ignores_the_contacts_owner():
    call = finished(abonent_id=BORIS, leg_abonent_ids=(ANNA, BORIS))
    plan = rules.plan(call, switches(), MANAGERS)

    assert not plan.wants_contact_owner and plan.task_user is None
    assert rules.task_user_for(plan, contact_owner=ANNA_USER) is None


def test_direct_missed_call_task_ignores_the_contacts_owner():
    plan = rules.plan(finished(answered=False), switches(), MANAGERS)

    assert not plan.group
    assert rules.task_user_for(plan, contact_owner=BORIS_USER) == ANNA_USER


# --- what amoCRM receives -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("inbound", "outcome", "status", "result"),
    [
        (True, "answered", 4, "Разговор состоялся"),
        (True, "missed", 6, "Пропущенный звонок"),
        (False, "missed", 6, "Не дозвонился"),
        (False, "busy", 7, "Номер занят"),
        (True, "failed", 5, "Звонок не удался"),
    ],
)
def test_call_status_and_result_follow_the_outcome(inbound, outcome, status, result):
    call = finished(inbound=inbound, outcome=outcome, answered=outcome == "answered")

    draft = rules.call_draft(call, rules.plan(call, switches(), MANAGERS))

    assert (draft.call_status, draft.call_result) == (status, result)


def test_the_call_log_entry():
    call = finished()

    draft = rules.call_draft(call, rules.plan(call, switches(), MANAGERS))

    assert draft.direction == "inbound" and draft.phone == "+79031112233"
    assert (draft.uniq, draft.duration, draft.link) == ("track-1", 30, LINK)
    assert draft.call_responsible == draft.created_by == ANNA_USER
    assert draft.created_at == int(STARTED.timestamp())


def test_only_an_answered_call_links_its_recording():
    call = finished(inbound=False, outcome="busy", recording_url=LINK)

    assert rules.call_draft(call, rules.plan(call, switches(), MANAGERS)).link is None


def test_the_missed_call_task():
    plan = rules.plan(finished(answered=False), switches(), MANAGERS)
    due = int(STARTED.timestamp()) + 900  # the call-back SLA's deadline (docs/callbacks.md)

    draft = rules.task_draft(plan, contact_id=7, due=due, user=plan.task_user)
    assert draft.text == "Перезвонить на номер +79031112233" == rules.task_text(plan)
    assert draft.complete_till == due
    assert (draft.entity_type, draft.entity_id, draft.task_type_id) == ("contacts", 7, 1)
    assert draft.responsible_user_id == ANNA_USER
    # Several missed calls of the number: call-back tracking gives the text.
    counted = rules.task_draft(plan, contact_id=7, due=due, user=None, text="… (2)")
    assert counted.text == "… (2)"
