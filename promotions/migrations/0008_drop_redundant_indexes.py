"""The audit events' own index on org_id goes: audit_org_object leads with org_id and serves a look-up by
org alone, and each redemption writes an audit event.

The index is dropped by name rather than by an AlterField, which SQLite carries out by rebuilding the
table, losing the append-only triggers migration 0004 put on it."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "promotions_auditevent_org_id_5da5b271"


class Migration(migrations.Migration):
    dependencies = [
        ("promotions", "0007_store_hierarchy_org_settings_time_criteria"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="org",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="audit_events",
                        to="promotions.organization",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    reverse_sql=f"CREATE INDEX {INDEX} ON promotions_auditevent (org_id)",
                ),
            ],
        ),
    ]
