"""An evaluation's request and what it applied kept as JSON text (`redemptions.models.JSONTextField`):
written once, read whole, never queried inside; `jsonb` parsed and compressed each document at insert.
On PostgreSQL the two columns are compressed with lz4 when the server was built with it (pglz, the
default, costs several times lz4's CPU); elsewhere, or without lz4, the server's default stays."""

import redemptions.models
from django.db import migrations

COLUMNS = ("request", "applied")

FUNCTION = r"""
CREATE OR REPLACE FUNCTION evaluation_record_v1(
    p_id varchar,
    p_org integer,
    p_customer bigint,
    p_client bigint,
    p_client_check text,
    p_till_code varchar,
    p_request text,
    p_amount numeric,
    p_discount numeric,
    p_applied text,
    p_rules_version bigint,
    p_created_at timestamptz
) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_client_check IS NOT NULL THEN
        -- The client and org the web worker cached: still this client, active, in the state it was
        -- cached in (promotions_site.auth.CLIENT_STATE_SQL). Else the worker verifies afresh and calls again.
        PERFORM 1
        FROM promotions_apiclient AS c
        JOIN promotions_organization AS o ON o.id = c.org_id
        WHERE c.id = p_client AND c.org_id = p_org AND c.is_active
          AND concat_ws('|', c.secret_hash, c.access, coalesce(c.default_till_id::text, ''), o.timezone,
                        o.redemption_strategy, o.evaluation_mechanism, o.percentage_base, o.rounding_mode,
                        o.rounding_precision::text, o.several_line_promotions_per_unit::text,
                        o.rules_version::text)
              = p_client_check;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;
    -- An evaluation is indicative: its transaction (this statement's) commits without waiting for
    -- its WAL flush (redemptions.evaluation._evaluation_store).
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO redemptions_evaluation (
        id, org_id, customer_id, api_client_id, till_code, request, amount, discount, applied,
        rules_version, created_at
    ) VALUES (
        p_id, p_org, p_customer, p_client, p_till_code, p_request, p_amount, p_discount, p_applied,
        p_rules_version, p_created_at
    );
    RETURN true;
END;
$$;
"""
CONTEXT_FUNCTION = r"""
CREATE OR REPLACE FUNCTION evaluation_context_v1(
    p_org integer,
    p_customer bigint,
    p_now timestamptz,
    p_restrictions bigint[],
    p_scopes text[],
    p_firsts date[],
    p_lasts date[]
) RETURNS TABLE (
    r_part integer,
    r_key text,
    r_id text,
    r_redemption_count integer,
    r_transaction_count integer,
    r_used numeric,
    r_reserved numeric,
    r_rank bigint
)
LANGUAGE plpgsql STABLE
-- One plan per connection: left to choose, PostgreSQL planned the wallet's query afresh at every call
-- (a custom plan per moment `p_now`), for the same plan.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- The customer LEFT JOIN its usable instances (ACTIVE, not expired, not LOCKED), ranked by
    -- (promotion, valid_till, id): one row of NULLs when it holds none, none when the org has no
    -- such customer (redemptions.evaluation._wallet_sql).
    RETURN QUERY
    SELECT 0, e.promotion_id::text, e.id::text, e.redemption_count, e.transaction_count, e.discount_total,
           NULL::numeric, row_number() OVER (ORDER BY e.promotion_id, e.valid_till, e.id)
    FROM wallets_customer AS c
    LEFT JOIN wallets_earnedpromotion AS e
      ON e.customer_id = c.id AND e.status = 'ACTIVE' AND e.valid_till > p_now AND NOT e.locked
    WHERE c.id = p_customer AND c.org_id = p_org
    ORDER BY 8;
    -- The counters: used and reserved summed per (restriction, scope) over each range of window
    -- keys (redemptions.selectors.window_used_reserved).
    RETURN QUERY
    SELECT 1, k.restriction_id::text, k.scope::text, NULL::integer, NULL::integer, SUM(k.used),
           SUM(k.reserved), NULL::bigint
    FROM unnest(p_restrictions, p_scopes, p_firsts, p_lasts) AS r(restriction_id, scope, first_key, last_key)
    JOIN redemptions_redemptioncounter AS k
      ON k.restriction_id = r.restriction_id AND k.scope = r.scope
     AND k.window_start >= r.first_key AND k.window_start <= r.last_key
    GROUP BY k.restriction_id, k.scope;
END;
$$;
"""
DROP_FUNCTION = "DROP FUNCTION IF EXISTS evaluation_record_v1"
DROP_CONTEXT_FUNCTION = "DROP FUNCTION IF EXISTS evaluation_context_v1"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


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
        ('redemptions', '0022_redemption_record_till'),
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
        migrations.RunPython(_on_postgresql(FUNCTION), _on_postgresql(DROP_FUNCTION)),
        migrations.RunPython(_on_postgresql(CONTEXT_FUNCTION), _on_postgresql(DROP_CONTEXT_FUNCTION)),
    ]
