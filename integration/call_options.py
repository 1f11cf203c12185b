"""The options of «Настройки звонков» beyond the manual's seven switches (docs/architecture.md
«Options beyond the manual»): «Звонок ответственному» with its numbers, unknown inbound callers
to «Неразобранное» in a chosen pipeline, and a lead for a new client in a chosen pipeline and
stage. All off by default. Pipelines and stages are checked against the cache loaded from amoCRM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from core.models import Organization
from core.services import audit_record
from core.task_queue import task_enqueue
from core.tenancy import organization_scope
from crm.selectors import amo_pipelines_for, amo_webhook_for
from integration.models import CallSettings
from integration.routing import routing_sync_request
from pbx.models import PbxNumber


class CallOptionsInvalid(ValueError):
    """A choice that is not the organization's (a number, pipeline or stage): nothing saved."""


@dataclass(frozen=True, slots=True)
class CallOptions:
    routing_enabled: bool = False
    routing_number_ids: Sequence[int] = ()  # PbxNumber primary keys
    unsorted_enabled: bool = False
    unsorted_pipeline_id: int | None = None  # None: amoCRM's main pipeline
    lead_enabled: bool = False
    lead_pipeline_id: int | None = None
    lead_status_id: int | None = None


def _validate(organization: Organization, options: CallOptions) -> None:
    pipelines = {p.pipeline_id: p for p in amo_pipelines_for(organization=organization)}
    if options.unsorted_pipeline_id is not None and options.unsorted_pipeline_id not in pipelines:
        raise CallOptionsInvalid(_("Такой воронки нет в amoCRM: загрузите воронки заново."))
    if options.lead_enabled and (
        options.lead_pipeline_id is None or options.lead_status_id is None
    ):
        raise CallOptionsInvalid(_("Выберите воронку и этап для новых сделок."))
    if options.lead_pipeline_id is not None:
        pipeline = pipelines.get(options.lead_pipeline_id)
        stages = {s.get("id") for s in pipeline.open_statuses} if pipeline else set()
        if options.lead_status_id not in stages:
            raise CallOptionsInvalid(
                _("Такого этапа нет в воронке amoCRM: загрузите воронки заново.")
            )
    if options.routing_enabled and not options.routing_number_ids:
        raise CallOptionsInvalid(_("Выберите номера, на которых работает «Звонок ответственному»."))


def call_options_update(*, organization: Organization, options: CallOptions) -> CallSettings:
    """Save the options. Switching routing on or off, or changing its numbers, queues a full
    routing sync (which removes Beetel's rules when routing is off). Raises CallOptionsInvalid."""
    _validate(organization, options)
    with organization_scope(organization), transaction.atomic():
        numbers = list(
            PbxNumber.objects.filter(
                organization=organization, pk__in=list(options.routing_number_ids)
            )
        )
        if len(numbers) != len(set(options.routing_number_ids)):
            raise CallOptionsInvalid(_("Такого номера нет в АТС организации."))
        settings, _created = CallSettings.objects.select_for_update().get_or_create(
            organization=organization
        )
        before = (settings.routing_enabled, {n.pk for n in settings.routing_numbers.all()})
        values = {
            "routing_enabled": options.routing_enabled,
            "unsorted_enabled": options.unsorted_enabled,
            "unsorted_pipeline_id": options.unsorted_pipeline_id,
            "lead_enabled": options.lead_enabled,
            "lead_pipeline_id": options.lead_pipeline_id,
            "lead_status_id": options.lead_status_id,
        }
        changed = {k: v for k, v in values.items() if getattr(settings, k) != v}
        for name, value in changed.items():
            setattr(settings, name, value)
        settings.save()
        settings.routing_numbers.set(numbers)
        routing_changed = before != (options.routing_enabled, {n.pk for n in numbers})
        if routing_changed:
            routing_sync_request(organization=organization)
    if routing_changed or changed:
        audit_record(
            organization=organization,
            kind="call_options.changed",
            message=", ".join(
                [f"{name}={value}" for name, value in changed.items()]
                + ([f"routing_numbers={len(numbers)}"] if routing_changed else [])
            ),
        )
    if options.routing_enabled:
        webhook = amo_webhook_for(organization=organization)
        if webhook is None or webhook.subscribed_at is None:
            # Installed before routing existed, or the subscription failed: try again now.
            org_id = organization.pk
            transaction.on_commit(lambda: task_enqueue("crm.tasks.amo_webhooks_subscribe", org_id))
    return settings
