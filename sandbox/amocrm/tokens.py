"""Opaque secrets and access-token JWTs of the emulated amoCRM.

Real access tokens are JWTs signed with amoCRM's own key; ours are HS256 with a key derived
from SECRET_KEY, carrying the claims docs/amocrm-api.md §0 lists (account_id, base_domain,
api_domain, sub, exp, scopes). Clients must decode them without verifying, as with the real ones.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Any

import jwt
from django.conf import settings

BASE_DOMAIN = "amocrm.ru"
API_DOMAIN = "api-b.amocrm.ru"
SCOPES = ["crm", "files", "files_delete", "notifications", "push_notifications"]


def _signing_key() -> bytes:
    return hmac.new(
        settings.SECRET_KEY.encode(), b"sandbox-amocrm-access-token", hashlib.sha256
    ).digest()


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def opaque_secret() -> str:
    # Real codes and refresh tokens are long opaque strings starting with "def50200".
    return "def50200" + secrets.token_hex(96)


def access_token_encode(
    *,
    jti: str,
    account_id: int,
    user_id: int,
    client_id: str,
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    claims: dict[str, Any] = {
        "aud": client_id,
        "jti": jti,
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "sub": str(user_id),
        "grant_type": "",
        "account_id": account_id,
        "base_domain": BASE_DOMAIN,
        "version": 2,
        "scopes": SCOPES,
        "hash_uuid": str(uuid.uuid4()),
        "api_domain": API_DOMAIN,
    }
    return jwt.encode(claims, _signing_key(), algorithm="HS256")


def access_token_claims(token: str) -> dict[str, Any] | None:
    """The claims when the signature is ours; expiry is checked against the database instead."""
    try:
        return jwt.decode(
            token,
            _signing_key(),
            algorithms=["HS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        return None
