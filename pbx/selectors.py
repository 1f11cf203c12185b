"""Reads of the Beeline side (keyword-only, typed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from core.models import Organization
from core.tenancy import organization_scope
from pbx.models import (
    Abonent,
    BeelineCredentials,
    PbxCall,
    PbxEvent,
    PbxNumber,
    Subscription,
)


def abonents_for(*, organization: Organization) -> QuerySet[Abonent]:
    """The organization's current abonents (the ones Beeline still lists)."""
    with organization_scope(organization):
        return Abonent.objects.filter(organization=organization, active=True).order_by(
            "phone", "user_id"
        )


def numbers_for(*, organization: Organization) -> QuerySet[PbxNumber]:
    with organization_scope(organization):
        return PbxNumber.objects.filter(organization=organization).order_by("phone")


def credentials_for(*, organization: Organization | int) -> BeelineCredentials | None:
    with organization_scope(organization):
        return BeelineCredentials.objects.all().first()


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    """A malformed event set aside (``PbxEvent.quarantined_at``): what Диагностика lists."""

    received_at: datetime
    event_type: str
    ext_tracking_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PbxHealth:
    token_saved: bool
    token_valid: bool
    status: str  # BeelineCredentials.Status value, "" without credentials
    verified_at: datetime | None
    last_error: str
    subscription_active: bool
    subscription_expires_at: datetime | None
    last_event_at: datetime | None
    abonent_count: int
    numbers: list[PbxNumber] = field(default_factory=list)
    # Phones listed both as an abonent and as a multichannel number: a number must not be in
    # both, the widget does not work then (docs/architecture.md «Setup rules from the
    # customer's manual»).
    abonent_phones_also_multichannel: list[str] = field(default_factory=list)
    events_24h: int = 0
    event_errors_24h: int = 0  # quarantined ones included
    # The latest malformed events of the 24 hours, newest first (at most QUARANTINE_SHOWN).
    events_quarantined: list[QuarantinedEvent] = field(default_factory=list)


QUARANTINE_SHOWN = 10


def pbx_health(*, organization: Organization, now: datetime | None = None) -> PbxHealth:
    """Everything «Диагностика» shows about the Beeline side."""
    now = now or timezone.now()
    since = now - timedelta(hours=24)
    with organization_scope(organization):
        credentials = BeelineCredentials.objects.filter(organization=organization).first()
        subscription = Subscription.objects.filter(
            organization=organization, status=Subscription.Status.ACTIVE
        ).first()
        events = PbxEvent.objects.filter(organization=organization)
        last_event_at = (
            events.order_by("-received_at").values_list("received_at", flat=True).first()
        )
        recent = events.filter(received_at__gte=since)
        abonent_rows = Abonent.objects.filter(organization=organization, active=True)
        abonent_phones = set(abonent_rows.exclude(phone="").values_list("phone", flat=True))
        numbers = list(PbxNumber.objects.filter(organization=organization).order_by("phone"))
        return PbxHealth(
            token_saved=bool(credentials and credentials.api_token),
            token_valid=bool(
                credentials and credentials.status != BeelineCredentials.Status.REJECTED
            ),
            status=credentials.status if credentials else "",
            verified_at=credentials.verified_at if credentials else None,
            last_error=credentials.last_error if credentials else "",
            subscription_active=bool(subscription and subscription.expires_at > now),
            subscription_expires_at=subscription.expires_at if subscription else None,
            last_event_at=last_event_at,
            abonent_count=abonent_rows.count(),
            numbers=numbers,
            abonent_phones_also_multichannel=sorted(
                n.phone
                for n in numbers
                if n.is_multichannel is not False and n.phone in abonent_phones
            ),
            events_24h=recent.count(),
            event_errors_24h=recent.exclude(error="").count(),
            events_quarantined=[
                QuarantinedEvent(*row)
                for row in recent.filter(quarantined_at__isnull=False)
                .order_by("-received_at", "-id")
                .values_list("received_at", "event_type", "ext_tracking_id", "error")[
                    :QUARANTINE_SHOWN
                ]
            ],
        )


def call_recording_url(*, call: PbxCall, generation: int | None = None) -> str | None:
    """Our public link to the call's recording (only answered calls have one). ``generation``:
    the organization's ``recording_links_generation`` when the caller has it at hand."""
    from pbx.recording_links import recording_token_make

    if not call.recording_user_id or call.answered_at is None:
        return None
    if generation is None:
        generation = (
            Organization.objects.filter(pk=call.organization_id)
            .values_list("recording_links_generation", flat=True)
            .first()
        ) or 0
    token = recording_token_make(
        organization_id=call.organization_id,
        ext_tracking_id=call.beeline_tracking_id,  # a joined recovered call's real id
        user_id=call.recording_user_id,
        generation=generation,
    )
    return f"{settings.PUBLIC_URL}{reverse('pbx:recording', kwargs={'token': token})}"
