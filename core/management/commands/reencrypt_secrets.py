"""Re-encrypt every encrypted column under the newest key of FIELD_ENCRYPTION_KEYS.

Run after prepending a new key; afterwards the old key can be removed from the setting.
Works on raw ciphertext (no plaintext is materialized in model instances or logged), in
batches, each row updated only if it still holds the ciphertext we read (safe while the
application keeps writing).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from core.crypto import rotate_secret
from core.fields import EncryptedTextField

BATCH = 500


class Command(BaseCommand):
    help = "Re-encrypt all secrets at rest under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(str(model._meta.pk.column))
            for field in fields:
                column = connection.ops.quote_name(str(field.column))
                count = self._rotate_column(table, pk, column)
                total += count
                self.stdout.write(f"{model._meta.label}.{field.name}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} values re-encrypted."))

    def _rotate_column(self, table: str, pk: str, column: str) -> int:
        count = 0
        last_pk: Any = None
        while True:
            with connection.cursor() as cursor:
                where = f"{column} IS NOT NULL AND {column} <> ''"
                params: list[Any] = []
                if last_pk is not None:
                    where += f" AND {pk} > %s"
                    params.append(last_pk)
                cursor.execute(
                    f"SELECT {pk}, {column} FROM {table} WHERE {where} ORDER BY {pk} LIMIT {BATCH}",
                    params,
                )
                rows = cursor.fetchall()
            if not rows:
                return count
            with transaction.atomic(), connection.cursor() as cursor:
                for row_pk, ciphertext in rows:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s",
                        [rotate_secret(ciphertext), row_pk, ciphertext],
                    )
                    count += cursor.rowcount
            last_pk = rows[-1][0]
