"""Earn limits whose window resets, on the one-statement path (docs/code-redemption.md).

`redemption_record_v1` (CREATE OR REPLACE of migration 0019's function): an Earn limit whose window
resets (window_kind FIXED or MOVING) is taken with the other counters in the same upsert, once per
earned instance the redemption took, scope 'earn:' || the instance's id, in the window its
transactionDate falls in (the org's time zone). Still one statement per redemption.

`redemption_instance_take_v1` (CREATE OR REPLACE of migration 0013's function): the instance's own
counters carry only its lifetime Earn limits; an instance whose Earn REDEMPTION limits all reset has
no lifetime REDEMPTION bound (the single use of an instance without an Earn REDEMPTION limit stays).
"""

import importlib

from django.db import migrations

_CODES = importlib.import_module("redemptions.migrations.0019_redemption_record_codes")
_TAKE = importlib.import_module("redemptions.migrations.0013_instance_take_activation")

_CODE_ROWS = """               OR (r.level = 'Code' AND v_codes ? u.promotion_id)
        ) AS x;
"""
_EARN_ROWS = """               OR (r.level = 'Code' AND v_codes ? u.promotion_id)
            UNION ALL
            -- An Earn limit whose window resets: per earned instance taken (its lines, written above).
            SELECT r.id, 'earn:' || u.earned,
                   CASE r.kpi WHEN 'REDEMPTION' THEN u.redemptions WHEN 'TRANSACTION' THEN 1 ELSE u.discount END,
                   r."limit", r.window_kind, w.key, w.first_day, w.last_day
            FROM (
                SELECT rl.earned_promotion_id AS earned, rl.promotion_id, sum(rl.redemption_count) AS redemptions,
                       sum(rl.discount) AS discount
                FROM redemptions_redemptionline AS rl
                WHERE rl.redemption_id = v_redemption AND coalesce(rl.earned_promotion_id, '') <> ''
                GROUP BY rl.earned_promotion_id, rl.promotion_id
            ) AS u
            JOIN promotions_promotionrestriction AS r ON r.promotion_id = u.promotion_id
            JOIN promotions_promotion AS p ON p.id = u.promotion_id
            CROSS JOIN LATERAL redemption_window_v1(
                r.window_kind, r.window_cycle, r.window_days, r.window_week_start, r.window_anchor_ms,
                p.start_date, (SELECT o.timezone FROM promotions_organization AS o WHERE o.id = p_org),
                p_transaction_date
            ) AS w
            WHERE r.level = 'Earn' AND r.window_kind IN ('FIXED', 'MOVING')
        ) AS x;
"""
assert _CODES.FUNCTION.count(_CODE_ROWS) == 1
FUNCTION = _CODES.FUNCTION.replace(_CODE_ROWS, _EARN_ROWS)

_LIFETIME_LIMITS = """    SELECT coalesce(max(r."limit") FILTER (WHERE r.kpi = 'REDEMPTION'), 1),
           max(r."limit") FILTER (WHERE r.kpi = 'TRANSACTION'),
           max(r."limit") FILTER (WHERE r.kpi = 'DISCOUNT')
    INTO v_redemptions, v_transactions, v_discount
    FROM promotions_promotionrestriction AS r
    WHERE r.promotion_id = p_promotion AND r.level = 'Earn';
"""
_LIFETIME_ONLY = """    -- Lifetime Earn limits only (a resetting one is a counter of scope 'earn:' || the instance);
    -- single-use without any Earn REDEMPTION limit.
    SELECT CASE WHEN bool_or(r.kpi = 'REDEMPTION') IS TRUE
                THEN max(r."limit") FILTER (WHERE r.kpi = 'REDEMPTION' AND r.window_kind NOT IN ('FIXED', 'MOVING'))
                ELSE 1 END,
           max(r."limit") FILTER (WHERE r.kpi = 'TRANSACTION' AND r.window_kind NOT IN ('FIXED', 'MOVING')),
           max(r."limit") FILTER (WHERE r.kpi = 'DISCOUNT' AND r.window_kind NOT IN ('FIXED', 'MOVING'))
    INTO v_redemptions, v_transactions, v_discount
    FROM promotions_promotionrestriction AS r
    WHERE r.promotion_id = p_promotion AND r.level = 'Earn';
"""
_REDEMPTION_ROOM = "      AND e.redemption_count <= v_redemptions - p_redemptions\n"
assert _TAKE.INSTANCE_TAKE.count(_LIFETIME_LIMITS) == 1 and _TAKE.INSTANCE_TAKE.count(_REDEMPTION_ROOM) == 1
INSTANCE_TAKE = _TAKE.INSTANCE_TAKE.replace(_LIFETIME_LIMITS, _LIFETIME_ONLY).replace(
    _REDEMPTION_ROOM, "      AND (v_redemptions IS NULL OR e.redemption_count <= v_redemptions - p_redemptions)\n"
)


def _on_postgresql(*sqls):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in sqls:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("redemptions", "0019_redemption_record_codes")]

    # Backwards: 0019's and 0013's functions again.
    operations = [
        migrations.RunPython(
            _on_postgresql(FUNCTION, INSTANCE_TAKE), _on_postgresql(_CODES.FUNCTION, _TAKE.INSTANCE_TAKE)
        )
    ]
