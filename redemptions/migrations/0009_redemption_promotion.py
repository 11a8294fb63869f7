# The promotions each transaction redeemed, with its transaction date: the audit list's promotion filter
# reads them in the list's order from one index. Filled from the recorded lines, then indexed.

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
INSERT INTO redemptions_redemptionpromotion (redemption_id, promotion_id, transaction_date)
SELECT DISTINCT l.redemption_id, l.promotion_id, r.transaction_date
FROM redemptions_redemptionline l JOIN redemptions_redemption r ON r.id = l.redemption_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ('promotions', '0006_promotion_store_criteria_loyalty_only'),
        ('redemptions', '0008_redemption_day_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='RedemptionPromotion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('transaction_date', models.DateTimeField()),
                ('promotion', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='promotions.promotion')),
                ('redemption', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='promotions_redeemed', to='redemptions.redemption')),
            ],
        ),
        # Rows first, indexes after: one sort per index rather than an insert into each per row.
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name='redemptionpromotion',
            constraint=models.UniqueConstraint(fields=('redemption', 'promotion'), name='redemption_promotion_once'),
        ),
        migrations.AddIndex(
            model_name='redemptionpromotion',
            index=models.Index(fields=['promotion', '-transaction_date', '-redemption'], name='redemption_promotion_date'),
        ),
    ]
