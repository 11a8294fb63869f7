"""An evaluation's request and what it applied kept as JSON text (`redemptions.models.JSONTextField`):
written once, read whole, never queried inside; `jsonb` parsed and compressed each document at insert.
On PostgreSQL the two columns are compressed with lz4 when the server was built with it (pglz, the
default, costs several times lz4's CPU); elsewhere, or without lz4, the server's default stays."""

import redemptions.models
from django.db import migrations

COLUMNS = ("request", "applied")


def lz4_compression(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        if cursor.fetchone() is None:
            return  # a server built without lz4
        table = schema_editor.quote_name(apps.get_model("redemptions", "Evaluation")._meta.db_table)
        cursor.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ALTER COLUMN {schema_editor.quote_name(column)} SET COMPRESSION lz4" for column in COLUMNS)
        )


class Migration(migrations.Migration):

    dependencies = [
        ('redemptions', '0021_redemption_till_code'),
    ]

    operations = [
        migrations.AlterField(
            model_name='evaluation',
            name='applied',
            field=redemptions.models.JSONTextField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='evaluation',
            name='request',
            field=redemptions.models.JSONTextField(),
        ),
        migrations.RunPython(lz4_compression, migrations.RunPython.noop),
    ]
