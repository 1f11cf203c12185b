from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models

from core.crypto import decrypt_secret, encrypt_secret

if TYPE_CHECKING:  # Django's fields are generic only in django-stubs, not at runtime
    _TextField = models.TextField[str | None, str]
else:
    _TextField = models.TextField


class EncryptedTextField(_TextField):
    """A text column that holds only Fernet ciphertext; Python code sees the plaintext.

    Values cannot be filtered on (encryption is randomized): store a separate hash when a
    lookup is needed. Empty strings and NULL are stored as they are.
    """

    description = "Encrypted text (Fernet)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_secret(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_secret(str(value))

    def get_internal_type(self) -> str:
        return "TextField"
