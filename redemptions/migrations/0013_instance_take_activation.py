"""`redemption_instance_take_v1` takes an instance of a promotion that requires the customer's activation
(`customerActivationRequired`) only when it is activated: by the customer for the promotion, or for this
instance (wallets' PromotionActivation). The rest of the function is 0011's, unchanged; the general
path's `_instance_take` (redemptions.services) holds the same condition."""

from django.db import migrations

# An instance is activated, or its promotion does not require it.
ACTIVATED = """
      AND (NOT EXISTS (SELECT 1 FROM promotions_promotion AS p
                       WHERE p.id = p_promotion AND p.customer_activation_required)
           OR EXISTS (SELECT 1 FROM wallets_promotionactivation AS a
                      WHERE a.customer_id = p_customer AND a.promotion_id = p_promotion
                        AND (a.earned_promotion_id IS NULL OR a.earned_promotion_id = p_instance)))"""

INSTANCE_TAKE = r"""
CREATE OR REPLACE FUNCTION redemption_instance_take_v1(
    p_instance text, p_customer bigint, p_promotion text, p_redemptions numeric, p_discount numeric,
    p_transaction_date timestamptz, p_now timestamptz
) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_redemptions numeric;
    v_transactions numeric;
    v_discount numeric;
BEGIN
    SELECT coalesce(max(r."limit") FILTER (WHERE r.kpi = 'REDEMPTION'), 1),
           max(r."limit") FILTER (WHERE r.kpi = 'TRANSACTION'),
           max(r."limit") FILTER (WHERE r.kpi = 'DISCOUNT')
    INTO v_redemptions, v_transactions, v_discount
    FROM promotions_promotionrestriction AS r
    WHERE r.promotion_id = p_promotion AND r.level = 'Earn';
    UPDATE wallets_earnedpromotion AS e
    SET redemption_count = e.redemption_count + p_redemptions,
        transaction_count = e.transaction_count + 1,
        discount_total = e.discount_total + p_discount,
        status = CASE WHEN e.redemption_count >= v_redemptions - p_redemptions
                           OR e.transaction_count >= v_transactions - 1
                           OR e.discount_total >= v_discount - p_discount
                      THEN 'REDEEMED' ELSE e.status END,
        status_changed_at = CASE WHEN e.redemption_count >= v_redemptions - p_redemptions
                                      OR e.transaction_count >= v_transactions - 1
                                      OR e.discount_total >= v_discount - p_discount
                                 THEN p_now ELSE e.status_changed_at END
    WHERE e.id = p_instance AND e.customer_id = p_customer AND e.promotion_id = p_promotion
      AND e.status = 'ACTIVE' AND e.valid_till > p_transaction_date AND NOT e.locked
      AND e.redemption_count <= v_redemptions - p_redemptions
      AND (v_transactions IS NULL OR e.transaction_count <= v_transactions - 1)
      AND (v_discount IS NULL OR e.discount_total <= v_discount - p_discount)__ACTIVATED__;
    RETURN FOUND;
END
$fn$;
""".replace("__ACTIVATED__", ACTIVATED)


def _on_postgresql(forwards: bool):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        if forwards:
            schema_editor.execute(INSTANCE_TAKE, params=None)
        else:  # 0011's function, without the condition
            schema_editor.execute(INSTANCE_TAKE.replace(ACTIVATED, ""), params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("redemptions", "0012_drop_redundant_indexes"),
        ("wallets", "0009_promotion_activation"),
    ]

    operations = [migrations.RunPython(_on_postgresql(True), _on_postgresql(False))]
