"""`redemption_record_v1` with one generic plan per statement, and without the statements that cannot apply.

Measured with callgrind on a single-user backend and with pg_stat_statements (docs/benchmarks.md): most
of the function's PostgreSQL time was not its statements' work but their preparation. PL/pgSQL's
plan cache planned most statements afresh on every call (their parameters made a custom plan look
cheaper than the generic one), and every statement executed pays its executor start-up (a join, an
aggregate, a sort each cost more to set up than to run on one cart line). So:

- `SET plan_cache_mode = force_generic_plan`: each statement is planned once per connection (as the
  evaluate functions of migration 0023 are). The setting holds inside the functions it calls
  (`redemption_instance_take_v1`, `redemption_window_v1`) and is restored on return.
- What the lines hold (a code, an earned instance, a wallet line naming none) is read by JSON path
  expressions, which PL/pgSQL evaluates without starting a statement.
- The promotions named are read by one loop, which finds the missing, the ended or not running, and
  an earned instance named on a POS or CODE promotion (0022 ran three statements for it).
- The loops and checks that cannot find anything are not started: the earned instances named (only
  when a line names one), the wallet lines naming none (only when there is such a line), the promo
  codes (only with a CODE promotion: 0022 filtered the rows, the statement still started), the Cart
  limits (only when a promotion of the cart has one), and the counters (only when a promotion has a
  Promotion, Customer, Code or resetting Earn limit; the resetting Earn limits' half of the window
  statement only when one exists). One statement reads which limits the cart's promotions have.

The answers, their order and the lock order are those of 0022's function: each skipped statement
would have found no row.
"""

import importlib

from django.db import migrations

_TILL = importlib.import_module("redemptions.migrations.0022_redemption_record_till")
_EARN = _TILL._EARN
_replace_once = _TILL._replace_once


def _between(text: str, start: str, end: str) -> str:
    """The part of `text` from `start` up to and including `end` (each found once)."""
    assert text.count(start) == 1, start
    begin = text.index(start)
    stop = text.index(end, begin) + len(end)
    return text[begin:stop]


def _guarded(text: str, start: str, end: str, condition: str) -> str:
    """`text` with its statements from `start` to `end` run only `IF condition`."""
    block = _between(text, start, end)
    return _replace_once(text, block, f"        IF {condition} THEN\n{block}        END IF;\n")


