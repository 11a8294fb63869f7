# Drops the promotion FK's own indexes on wallets_earnedpromotion (the composite indexes that lead
# with the promotion serve its lookups). Written by hand so the foreign key itself is left alone:
# the AlterField Django generates drops and re-adds it, re-checking every row of a large table.

from django.db import migrations, models
import django.db.models.deletion

TABLE = "wallets_earnedpromotion"
INDEX = "wallets_earnedpromotion_promotion_id_ca069e0e"
LIKE_INDEX = "wallets_earnedpromotion_promotion_id_ca069e0e_like"  # PostgreSQL only


def drop_indexes(apps, schema_editor):
    for name in (INDEX, LIKE_INDEX):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    schema_editor.execute(f"CREATE INDEX {quote(INDEX)} ON {quote(TABLE)} (promotion_id)")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX {quote(LIKE_INDEX)} ON {quote(TABLE)} (promotion_id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0002_drop_promotion_restrictions_json'),
        ('wallets', '0003_bulk_job_idempotency_key'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='earnedpromotion',
                    name='promotion',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='earned_promotions', to='promotions.promotion'),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
