from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from core.crypto import SecretDecryptionError
from core.models import Organization


def _raw_key_column(org: Organization) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_key_encrypted FROM core_organization WHERE id = %s", [org.pk])
        return cursor.fetchone()[0]


def test_secret_column_holds_no_plaintext(org):
    raw = _raw_key_column(org)
    assert org.access_key and org.access_key not in raw
    assert org.access_key.replace("-", "") not in raw
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM core_organization WHERE id = %s", [org.pk])
        row = " ".join(str(v) for v in cursor.fetchone())
    assert org.access_key not in row


def test_secrets_survive_key_rotation_and_reencrypt(org, outsider, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    key_before = Organization.objects.get(pk=org.pk).access_key
    raw_before = _raw_key_column(org)

    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        call_command("reencrypt_secrets", stdout=open("/dev/null", "w"))
        raw_after = _raw_key_column(org)

    assert raw_after != raw_before
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        assert Organization.objects.get(pk=org.pk).access_key == key_before
        assert Organization.objects.get(pk=outsider.pk).access_key == outsider.access_key
    # The old key alone can no longer read the rotated value.
    with override_settings(FIELD_ENCRYPTION_KEYS=[old_key]), pytest.raises(SecretDecryptionError):
        Organization.objects.get(pk=org.pk)
