from __future__ import annotations

import math

from django.db import connection

from core.access_keys import (
    ALPHABET,
    ENTROPY_BITS,
    KEY_LENGTH,
    access_key_format,
    access_key_generate,
    access_key_hash,
    access_key_normalize,
)
from core.selectors import organization_by_access_key
from core.testing import organization_make


def test_keys_have_at_least_80_bits_and_readable_groups():
    assert ENTROPY_BITS >= 80
    assert KEY_LENGTH * math.log2(len(ALPHABET)) >= 80
    key = access_key_generate()
    groups = key.split("-")
    assert len(groups) == 4 and all(len(g) == 5 for g in groups)
    assert set(key.replace("-", "")) <= set(ALPHABET)


def test_keys_are_unique_and_not_predictable():
    keys = {access_key_generate() for _ in range(20_000)}
    assert len(keys) == 20_000
    # Every symbol shows up in every position: no fixed prefix or counter.
    for position in range(KEY_LENGTH):
        assert len({access_key_normalize(k)[position] for k in keys}) == len(ALPHABET)


def test_typed_key_is_forgiving_about_case_spaces_and_lookalikes():
    key = "0IL1A-BCDEF-GHJKM-NPQRS"
    assert access_key_normalize(" 0il1a bcdef-ghjkm NPQRS ") == access_key_normalize(key)
    assert access_key_normalize("OILLA") == "01114"[:0] + "0111A"
    assert access_key_format("abcdefghjk") == "ABCDE-FGHJK"


def test_lookup_by_key_finds_only_its_organization(org, outsider):
    assert organization_by_access_key(key=org.access_key) == org
    assert organization_by_access_key(key=org.access_key.lower().replace("-", " ")) == org
    assert organization_by_access_key(key=outsider.access_key) == outsider
    assert organization_by_access_key(key=access_key_generate()) is None
    assert organization_by_access_key(key="d9c0c839") is None
    assert organization_by_access_key(key="") is None


def test_key_is_stored_as_hash_not_plaintext(db):
    org = organization_make(name="Hashco")
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_key_hash FROM core_organization WHERE id = %s", [org.pk])
        stored_hash = cursor.fetchone()[0]
    assert stored_hash == access_key_hash(org.access_key)
    assert access_key_normalize(org.access_key) not in stored_hash
