"""Recording links ``/recordings/<token>`` [contract: docs/security.md]: opaque, keyed on their
own, revocable per organization.

A token is ``nonce ‖ AES-GCM(payload)`` in URL-safe base64: nothing in it is readable, and any
change to it fails authentication. The key comes from ``RECORDING_SIGNING_KEYS`` (newest
first): the newest makes new links, every listed key still opens the links it made, so a key is
rotated by prepending a new one and retired by dropping it later. Those keys are separate from
SECRET_KEY, so rotating either never breaks the other's links or sessions.

amoCRM's player keeps the link for ever, so a link does not expire by age. It opens only while
its organization exists and is not disconnected, and while the organization's
``recording_links_generation`` still equals the one inside the link: bumping the generation
(``recording_links_revoke``) kills every link made before.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F

from core.models import Organization

logger = logging.getLogger(__name__)

_AAD = b"beetel/recording-link/v1"
_NONCE_BYTES = 12
_MAX_TOKEN_CHARS = 1024
# Links made before opaque links existed (django.core.signing of the ids under SECRET_KEY):
# still opened, as generation 0, so links already stored in amoCRM keep playing until the
# organization revokes its links once.
_LEGACY_SALT = "pbx.recording"


@dataclass(frozen=True, slots=True)
class RecordingRef:
    organization_id: int
    ext_tracking_id: str
    user_id: str
    generation: int = 0


@lru_cache(maxsize=4)
def _ciphers(keys: tuple[str, ...]) -> tuple[AESGCM, ...]:
    if not keys:
        raise ImproperlyConfigured("RECORDING_SIGNING_KEYS is required to make recording links.")
    return tuple(
        AESGCM(
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"beetel recording links"
            ).derive(key.encode())
        )
        for key in keys
    )


def _configured() -> tuple[AESGCM, ...]:
    return _ciphers(tuple(settings.RECORDING_SIGNING_KEYS))


def recording_token_make(
    *, organization_id: int, ext_tracking_id: str, user_id: str, generation: int
) -> str:
    payload = json.dumps(
        [organization_id, generation, ext_tracking_id, user_id], separators=(",", ":")
    ).encode()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _configured()[0].encrypt(nonce, payload, _AAD)
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def recording_token_open(*, token: str) -> RecordingRef | None:
    """What a token names, if one of the configured keys made it (no database check)."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) <= _NONCE_BYTES + 16:
        return _legacy_open(token)
    nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    for cipher in _configured():
        try:
            payload = cipher.decrypt(nonce, sealed, _AAD)
        except InvalidTag:
            continue
        return _ref(payload)
    return _legacy_open(token)


def _ref(payload: bytes) -> RecordingRef | None:
    try:
        org_id, generation, ext_id, user_id = json.loads(payload)
    except (ValueError, TypeError):
        return None
    if not (
        isinstance(org_id, int)
        and isinstance(generation, int)
        and isinstance(ext_id, str)
        and isinstance(user_id, str)
    ):
        return None
    return RecordingRef(org_id, ext_id, user_id, generation)


def _legacy_open(token: str) -> RecordingRef | None:
    try:
        data = signing.loads(token, salt=_LEGACY_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    org_id, ext_id, user_id = data.get("o"), data.get("t"), data.get("u")
    if not isinstance(org_id, int) or not isinstance(ext_id, str) or not isinstance(user_id, str):
        return None
    return RecordingRef(org_id, ext_id, user_id, 0)


def recording_ref_from_token(*, token: str) -> RecordingRef | None:
    """The recording a link names, or None: unknown key, tampered, organization deleted or
    disconnected, or the organization revoked its links since the link was made."""
    ref = recording_token_open(token=token)
    if ref is None:
        return None
    current = (
        Organization.objects.filter(pk=ref.organization_id)
        .exclude(status=Organization.Status.DISCONNECTED)
        .values_list("recording_links_generation", flat=True)
        .first()
    )
    if current is None or current != ref.generation:
        return None
    return ref


def recording_links_revoke(*, organization: Organization) -> int:
    """Stop every recording link of the organization made so far; returns the new generation.
    Links made from now on work (amoCRM keeps the old ones: they answer 404)."""
    from core.services import audit_record

    Organization.objects.filter(pk=organization.pk).update(
        recording_links_generation=F("recording_links_generation") + 1
    )
    organization.refresh_from_db(fields=["recording_links_generation"])
    audit_record(
        organization=organization,
        kind="recordings.links_revoked",
        message="Ссылки на записи разговоров отозваны: прежние ссылки больше не открываются.",
    )
    logger.info("recording links revoked", extra={"organization_id": organization.pk})
    return organization.recording_links_generation
