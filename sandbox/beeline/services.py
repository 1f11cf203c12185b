"""Writes to the emulator state: the Python API for tests, the demo and the sandbox pages.

Names and signatures here are used by other apps' tests (pbx, cabinet): keep them stable.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from core.phones import phone_parse
from sandbox.beeline import clock, selectors
from sandbox.beeline.errors import PortalError, bad_request, not_found
from sandbox.beeline.models import Abonent, ClickToCall, Number, Pbx, Subscription
from sandbox.beeline.simulator import (
    SCENARIOS,
    STORIES,
    Delivery,
    SimulatedCall,
    call_simulate,
    story_simulate,
    subscription_terminate,
    subscriptions_expire_due,
)

__all__ = [
    "SCENARIOS",
    "STORIES",
    "Delivery",
    "SimulatedCall",
    "abonent_add",
    "call_simulate",
    "click_to_call_request",
    "faults_set",
    "number_add",
    "pbx_create",
    "story_simulate",
    "subscription_create",
    "subscription_delete",
    "subscription_terminate",
    "subscriptions_expire_due",
]

SUBSCRIPTION_TYPES = ("BASIC_CALL", "ADVANCED_CALL")


def _ten_digits(raw: str, *, what: str) -> str:
    phone = phone_parse(raw)
    if phone is None or len(phone.national) != 10:
        raise ValueError(f"{what}: {raw!r} is not a 10-digit Russian number")
    return phone.national


def abonent_add(
    *,
    pbx: Pbx,
    phone: str,
    last_name: str,
    first_name: str = "",
    email: str = "",
    department: str = "",
    extension: str = "",
    user_id: str | None = None,
    recording: bool = True,
) -> Abonent:
    national = _ten_digits(phone, what="abonent phone")
    return Abonent.objects.create(
        pbx=pbx,
        phone=national,
        user_id=user_id or f"{national}@ip.beeline.ru",
        first_name=first_name,
        last_name=last_name,
        email=email,
        department=department,
        extension=extension,
        recording=recording,
    )


def number_add(
    *,
    pbx: Pbx,
    phone: str,
    name: str = "",
    multichannel: bool = False,
    members: list[str] | None = None,
    number_id: str | None = None,
) -> Number:
    """An incoming number; ``members`` (abonent phones/userIds) ring on a multichannel number."""
    national = _ten_digits(phone, what="number")
    number = Number.objects.create(
        pbx=pbx,
        phone=national,
        # The real numberId format is unknown; integrators subscribe to "<10 digits>@<domain>".
        number_id=number_id or f"{national}@mpbx.ip.beeline.ru",
        name=name,
        multichannel=multichannel,
    )
    for pattern in members or []:
        abonent = selectors.abonent_find(pbx=pbx, pattern=pattern)
        if abonent is None:
            raise ValueError(f"number member {pattern!r} is not an abonent of this PBX")
        number.members.add(abonent)
    return number


@transaction.atomic
def pbx_create(
    *,
    name: str,
    token: str | None = None,
    abonents: list[dict[str, Any]],
    numbers: list[dict[str, Any]],
) -> Pbx:
    """A PBX with its abonents and numbers; the token is a new UUID unless given.

    Abonent dicts: phone, last_name, and optionally first_name, email, department, extension,
    user_id, recording. Number dicts: phone, and optionally name, multichannel, members
    (abonent phones; default for a multichannel number: every abonent), number_id.
    """
    pbx = Pbx.objects.create(
        name=name,
        token=token or str(uuid.uuid4()),
        account_id=str(random.randint(10**10, 10**11 - 1)),
    )
    for data in abonents:
        abonent_add(pbx=pbx, **data)
    for data in numbers:
        data = dict(data)
        if data.get("multichannel") and "members" not in data:
            data["members"] = [a["phone"] for a in abonents]
        number_add(pbx=pbx, **data)
    return pbx


def faults_set(
    *,
    pbx: Pbx,
    latency_ms: int = 0,
    fail_next: int = 0,
    fail_status: int = 500,
    error_rate: float = 0.0,
    down: bool = False,
    timeout: bool = False,
) -> None:
    """Set every fault knob at once (call with no knobs to clear them)."""
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError("error_rate must be within 0..1")
    if not 400 <= fail_status <= 599:
        raise ValueError("fail_status must be an HTTP error status")
    Pbx.objects.filter(pk=pbx.pk).update(
        latency_ms=latency_ms,
        fail_next=fail_next,
        fail_status=fail_status,
        error_rate=error_rate,
        down=down,
        timeout=timeout,
    )
    pbx.refresh_from_db()


def subscription_create(
    *, pbx: Pbx, pattern: str, expires: Any, subscription_type: Any, url: Any
) -> Subscription:
    """PUT /subscription. The granted ``expires`` is capped by SANDBOX_BEELINE_MAX_SUBSCRIPTION.

    No pattern = the whole group; otherwise an abonent (userId, phone, extension) or an
    incoming number (numberId or phone). Raises PortalError (400/404) for bad input.
    """
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise bad_request("Поле url обязательно и должно быть адресом http(s)")
    if subscription_type not in SUBSCRIPTION_TYPES:
        raise bad_request("subscriptionType должен быть BASIC_CALL или ADVANCED_CALL")
    if isinstance(expires, bool) or not isinstance(expires, int) or expires <= 0:
        raise bad_request("expires должен быть положительным целым числом секунд")
    pattern = (pattern or "").strip()
    if not pattern:
        target_type, target_id = Subscription.TargetType.GROUP, f"group-{pbx.account_id}"
    elif abonent := selectors.abonent_find(pbx=pbx, pattern=pattern):
        target_type, target_id = Subscription.TargetType.ABONENT, abonent.user_id
    elif number := selectors.number_find(pbx=pbx, pattern=pattern):
        target_type, target_id = Subscription.TargetType.NUMBER, number.number_id
    else:
        raise not_found("TargetNotFound", f"Абонент или номер {pattern} не найден")
    granted = min(expires, settings.SANDBOX_BEELINE_MAX_SUBSCRIPTION)
    now = clock.now()
    count = pbx.subscriptions.count() + 1
    return Subscription.objects.create(
        pbx=pbx,
        subscription_id=str(uuid.uuid4()),
        pattern=pattern,
        target_type=target_type,
        target_id=target_id,
        subscription_type=subscription_type,
        url=url,
        expires_requested=expires,
        expires_granted=granted,
        created_at=now,
        expires_at=now + timedelta(seconds=granted),
        subscriber_user_id=(
            f"MPBX_E_{252500 + count}_{pbx.account_id}_EventSubscription@ip.beeline.ru"
        ),
    )


def subscription_delete(*, pbx: Pbx, subscription_id: str) -> None:
    """DELETE /subscription: no event is sent. Raises PortalError 404 for an unknown id."""
    deleted = pbx.subscriptions.filter(
        subscription_id=subscription_id, deleted_at__isnull=True, terminated_at__isnull=True
    ).update(deleted_at=clock.now())
    if not deleted:
        raise not_found("SubscriptionNotFound", "Подписка не найдена")


_PHONE_CHARS = re.compile(r"^[\d\s()+-]{5,20}$")


def click_to_call_request(*, pbx: Pbx, pattern: str, phone_number: str) -> ClickToCall:
    """POST /abonents/{pattern}/call: log the request, then play the call (events, record)."""
    abonent = selectors.abonent_find(pbx=pbx, pattern=pattern)
    now = clock.now()
    ext_tracking_id = ""
    try:
        if abonent is None:
            raise not_found("AbonentNotFound", f"Абонент {pattern} не найден")
        if not phone_number or not _PHONE_CHARS.match(phone_number):
            raise bad_request("Параметр phoneNumber обязателен: номер телефона, 10 цифр")
        ext_tracking_id = call_simulate(
            pbx=pbx,
            scenario="click_to_call",
            abonent_phone=abonent.user_id,
            external_phone=phone_number,
        ).ext_tracking_id
    except PortalError as error:
        ClickToCall.objects.create(
            pbx=pbx,
            pattern=pattern,
            abonent=abonent,
            phone_number=phone_number[:40],
            created_at=now,
            status_code=error.status,
        )
        raise
    return ClickToCall.objects.create(
        pbx=pbx,
        pattern=pattern,
        abonent=abonent,
        phone_number=phone_number,
        created_at=now,
        status_code=200,
        ext_tracking_id=ext_tracking_id,
    )
