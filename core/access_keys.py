"""Access keys: the secret a customer types to open the personal cabinet.

A key is 20 Crockford base32 characters (100 bits from ``secrets``), shown in groups of
five (``7KQ2M-X9D4T-…``). It is stored as a SHA-256 hash for lookup (the key's entropy makes a
slow hash unnecessary) and encrypted for display. Input is normalized, so case, spaces, dashes
and the look-alike letters O/I/L are forgiven when typed.
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
KEY_LENGTH = 20
GROUP = 5
ENTROPY_BITS = KEY_LENGTH * 5
_TRANSLATE = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def access_key_generate() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(KEY_LENGTH))
    return access_key_format(raw)


def access_key_normalize(typed: str) -> str:
    cleaned = "".join(ch for ch in typed.upper() if ch.isalnum()).translate(_TRANSLATE)
    return cleaned


def access_key_format(key: str) -> str:
    raw = access_key_normalize(key)
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def access_key_hash(key: str) -> str:
    return hashlib.sha256(access_key_normalize(key).encode()).hexdigest()


def access_key_is_well_formed(typed: str) -> bool:
    raw = access_key_normalize(typed)
    return len(raw) == KEY_LENGTH and all(ch in ALPHABET for ch in raw)
