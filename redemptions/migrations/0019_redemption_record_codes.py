"""`redemption_record_v1` takes promo codes (CREATE OR REPLACE of migration 0015's function).

The same function but for the promo codes (docs/code-redemption.md): each line may name `code` (the
till's `promoCode`, upper-cased); a CODE promotion is redeemed through exactly one code the org has for
it, active, unlinked or linked to this customer (refusals `code` and `code_not_code`, worded by the
service as the general path words them); the lines record the code (`promo_code_id`), and the code's
Code limits are taken with the other counters in the same upsert, scope 'code:' || its id, in the
window its transactionDate falls in. Still one statement per redemption.
"""

import importlib

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION redemption_record_v1(
    p_org integer,
    p_client bigint,
    p_client_check text,
    p_customer_column text,
    p_customer_value text,
    p_identifier_type text,
    p_identifier_value text,
    p_transaction_identifier text,
    p_transaction_number text,
    p_transaction_date timestamptz,
    p_amount numeric,
    p_fingerprint text,
    p_lines jsonb,
    p_now timestamptz,
    p_day date,
    p_actor_type text,
    p_actor_id text,
    p_actor_name text,
    p_request_id text
) RETURNS jsonb
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_customer bigint;
    v_redemption bigint;
    v_row record;
    v_limits record;
    v_found record;
    v_pid text;
    v_instance text;
    v_taken text[] := ARRAY[]::text[];
    v_chosen jsonb := '{}'::jsonb;
    v_error jsonb;
    v_message text;
    v_result jsonb;
    v_windows jsonb;
    v_moving boolean;
    v_codes jsonb := '{}'::jsonb;
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
            RETURN '{"stale": true}'::jsonb;
        END IF;
    END IF;

    BEGIN
        IF p_customer_column IS NOT NULL THEN
            IF p_customer_column = 'id' THEN
                SELECT cu.id INTO v_customer FROM wallets_customer AS cu
                WHERE cu.org_id = p_org AND cu.id = p_customer_value::bigint
                ORDER BY cu.id LIMIT 1 FOR UPDATE;
            ELSIF p_customer_column = 'mobile' THEN
                SELECT cu.id INTO v_customer FROM wallets_customer AS cu
                WHERE cu.org_id = p_org AND cu.mobile = p_customer_value ORDER BY cu.id LIMIT 1 FOR UPDATE;
            ELSIF p_customer_column = 'email' THEN
                SELECT cu.id INTO v_customer FROM wallets_customer AS cu
                WHERE cu.org_id = p_org AND cu.email = p_customer_value ORDER BY cu.id LIMIT 1 FOR UPDATE;
            ELSE
                SELECT cu.id INTO v_customer FROM wallets_customer AS cu
                WHERE cu.org_id = p_org AND cu.external_id = p_customer_value
                ORDER BY cu.id LIMIT 1 FOR UPDATE;
            END IF;
            IF v_customer IS NULL THEN
                RETURN '{"error": "customer"}'::jsonb;
            END IF;
        END IF;

        INSERT INTO redemptions_redemption AS r (
            org_id, customer_id, customer_identifier_type, customer_identifier_value, transaction_identifier,
            transaction_number, transaction_date, amount, request_fingerprint, api_client_id, created_at
        ) VALUES (
            p_org, v_customer,
            CASE WHEN v_customer IS NULL THEN '' ELSE p_identifier_type END,
            CASE WHEN v_customer IS NULL THEN '' ELSE p_identifier_value END,
            p_transaction_identifier, p_transaction_number, p_transaction_date, p_amount, p_fingerprint,
            p_client, p_now
        )
        ON CONFLICT (org_id, transaction_identifier) DO NOTHING
        RETURNING r.id INTO v_redemption;
        IF v_redemption IS NULL THEN
            RETURN '{"replay": true}'::jsonb;
        END IF;

        -- Every promotion named exists in the org; each is running at transactionDate (in id order).
        SELECT array_agg(x.promotion_id ORDER BY x.first) INTO v_taken
        FROM (
            SELECT l.promotion_id, min(l.ord) AS first FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text)
            GROUP BY l.promotion_id
        ) AS x
        WHERE NOT EXISTS (
            SELECT 1 FROM promotions_promotion AS p WHERE p.org_id = p_org AND p.id = x.promotion_id
        );
        IF v_taken IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'missing', 'ids', to_jsonb(v_taken))::text;
        END IF;
        v_taken := ARRAY[]::text[];
        FOR v_row IN
            SELECT p.id, p.type, p.active, p.start_date, p.end_date
            FROM promotions_promotion AS p
            WHERE p.org_id = p_org
              AND p.id IN (SELECT l.promotion_id FROM jsonb_to_recordset(p_lines) AS l(promotion_id text))
            ORDER BY p.id
        LOOP
            IF v_row.end_date <= p_transaction_date THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'ended', 'promotion', v_row.id)::text;
            END IF;
            IF NOT v_row.active OR v_row.start_date > p_transaction_date THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'not_running', 'promotion', v_row.id)::text;
            END IF;
        END LOOP;
        SELECT l.promotion_id, p.type INTO v_found
        FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, earned text)
        JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
        WHERE coalesce(l.earned, '') <> '' AND p.type NOT IN ('CUSTOMER', 'EARNING', 'REWARD')
        ORDER BY l.ord LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'earned_not_wallet', 'promotion', v_found.promotion_id,
                                             'type', v_found.type)::text;
        END IF;
        IF v_customer IS NULL THEN
            SELECT p.id, p.type INTO v_found
            FROM promotions_promotion AS p
            WHERE p.org_id = p_org AND p.type IN ('CUSTOMER', 'EARNING', 'REWARD')
              AND p.id IN (SELECT l.promotion_id FROM jsonb_to_recordset(p_lines) AS l(promotion_id text))
            ORDER BY p.id COLLATE "C" LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'anonymous_wallet', 'promotion', v_found.id,
                                                 'type', v_found.type)::text;
            END IF;
        END IF;

        -- Promo codes (docs/code-redemption.md): a code only on a CODE promotion's lines; each CODE
        -- promotion (in the order the lines name them) through exactly one code, which the org has for
        -- it, active, and unlinked or linked to this customer. v_codes: promotion id -> PromoCode id.
        SELECT l.promotion_id, p.type INTO v_found
        FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, code text)
        JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
        WHERE coalesce(l.code, '') <> '' AND p.type <> 'CODE'
        ORDER BY l.ord LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'code_not_code', 'promotion', v_found.promotion_id,
                                             'type', v_found.type)::text;
        END IF;
        FOR v_row IN
            SELECT x.promotion_id, x.codes, c.id AS code_id, c.promotion_id AS code_promotion, c.active,
                   c.customer_id
            FROM (
                SELECT l.promotion_id, min(l.ord) AS first,
                       array_agg(DISTINCT l.code COLLATE "C" ORDER BY l.code COLLATE "C") FILTER (WHERE coalesce(l.code, '') <> '') AS codes
                FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, code text)
                GROUP BY l.promotion_id
            ) AS x
            JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = x.promotion_id AND p.type = 'CODE'
            LEFT JOIN promotions_promocode AS c ON c.org_id = p_org AND c.code = x.codes[1]
            ORDER BY x.first
        LOOP
            IF v_row.codes IS NULL OR cardinality(v_row.codes) <> 1 THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object(
                        'error', 'code', 'promotion', v_row.promotion_id,
                        'reason', CASE WHEN v_row.codes IS NULL THEN 'missing' ELSE 'several' END,
                        'code', array_to_string(v_row.codes, ', '))::text;
            END IF;
            IF v_row.code_id IS NULL OR v_row.code_promotion <> v_row.promotion_id THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'code', 'promotion', v_row.promotion_id,
                                                 'reason', 'unknown', 'code', v_row.codes[1])::text;
            END IF;
            IF NOT v_row.active THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'code', 'promotion', v_row.promotion_id,
                                                 'reason', 'inactive', 'code', v_row.codes[1])::text;
            END IF;
            IF v_row.customer_id IS NOT NULL AND v_row.customer_id IS DISTINCT FROM v_customer THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'code', 'promotion', v_row.promotion_id,
                                                 'reason', 'other_customer', 'code', v_row.codes[1],
                                                 'anonymous', v_customer IS NULL)::text;
            END IF;
            v_codes := v_codes || jsonb_build_object(v_row.promotion_id, v_row.code_id);
        END LOOP;

        -- The earned instances the till named (in id order), each with its lines' use.
        FOR v_row IN
            SELECT l.earned,
                   (array_agg(l.promotion_id ORDER BY l.ord))[1] AS promotion_id,
                   count(DISTINCT l.promotion_id) AS promotions,
                   sum(l.count) AS redemptions, sum(l.discount) AS discount
            FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, earned text, count int, discount numeric)
            JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
            WHERE coalesce(l.earned, '') <> '' AND p.type IN ('CUSTOMER', 'EARNING', 'REWARD')
            GROUP BY l.earned
            ORDER BY l.earned COLLATE "C"
        LOOP
            IF v_row.promotions > 1 THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'not_issued', 'instance', v_row.earned,
                                                 'promotion', v_row.promotion_id, 'customer', v_customer)::text;
            END IF;
            IF NOT redemption_instance_take_v1(v_row.earned, v_customer, v_row.promotion_id,
                                               v_row.redemptions, v_row.discount, p_transaction_date, p_now) THEN
                SELECT e.status, e.locked, e.valid_till <= p_transaction_date AS expired INTO v_found
                FROM wallets_earnedpromotion AS e
                WHERE e.id = v_row.earned AND e.customer_id = v_customer AND e.promotion_id = v_row.promotion_id;
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object(
                        'error', CASE WHEN v_found IS NULL THEN 'not_issued' ELSE 'instance' END,
                        'instance', v_row.earned, 'promotion', v_row.promotion_id, 'customer', v_customer,
                        'status', v_found.status, 'locked', v_found.locked, 'expired', v_found.expired)::text;
            END IF;
            v_taken := v_taken || v_row.earned;
        END LOOP;
        -- Wallet lines that name no instance: per promotion (in id order), the first usable instance
        -- soonest to expire.
        FOR v_row IN
            SELECT l.promotion_id, sum(l.count) AS redemptions, sum(l.discount) AS discount
            FROM jsonb_to_recordset(p_lines) AS l(promotion_id text, earned text, count int, discount numeric)
            JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
            WHERE coalesce(l.earned, '') = '' AND p.type IN ('CUSTOMER', 'EARNING', 'REWARD')
            GROUP BY l.promotion_id
            ORDER BY l.promotion_id COLLATE "C"
        LOOP
            v_instance := NULL;
            FOR v_found IN
                SELECT e.id FROM wallets_earnedpromotion AS e
                WHERE e.customer_id = v_customer AND e.promotion_id = v_row.promotion_id AND e.status = 'ACTIVE'
                  AND e.valid_till > p_transaction_date AND NOT e.locked AND NOT (e.id = ANY (v_taken))
                ORDER BY e.valid_till, e.id
            LOOP
                IF redemption_instance_take_v1(v_found.id, v_customer, v_row.promotion_id, v_row.redemptions,
                                               v_row.discount, p_transaction_date, p_now) THEN
                    v_instance := v_found.id;
                    EXIT;
                END IF;
            END LOOP;
            IF v_instance IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'no_instance', 'promotion', v_row.promotion_id,
                                                 'customer', v_customer)::text;
            END IF;
            v_taken := v_taken || v_instance;
            v_chosen := v_chosen || jsonb_build_object(v_row.promotion_id, v_instance);
        END LOOP;

        -- Cart limits: the promotions in the order the lines name them first, each limit by level and kpi.
        SELECT u.promotion_id, r.level, r.kpi, r."limit" INTO v_found
        FROM (
            SELECT l.promotion_id, min(l.ord) AS first, sum(l.count) AS redemptions, sum(l.discount) AS discount
            FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, count int, discount numeric)
            GROUP BY l.promotion_id
        ) AS u
        JOIN promotions_promotionrestriction AS r ON r.promotion_id = u.promotion_id AND r.level = 'Cart'
        WHERE CASE r.kpi WHEN 'REDEMPTION' THEN u.redemptions WHEN 'TRANSACTION' THEN 1 ELSE u.discount END
              > r."limit"
        ORDER BY u.first, r.level, r.kpi LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'limit', 'promotion', v_found.promotion_id,
                                             'level', v_found.level, 'kpi', v_found.kpi,
                                             'limit', v_found."limit")::text;
        END IF;

        WITH written AS (
            INSERT INTO redemptions_redemptionline AS rl (
                redemption_id, level, "position", sku, promotion_id, earned_promotion_id, redemption_count,
                discount, discount_applied_on_quantity, promotion_applied_on_quantity, promo_code_id
            )
            SELECT v_redemption, l.level, l."position", coalesce(l.sku, ''), l.promotion_id,
                   CASE WHEN coalesce(l.earned, '') <> '' THEN l.earned ELSE v_chosen ->> l.promotion_id END,
                   l.count, l.discount, l.daq, l.paq, (v_codes ->> l.promotion_id)::bigint
            FROM jsonb_to_recordset(p_lines) AS l(
                ord int, level text, "position" int, promotion_id text, sku text, earned text, count int,
                discount numeric, daq numeric, paq numeric
            )
            ORDER BY l.ord
            RETURNING rl.id, rl.level, rl."position", rl.earned_promotion_id, rl.promo_code_id
        )
        SELECT jsonb_agg(jsonb_build_array(w.level, w."position", w.id, w.earned_promotion_id, w.promo_code_id))
        INTO v_result
        FROM written AS w;

        INSERT INTO redemptions_redemptionpromotion (redemption_id, promotion_id, transaction_date)
        SELECT v_redemption, x.promotion_id, p_transaction_date
        FROM (
            SELECT l.promotion_id, min(l.ord) AS first FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text)
            GROUP BY l.promotion_id
        ) AS x
        ORDER BY x.first;

        IF p_day IS NOT NULL THEN
            -- A materialised day (before today) stays exact: its org row first (its lock orders the
            -- writers of one day), then each promotion's row, created when missing.
            UPDATE redemptions_redemptionday AS d
            SET redeemed = d.redeemed + 1,
                discount = d.discount + (SELECT sum(l.discount) FROM jsonb_to_recordset(p_lines) AS l(discount numeric)),
                lines = d.lines + jsonb_array_length(p_lines)
            WHERE d.org_id = p_org AND d.day = p_day AND d.promotion_id IS NULL;
            IF FOUND THEN
                FOR v_row IN
                    SELECT l.promotion_id, sum(l.discount) AS discount, count(*) AS lines
                    FROM jsonb_to_recordset(p_lines) AS l(promotion_id text, discount numeric)
                    GROUP BY l.promotion_id ORDER BY l.promotion_id COLLATE "C"
                LOOP
                    UPDATE redemptions_redemptionday AS d
                    SET redeemed = d.redeemed + 1, discount = d.discount + v_row.discount,
                        lines = d.lines + v_row.lines
                    WHERE d.org_id = p_org AND d.day = p_day AND d.promotion_id = v_row.promotion_id;
                    IF NOT FOUND THEN
                        INSERT INTO redemptions_redemptionday (
                            org_id, promotion_id, day, redeemed, reversed, discount, lines, reversed_lines
                        ) VALUES (p_org, v_row.promotion_id, p_day, 1, 0, v_row.discount, v_row.lines, 0);
                    END IF;
                END LOOP;
            END IF;
        END IF;

        INSERT INTO promotions_auditevent (
            org_id, actor_type, actor_id, actor_name, action, object_type, object_id, request_id, data, created_at
        ) VALUES (
            p_org, p_actor_type, p_actor_id, p_actor_name, 'redemption.record', 'Redemption', v_redemption::text,
            p_request_id,
            jsonb_build_object(
                'transactionIdentifier', p_transaction_identifier,
                'customerId', coalesce(v_customer, -1),
                'promotions', (
                    SELECT jsonb_agg(x.promotion_id ORDER BY x.promotion_id COLLATE "C")
                    FROM (SELECT DISTINCT l.promotion_id FROM jsonb_to_recordset(p_lines) AS l(promotion_id text)) AS x
                ),
                'earnedPromotions', (
                    SELECT coalesce(jsonb_agg(t.id ORDER BY t.id COLLATE "C"), '[]'::jsonb) FROM unnest(v_taken) AS t(id)
                )
            ),
            p_now
        );

        -- Last: the Customer, Promotion and Code counters (a Code limit's scope: 'code:' || its code's
        -- id), in lock order (restriction, scope, window); one
        -- upsert that grows a counter only within its limit. A use larger than the limit itself is
        -- never written. Each limit's window is the one its transactionDate falls in, in the org's
        -- time zone (redemption_window_v1); a MOVING limit also takes its lock row (LIFETIME, holding
        -- nothing), so its day buckets are summed by one writer at a time.
        SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.restriction_id, x.scope), '[]'::jsonb),
               bool_or(x.kind = 'MOVING')
        INTO v_windows, v_moving
        FROM (
            SELECT r.id AS restriction_id,
                   CASE r.level WHEN 'Customer' THEN v_customer::text
                                WHEN 'Code' THEN 'code:' || (v_codes ->> u.promotion_id)
                                ELSE '' END AS scope,
                   CASE r.kpi WHEN 'REDEMPTION' THEN u.redemptions WHEN 'TRANSACTION' THEN 1 ELSE u.discount END
                       AS amount,
                   r."limit", r.window_kind AS kind, w.key, w.first_day, w.last_day
            FROM (
                SELECT l.promotion_id, sum(l.count) AS redemptions, sum(l.discount) AS discount
                FROM jsonb_to_recordset(p_lines) AS l(promotion_id text, count int, discount numeric)
                GROUP BY l.promotion_id
            ) AS u
            JOIN promotions_promotionrestriction AS r ON r.promotion_id = u.promotion_id
            JOIN promotions_promotion AS p ON p.id = u.promotion_id
            CROSS JOIN LATERAL redemption_window_v1(
                r.window_kind, r.window_cycle, r.window_days, r.window_week_start, r.window_anchor_ms,
                p.start_date, (SELECT o.timezone FROM promotions_organization AS o WHERE o.id = p_org),
                p_transaction_date
            ) AS w
            WHERE r.level = 'Promotion' OR (r.level = 'Customer' AND v_customer IS NOT NULL)
               OR (r.level = 'Code' AND v_codes ? u.promotion_id)
        ) AS x;
        WITH limits AS (
            SELECT * FROM jsonb_to_recordset(v_windows) AS x(
                restriction_id bigint, scope text, amount numeric, "limit" numeric, kind text, key date
            )
        ),
        deltas AS (
            SELECT x.restriction_id, x.scope, x.key AS window_start, x.amount, x."limit" FROM limits AS x
            UNION ALL
            SELECT x.restriction_id, x.scope, DATE '0001-01-01', 0, x."limit" FROM limits AS x WHERE x.kind = 'MOVING'
        ),
        taken AS (
            INSERT INTO redemptions_redemptioncounter AS counter (
                org_id, restriction_id, scope, window_start, used, "limit", updated_at
            )
            SELECT p_org, d.restriction_id, d.scope, d.window_start, d.amount, d."limit", p_now
            FROM deltas AS d WHERE d.amount <= d."limit"
            ORDER BY d.restriction_id, d.scope, d.window_start
            ON CONFLICT (restriction_id, scope, window_start) DO UPDATE
            SET used = counter.used + excluded.used, updated_at = excluded.updated_at
            WHERE counter.used + excluded.used <= counter."limit"
            RETURNING counter.restriction_id, counter.scope, counter.window_start
        )
        SELECT d.restriction_id, r.promotion_id, r.level, r.kpi, r."limit" INTO v_found
        FROM deltas AS d
        JOIN promotions_promotionrestriction AS r ON r.id = d.restriction_id
        WHERE NOT EXISTS (
            SELECT 1 FROM taken AS t
            WHERE t.restriction_id = d.restriction_id AND t.scope = d.scope AND t.window_start = d.window_start
        )
        ORDER BY d.restriction_id, d.scope, d.window_start LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'limit', 'promotion', v_found.promotion_id,
                                             'level', v_found.level, 'kpi', v_found.kpi,
                                             'limit', v_found."limit")::text;
        END IF;
        IF v_moving THEN
            -- A MOVING limit: its day buckets, this use included, within the limit over every window
            -- of its length that holds this use (ending on its day, or on a later day with a bucket:
            -- a late report must not push a later window over). A new statement: it sees what the
            -- writers before us on the lock row committed.
            SELECT x.restriction_id, r.promotion_id, r.level, r.kpi, r."limit" INTO v_found
            FROM jsonb_to_recordset(v_windows) AS x(
                restriction_id bigint, scope text, kind text, "limit" numeric, key date, first_day date,
                last_day date
            )
            JOIN promotions_promotionrestriction AS r ON r.id = x.restriction_id
            WHERE x.kind = 'MOVING'
              AND EXISTS (
                  SELECT 1
                  FROM (
                      SELECT x.key AS day
                      UNION
                      SELECT c.window_start FROM redemptions_redemptioncounter AS c
                      WHERE c.restriction_id = x.restriction_id AND c.scope = x.scope
                        AND c.window_start > x.key AND c.window_start <= x.key + (x.last_day - x.first_day)
                  ) AS e
                  WHERE (SELECT sum(c.used) FROM redemptions_redemptioncounter AS c
                         WHERE c.restriction_id = x.restriction_id AND c.scope = x.scope
                           AND c.window_start BETWEEN e.day - (x.last_day - x.first_day) AND e.day) > x."limit"
              )
            ORDER BY x.restriction_id, x.scope LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'PR001',
                    MESSAGE = jsonb_build_object('error', 'limit', 'promotion', v_found.promotion_id,
                                                 'level', v_found.level, 'kpi', v_found.kpi,
                                                 'limit', v_found."limit")::text;
            END IF;
        END IF;
        RETURN jsonb_build_object('id', v_redemption, 'customer', v_customer, 'lines', v_result);
    EXCEPTION WHEN SQLSTATE 'PR001' THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RETURN v_message::jsonb;
    END;
END
$fn$;
"""


def _previous_function() -> str:
    return importlib.import_module("redemptions.migrations.0015_redemption_record_windows").FUNCTION


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql() if callable(sql) else sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("redemptions", "0018_redemption_line_promo_code")]

    # Backwards: 0015's function again.
    operations = [migrations.RunPython(_on_postgresql(FUNCTION), _on_postgresql(_previous_function))]
