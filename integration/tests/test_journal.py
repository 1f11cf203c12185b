"""The call journal and the Dashboard counters (integration.selectors) for the cabinet."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integration.selectors import call_journal, call_stats

CLIENT = "+79031112233"
OTHER = "+79035556677"


def test_journal_shows_every_call_with_its_outcome_in_amocrm(world, outsider):
    world.settings_set(create_contact_incoming=False)
    answered = world.simulate(scenario="inbound_answered", external_phone=CLIENT)  # skipped
    world.settings_set(create_contact_incoming=True)
    missed = world.simulate(scenario="inbound_missed", external_phone=OTHER)
    out = world.simulate(
        scenario="outbound_answered", abonent_phone="9161110002", external_phone=OTHER
    )

    page = call_journal(organization=world.organization)

    assert page.total == 3
    rows = {row.call_id: row for row in page.rows}
    first = rows[world.call(answered.ext_tracking_id).pk]
    assert first.delivery_status == "skipped_by_setting" and first.delivery_reason
    assert first.recording_url and first.outcome == "answered"
    second = rows[world.call(missed.ext_tracking_id).pk]
    assert second.delivery_status == "done" and second.manager_name == world.anna.name
    assert second.contact_url.endswith(f"/contacts/detail/{world.account.contacts.get().pk}")
    third = rows[world.call(out.ext_tracking_id).pk]
    assert third.direction == "out" and third.manager_id == world.boris.pk

    assert call_journal(organization=outsider).total == 0


def test_journal_filters_and_pages_in_constant_queries(world):
    for index in range(3):
        world.simulate(scenario="inbound_missed", external_phone=f"+7903555000{index}")
    world.simulate(scenario="outbound_answered", abonent_phone="9161110002", external_phone=CLIENT)
    org = world.organization
    today = timezone.localdate()

    assert call_journal(organization=org, direction="out").total == 1
    assert call_journal(organization=org, outcome="missed").total == 3
    assert call_journal(organization=org, outcome="delivered").total == 4
    assert call_journal(organization=org, outcome="delivery_failed").total == 0
    assert call_journal(organization=org, manager=world.boris.pk).total == 1
    assert call_journal(organization=org, number="8 (903) 555-00-01").total == 1
    assert call_journal(organization=org, date_from=today, date_to=today).total == 4
    assert call_journal(organization=org, date_to=today - timedelta(days=1)).total == 0
    second_page = call_journal(organization=org, page=2, per_page=3)
    assert len(second_page.rows) == 1 and second_page.num_pages == 2
    assert second_page.has_previous and not second_page.has_next

    with CaptureQueriesContext(connection) as few:
        call_journal(organization=org, per_page=1)
    with CaptureQueriesContext(connection) as many:
        call_journal(organization=org, per_page=50)
    assert len(few) == len(many) <= 3


def test_call_stats_counts_directions_answers_and_delivery(world, outsider):
    world.settings_set(create_contact_outgoing=False)
    world.simulate(scenario="inbound_answered", external_phone=CLIENT)
    world.simulate(scenario="inbound_missed", external_phone=CLIENT)
    world.simulate(scenario="outbound_no_answer", external_phone=OTHER)  # unknown, skipped

    stats = call_stats(organization=world.organization, since=timezone.now() - timedelta(days=7))

    assert (stats.inbound, stats.outbound, stats.answered, stats.missed) == (2, 1, 1, 2)
    assert (stats.delivered, stats.skipped, stats.failed, stats.queued) == (2, 1, 0, 0)
    assert sum(day.inbound + day.outbound for day in stats.days) == 3
    empty = call_stats(organization=outsider, since=timezone.now() - timedelta(days=7))
    assert empty.inbound == 0 and empty.days == []


def test_journal_counts_up_to_a_cap_and_still_pages(org, outsider, monkeypatch):
    import uuid

    from core.tenancy import organization_scope as scope
    from integration import selectors
    from pbx.models import PbxCall

    now = timezone.now()
    for owner, count in ((org, 5), (outsider, 4)):
        with scope(owner):
            PbxCall.objects.bulk_create(
                [
                    PbxCall(organization=owner, ext_tracking_id=str(uuid.uuid4()),
                            direction=PbxCall.Direction.IN, status=PbxCall.Status.FINISHED,
                            outcome=PbxCall.Outcome.MISSED, started_at=now - timedelta(minutes=n))
                    for n in range(count)
                ]
            )  # fmt: skip
    monkeypatch.setattr(selectors, "JOURNAL_COUNT_CAP", 3)
    first = call_journal(organization=org, per_page=2)
    assert (first.total, first.total_capped, first.has_next, len(first.rows)) == (3, True, True, 2)
    last = call_journal(organization=org, per_page=2, page=3)
    assert len(last.rows) == 1 and not last.has_next and last.has_previous
    monkeypatch.setattr(selectors, "JOURNAL_COUNT_CAP", 10)
    exact = call_journal(organization=org, per_page=2)
    assert (exact.total, exact.total_capped, exact.num_pages) == (5, False, 3)
    today = timezone.localdate()
    assert call_journal(organization=org, date_from=today, date_to=today).total <= 5