FUNCTION = _TILL.FUNCTION
FUNCTION = _replace_once(
    FUNCTION,
    ") RETURNS jsonb\nLANGUAGE plpgsql\n",
    ") RETURNS jsonb\nLANGUAGE plpgsql\nSET plan_cache_mode = force_generic_plan\n",
)
FUNCTION = _replace_once(
    FUNCTION,
    "    v_code_promotion boolean := false;\n",
    """    v_code_promotion boolean := false;
    v_any_unearned boolean;
    v_cart_limits boolean;
    v_counted_limits boolean;
    v_earn_windows boolean;
    v_moving_limits boolean;
    v_earned_refused int;
    v_earned_promotion text;
    v_earned_type text;
""",
)
# What the lines hold, as expressions PL/pgSQL evaluates without starting a statement (a line's code or
# instance is a non-empty string, as the service sends it; null or absent is none).
FUNCTION = _replace_once(
    FUNCTION,
    """    SELECT bool_or(coalesce(l.code, '') <> ''), bool_or(coalesce(l.earned, '') <> '')
    INTO v_any_code, v_any_earned
    FROM jsonb_to_recordset(p_lines) AS l(code text, earned text);
""",
    """    v_any_code := jsonb_path_exists(p_lines, '$[*] ? (@.code.type() == "string" && @.code != "")');
    v_any_earned := jsonb_path_exists(p_lines, '$[*] ? (@.earned.type() == "string" && @.earned != "")');
    v_any_unearned := jsonb_path_exists(p_lines, '$[*] ? (!(@.earned.type() == "string" && @.earned != ""))');
""",
)
# The promotions named: whether each exists, is running, and takes an earned instance, read by one loop
# (0022 ran three statements). The missing come first, in the order the lines name them first; then
# the others in id order (the first not running is refused, as before); a line naming an earned
# instance of a POS or CODE promotion is refused after that, the first such line first.
_promotions_loop = _between(
    FUNCTION,
    "        SELECT array_agg(x.promotion_id ORDER BY x.first) INTO v_taken\n",
    "            v_code_promotion := v_code_promotion OR v_row.type = 'CODE';\n        END LOOP;\n",
)
# 0022's checks of a promotion that exists (ended, not running) and its note of a CODE promotion.
_running = _between(
    _promotions_loop,
    "            IF v_row.end_date <= p_transaction_date THEN\n",
    "            v_code_promotion := v_code_promotion OR v_row.type = 'CODE';\n",
)
FUNCTION = _replace_once(
    FUNCTION,
    _promotions_loop,
    """        v_taken := ARRAY[]::text[];  -- the missing, until they are refused
        FOR v_row IN
            SELECT x.promotion_id, x.earned_first, p.id, p.type, p.active, p.start_date, p.end_date
            FROM (
                SELECT l.promotion_id, min(l.ord) AS first,
                       min(l.ord) FILTER (WHERE coalesce(l.earned, '') <> '') AS earned_first
                FROM jsonb_to_recordset(p_lines) AS l(ord int, promotion_id text, earned text)
                GROUP BY l.promotion_id
            ) AS x
            LEFT JOIN promotions_promotion AS p ON p.org_id = p_org AND p.id = x.promotion_id
            ORDER BY p.id IS NOT NULL, CASE WHEN p.id IS NULL THEN x.first END, p.id
        LOOP
            IF v_row.id IS NULL THEN
                v_taken := v_taken || v_row.promotion_id;
                CONTINUE;
            END IF;
            EXIT WHEN cardinality(v_taken) > 0;
"""
    + _running
    + """            IF v_row.earned_first IS NOT NULL AND v_row.type NOT IN ('CUSTOMER', 'EARNING', 'REWARD')
               AND (v_earned_refused IS NULL OR v_row.earned_first < v_earned_refused) THEN
                v_earned_refused := v_row.earned_first;
                v_earned_promotion := v_row.id;
                v_earned_type := v_row.type;
            END IF;
        END LOOP;
        IF cardinality(v_taken) > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'missing', 'ids', to_jsonb(v_taken))::text;
        END IF;
""",
)
FUNCTION = _replace_once(
    FUNCTION,
    _between(
        FUNCTION,
        "        IF v_any_earned THEN\n            SELECT l.promotion_id, p.type INTO v_found\n",
        "                                             'type', v_found.type)::text;\n        END IF;\n",
    ),
    """        IF v_earned_refused IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'PR001',
                MESSAGE = jsonb_build_object('error', 'earned_not_wallet', 'promotion', v_earned_promotion,
                                             'type', v_earned_type)::text;
        END IF;
""",
)
# Promo codes: the loop only with a CODE promotion (its rows were filtered by it).
FUNCTION = _replace_once(
    FUNCTION,
    "            WHERE v_code_promotion\n            ORDER BY x.first\n",
    "            ORDER BY x.first\n",
)
FUNCTION = _guarded(
    FUNCTION,
    "        FOR v_row IN\n            SELECT x.promotion_id, x.codes,",
    "            v_codes := v_codes || jsonb_build_object(v_row.promotion_id, v_row.code_id);\n        END LOOP;\n",
    "v_code_promotion",
)
FUNCTION = _guarded(
    FUNCTION,
    "        -- The earned instances the till named",
    "            v_taken := v_taken || v_row.earned;\n        END LOOP;\n",
    "v_any_earned",
)
FUNCTION = _guarded(
    FUNCTION,
    "        -- Wallet lines that name no instance:",
    "            v_chosen := v_chosen || jsonb_build_object(v_row.promotion_id, v_instance);\n        END LOOP;\n",
    "v_any_unearned",
)
# Which limits the cart's promotions have: before the Cart limits, which only then are checked.
_CART = "        -- Cart limits: the promotions in the order the lines name them first, each limit by level and kpi.\n"
FUNCTION = _replace_once(
    FUNCTION,
    _CART,
    """        SELECT coalesce(bool_or(r.level = 'Cart'), false),
               coalesce(bool_or(r.level IN ('Promotion', 'Customer', 'Code')), false),
               coalesce(bool_or(r.level = 'Earn' AND r.window_kind IN ('FIXED', 'MOVING')), false),
               coalesce(bool_or(r.window_kind = 'MOVING'), false)
        INTO v_cart_limits, v_counted_limits, v_earn_windows, v_moving_limits
        FROM promotions_promotionrestriction AS r
        WHERE r.promotion_id IN (SELECT l.promotion_id FROM jsonb_to_recordset(p_lines) AS l(promotion_id text));

"""
    + _CART,
)
# The end of a limit's refusal (the first after a start: here the Cart limits').
_LIMIT_REFUSED = (
    "                                             'limit', v_found.\"limit\")::text;\n        END IF;\n"
)
FUNCTION = _guarded(FUNCTION, _CART, _LIMIT_REFUSED, "v_cart_limits")
# The counters: only with a limit they count. Without a MOVING limit (whose check reads the windows
# again), the windows are not gathered into JSON for a second statement to take: one statement computes
# them and takes the counters (with the resetting Earn limits' half only when the cart has one).
_WINDOWS_START = (
    "        SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.restriction_id, x.scope), '[]'::jsonb),\n"
)
_INNER_START = "            SELECT r.id AS restriction_id,\n"
_EARN_HALF_START = "            UNION ALL\n            -- An Earn limit whose window resets:"
_INNER_END = "            WHERE r.level = 'Earn' AND r.window_kind IN ('FIXED', 'MOVING')\n"
_windows = _between(FUNCTION, _WINDOWS_START, _INNER_END + "        ) AS x;\n")
_counters = _between(FUNCTION, "        WITH limits AS (\n", _LIMIT_REFUSED)
_inner = _between(_windows, _INNER_START, _INNER_END)
_taken = _between(_counters, "        taken AS (\n", _LIMIT_REFUSED)


