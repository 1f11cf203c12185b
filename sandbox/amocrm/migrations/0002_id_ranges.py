"""Start the main entities' ids in distinct, realistic ranges (an account id never equals a
user id, so a test that mixes them up fails instead of passing by accident)."""

from django.db import migrations

ID_STARTS = {
    "sandbox_amocrm_account": 31_000_001,
    "sandbox_amocrm_user": 8_000_001,
    "sandbox_amocrm_contact": 45_000_001,
    "sandbox_amocrm_call": 60_000_001,
    "sandbox_amocrm_task": 70_000_001,
    "sandbox_amocrm_tag": 500_001,
}


def set_id_starts(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for table, start in ID_STARTS.items():
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {table} ALTER COLUMN id RESTART WITH {start}")
            elif connection.vendor == "sqlite":
                cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, start - 1]
                )


class Migration(migrations.Migration):
    dependencies = [("sandbox_amocrm", "0001_initial")]

    operations = [migrations.RunPython(set_id_starts, migrations.RunPython.noop)]
