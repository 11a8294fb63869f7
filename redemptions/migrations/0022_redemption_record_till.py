"""The till a redemption was recorded at, on the one-statement path; fewer statements per redemption.

`redemption_record_v1` (migration 0020's function, with two more arguments: the 19-argument one is
dropped) writes `Redemption.till_code`: `p_till_code`, the X-CAP-API-ATTRIBUTION-TILL-CODE header
(stripped; NULL when not sent or blank), names a till of the org by its code, and a code naming none
answers `{"error": "till"}` (4001) before anything is written; else `p_default_till`, the API client's
default till, gives its code when it is a till of the org; else ''. As `till_resolve` does for evaluate.

And the checks that cannot apply are not run: the lines are read once for whether any names a promo
code or an earned instance, and the promotions' loop notes whether any is a CODE promotion; without a
code and a CODE promotion the two promo-code statements are skipped, without an earned instance the
earned-instance statements (their answers are empty then: the same refusals, in the same order).
"""

import importlib

from django.db import migrations

_EARN = importlib.import_module("redemptions.migrations.0020_redemption_record_earn_windows")


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


FUNCTION = _EARN.FUNCTION
FUNCTION = _replace_once(
    FUNCTION,
    "    p_request_id text\n) RETURNS jsonb",
    "    p_request_id text,\n    p_till_code text,\n    p_default_till bigint\n) RETURNS jsonb",
)
FUNCTION = _replace_once(
    FUNCTION,
    "    v_codes jsonb := '{}'::jsonb;\nBEGIN\n",
    """    v_codes jsonb := '{}'::jsonb;
    v_till text;
    v_any_code boolean;
    v_any_earned boolean;
    v_code_promotion boolean := false;
BEGIN
""",
)
# The till, before the customer (as evaluate resolves it before anything else).
FUNCTION = _replace_once(
    FUNCTION,
    "    BEGIN\n        IF p_customer_column IS NOT NULL THEN\n",
    """    IF p_till_code IS NOT NULL THEN
        SELECT t.code INTO v_till FROM promotions_till AS t WHERE t.org_id = p_org AND t.code = p_till_code;
        IF v_till IS NULL THEN
            RETURN '{"error": "till"}'::jsonb;
        END IF;
    ELSIF p_default_till IS NOT NULL THEN
        -- Filtered by org: a default till of another org (the admin refuses one) counts as none.
        SELECT t.code INTO v_till FROM promotions_till AS t WHERE t.org_id = p_org AND t.id = p_default_till;
    END IF;
    SELECT bool_or(coalesce(l.code, '') <> ''), bool_or(coalesce(l.earned, '') <> '')
    INTO v_any_code, v_any_earned
    FROM jsonb_to_recordset(p_lines) AS l(code text, earned text);

    BEGIN
        IF p_customer_column IS NOT NULL THEN
""",
)
FUNCTION = _replace_once(
    FUNCTION,
    "transaction_number, transaction_date, amount, request_fingerprint, api_client_id, created_at\n",
    "transaction_number, transaction_date, amount, request_fingerprint, api_client_id, created_at, till_code\n",
)
FUNCTION = _replace_once(
    FUNCTION,
    "            p_client, p_now\n        )\n",
    "            p_client, p_now, coalesce(v_till, '')\n        )\n",
)
# The promotions' loop notes a CODE promotion.
FUNCTION = _replace_once(
    FUNCTION,
    """                    MESSAGE = jsonb_build_object('error', 'not_running', 'promotion', v_row.id)::text;
            END IF;
        END LOOP;
""",
    """                    MESSAGE = jsonb_build_object('error', 'not_running', 'promotion', v_row.id)::text;
            END IF;
            v_code_promotion := v_code_promotion OR v_row.type = 'CODE';
        END LOOP;
""",
)
# An earned instance on a promotion outside the wallet: only when a line names one.
FUNCTION = _replace_once(
    FUNCTION,
    """        SELECT l.promotion_id, p.type INTO v_found
        FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, earned text)
        JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
        WHERE coalesce(l.earned, '') <> '' AND p.type NOT IN ('CUSTOMER', 'EARNING', 'REWARD')
        ORDER BY l.ord LIMIT 1;
        IF FOUND THEN
""",
    """        IF v_any_earned THEN
            SELECT l.promotion_id, p.type INTO v_found
            FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, earned text)
            JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
            WHERE coalesce(l.earned, '') <> '' AND p.type NOT IN ('CUSTOMER', 'EARNING', 'REWARD')
            ORDER BY l.ord LIMIT 1;
        END IF;
        IF v_any_earned AND FOUND THEN
""",
)
# Promo codes: a code on a line, or a CODE promotion (which then needs one).
FUNCTION = _replace_once(
    FUNCTION,
    """        SELECT l.promotion_id, p.type INTO v_found
        FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, code text)
        JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
        WHERE coalesce(l.code, '') <> '' AND p.type <> 'CODE'
        ORDER BY l.ord LIMIT 1;
        IF FOUND THEN
""",
    """        IF v_any_code THEN
            SELECT l.promotion_id, p.type INTO v_found
            FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, code text)
            JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = l.promotion_id
            WHERE coalesce(l.code, '') <> '' AND p.type <> 'CODE'
            ORDER BY l.ord LIMIT 1;
        END IF;
        IF v_any_code AND FOUND THEN
""",
)
FUNCTION = _replace_once(
    FUNCTION,
    """            LEFT JOIN promotions_promocode AS c ON c.org_id = p_org AND c.code = x.codes[1]
            ORDER BY x.first
""",
    """            LEFT JOIN promotions_promocode AS c ON c.org_id = p_org AND c.code = x.codes[1]
            WHERE v_code_promotion
            ORDER BY x.first
""",
)
FUNCTION = _replace_once(
    FUNCTION,
    "RETURN jsonb_build_object('id', v_redemption, 'customer', v_customer, 'lines', v_result);",
    "RETURN jsonb_build_object('id', v_redemption, 'customer', v_customer, 'lines', v_result,\n"
    "                                  'till', coalesce(v_till, ''));",
)

_DROP_19 = """DROP FUNCTION IF EXISTS redemption_record_v1(
    integer, bigint, text, text, text, text, text, text, text, timestamptz, numeric, text, jsonb, timestamptz,
    date, text, text, text, text
);"""
_DROP_21 = """DROP FUNCTION IF EXISTS redemption_record_v1(
    integer, bigint, text, text, text, text, text, text, text, timestamptz, numeric, text, jsonb, timestamptz,
    date, text, text, text, text, text, bigint
);"""


class Migration(migrations.Migration):
    dependencies = [("redemptions", "0021_redemption_till_code")]

    # Backwards: 0020's function again.
    operations = [
        migrations.RunPython(
            _EARN._on_postgresql(_DROP_19, FUNCTION), _EARN._on_postgresql(_DROP_21, _EARN.FUNCTION)
        )
    ]