def _windows_and_counters(inner: str) -> str:
    """One statement: the windows of `inner`'s rows (restriction_id, scope, amount, limit, key) taken."""
    return (
        "        WITH deltas AS (\n"
        '            SELECT x.restriction_id, x.scope, x.key AS window_start, x.amount, x."limit"\n'
        "            FROM (\n" + inner + "            ) AS x\n"
        "        ),\n" + _taken
    )


FUNCTION = _replace_once(
    FUNCTION,
    _windows + _counters,
    "        IF v_moving_limits THEN\n"
    + _windows
    + _counters
    + "        ELSIF v_earn_windows THEN\n"
    + _windows_and_counters(_inner)
    + "        ELSE\n"
    + _windows_and_counters(_inner[: _inner.index(_EARN_HALF_START)])
    + "        END IF;\n",
)
FUNCTION = _guarded(
    FUNCTION,
    "        IF v_moving_limits THEN\n" + _WINDOWS_START,
    "                                             'limit', v_found.\"limit\")::text;\n            END IF;\n        END IF;\n",
    "v_counted_limits OR v_earn_windows",
)


class Migration(migrations.Migration):
    dependencies = [("redemptions", "0023_evaluation_documents_as_text")]

    # Backwards: 0022's function again (the same signature: replaced in place).
    operations = [migrations.RunPython(_EARN._on_postgresql(FUNCTION), _EARN._on_postgresql(_TILL.FUNCTION))]
