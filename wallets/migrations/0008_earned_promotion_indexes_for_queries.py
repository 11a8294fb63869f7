# Drops the indexes of wallets_earnedpromotion that no query of the app needs; every row a bulk issue
# writes paid for each of them (docs/architecture.md, "The earned promotions' indexes", lists the
# indexes kept and the queries they serve):
#
# - earned_promotion_customer (promotion, customer, kind): the idempotency key's unique index leads
#   with (promotion, customer) and serves the same lookups (the issue limits, the earn's instances);
# - the customer and org foreign keys' own indexes: earned_customer_status_till leads with the
#   customer and earned_org_valid_till with the org, and serve the lookups and the PROTECT checks of
#   a delete by them;
# - the primary key's varchar_pattern_ops index (PostgreSQL only): for `LIKE 'prefix%'` on the id,
#   which nothing asks (the admin's search on an id is exact, served by the primary key).
#
# Written by hand so the foreign keys themselves are left alone: the AlterField Django generates
# for db_index drops and re-adds the constraint, re-checking every row of a large table.

import django.db.models.deletion
from django.db import migrations, models

TABLE = "wallets_earnedpromotion"
# (index, column) of the foreign keys' own indexes, as Django named them.
FK_INDEXES = (
    ("wallets_earnedpromotion_customer_id_aed60d76", "customer_id"),
    ("wallets_earnedpromotion_org_id_cf0e6192", "org_id"),
)
ID_LIKE_INDEX = "wallets_earnedpromotion_id_bb272a0b_like"  # PostgreSQL only


def drop_indexes(apps, schema_editor):
    names = [name for name, _ in FK_INDEXES]
    if schema_editor.connection.vendor == "postgresql":
        names.append(ID_LIKE_INDEX)
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def restore_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for name, column in FK_INDEXES:
        schema_editor.execute(f"CREATE INDEX {quote(name)} ON {quote(TABLE)} ({quote(column)})")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX {quote(ID_LIKE_INDEX)} ON {quote(TABLE)} (id varchar_pattern_ops)")


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0007_store_hierarchy_org_settings_time_criteria'),
        ('wallets', '0007_scale_tallies_exports_indexes'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='earnedpromotion',
            name='earned_promotion_customer',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='earnedpromotion',
                    name='customer',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='earned_promotions', to='wallets.customer'),
                ),
                migrations.AlterField(
                    model_name='earnedpromotion',
                    name='org',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='earned_promotions', to='promotions.organization'),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
