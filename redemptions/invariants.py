"""The invariants of the stored data, checked by SQL: what the services promise always holds, whatever
the order, concurrency or failures of the requests that wrote it.

`violations(org_ids)` returns every violation (empty when all hold) as readable strings, each
`<invariant>: <the offending row>`, the invariant one of `INVARIANTS`. `org_ids` limits the checks to
those orgs' rows; None checks every org. It only reads. Used by `manage.py check_invariants` (on
production data), by the random histories of tests/invariants (after every step) and by
bench/soak.py (after its run). Every stored counter is compared with the facts it counts, and every
limit with what was recorded:

- RedemptionCounter (Customer and Promotion limits) == the non-reversed redemption lines it counts,
  window by window (each line in the window its transaction date falls in);
  each within its limit, holding its restriction's limit, in its restriction's org;
- EarnedPromotion redemption_count / transaction_count / discount_total == its non-reversed lines;
  within its Earn limits (REDEMPTION defaults to 1: single use); REDEEMED exactly when one of them is
  used up (for ACTIVE and REDEEMED instances); a REVOKED instance has no redemption that counts;
- Cart limits held by every recorded transaction; maxIssuancePerCustomer and maxEarningPerCustomer
  held by the instances that are not revoked (an unlocked issued instance counts as both);
- a LOCKED instance (issued, not yet earned) is an issued EARNING instance that nothing redeemed;
- a transaction's promotions redeemed (`RedemptionPromotion`) are exactly its lines' promotions, each
  once, dated as the transaction;
- a wallet line redeems an instance of its own promotion held by the redeeming customer (an
  anonymous sale, without a customer, holds none), a POS or CODE line none; an anonymous sale counts
  towards Promotion limits, never a Customer limit;
- RedemptionCounter.reserved == what the open carts hold of it, window by window; under
  REDEMPTION_WITH_CART_EVALUATION `used + reserved <= limit`; an open cart's unit is reserved in
  the window its evaluation fell in (a MOVING limit: its day's row); a cart is REDEEMED exactly when
  it names the redemption bound to its evaluation, and a bound redemption is of its evaluation's
  customer (docs/cart-locks.md);
- nothing crosses orgs: every row that belongs to an org references only rows of the same org
  (derived from the models, so a new foreign key is covered without editing this file), an API
  client's audit events are in its org, and every redemption and reversal has exactly one audit
  event, in its own org.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.db import connection
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Cast

from promotions.models import (
    ApiClient,
    AuditEvent,
    Organization,
    PromoCode,
    Promotion,
    PromotionRestriction,
    PromotionType,
)
from redemptions.models import (
    CartLock,
    CartLockUnit,
    Evaluation,
    Redemption,
    RedemptionCounter,
    RedemptionLine,
    RedemptionPromotion,
    RedemptionReversal,
)
from wallets.models import Customer, EarnedPromotion

APPS = ("promotions", "wallets", "redemptions")
WALLET_TYPES = tuple(str(value) for value in PromotionType.WALLET_TYPES)  # spelled into the SQL below

T = {
    "org": Organization._meta.db_table,
    "promotion": Promotion._meta.db_table,
    "restriction": PromotionRestriction._meta.db_table,
    "earned": EarnedPromotion._meta.db_table,
    "redemption": Redemption._meta.db_table,
    "line": RedemptionLine._meta.db_table,
    "reversal": RedemptionReversal._meta.db_table,
    "redeemed": RedemptionPromotion._meta.db_table,
    "counter": RedemptionCounter._meta.db_table,
    "lock": CartLock._meta.db_table,
    "unit": CartLockUnit._meta.db_table,
    "evaluation": Evaluation._meta.db_table,
    "audit": AuditEvent._meta.db_table,
    "customer": Customer._meta.db_table,
    "client": ApiClient._meta.db_table,
    "code": PromoCode._meta.db_table,
}
IN_ORGS = "(%(orgs)s::bigint[] IS NULL OR {column} = ANY(%(orgs)s::bigint[]))"

# A limit that counts over the whole life (its window never resets).
LIFETIME = "window_kind NOT IN ('FIXED', 'MOVING')"

# The non-reversed lines of the orgs' redemptions, with the redeeming customer.
LIVE_LINES = f"""
    SELECT l.*, red.customer_id, red.transaction_date
    FROM {T["line"]} l JOIN {T["redemption"]} red ON red.id = l.redemption_id
    WHERE NOT EXISTS (SELECT 1 FROM {T["reversal"]} rv WHERE rv.redemption_id = red.id)
      AND {IN_ORGS.format(column="red.org_id")}
"""

# What one kpi measures over a group of lines.
KPI_MEASURE = """CASE {kpi}
    WHEN 'REDEMPTION' THEN sum({lines}.redemption_count)::numeric
    WHEN 'DISCOUNT' THEN sum({lines}.discount)
    ELSE count(DISTINCT {lines}.redemption_id)::numeric END"""

SQL_CHECKS = {
    "counter equals the non-reversed redemptions it counts, within its limit": f"""
        WITH live AS ({LIVE_LINES}),
        facts AS (
            SELECT r.id AS restriction_id,
                   CASE r.level WHEN 'Customer' THEN live.customer_id::text
                                WHEN 'Code' THEN 'code:' || live.promo_code_id::text
                                WHEN 'Earn' THEN 'earn:' || live.earned_promotion_id
                                ELSE '' END AS scope,
                   w.key AS window_start,
                   {KPI_MEASURE.format(kpi="r.kpi", lines="live")} AS used
            FROM {T["restriction"]} r JOIN live ON live.promotion_id = r.promotion_id
            JOIN {T["promotion"]} p ON p.id = r.promotion_id
            JOIN {T["org"]} o ON o.id = p.org_id
            -- Each line in the window its transaction date falls in (a MOVING limit: its day).
            CROSS JOIN LATERAL redemption_window_v1(
                r.window_kind, r.window_cycle, r.window_days, r.window_week_start, r.window_anchor_ms,
                p.start_date, o.timezone, live.transaction_date
            ) AS w
            -- An anonymous sale (no customer) counts towards Promotion limits only; a line redeemed
            -- through a promo code towards its code's Code limits; a line of an earned instance towards
            -- its instance's Earn limits whose window resets (a lifetime one is the instance's own).
            WHERE r.level = 'Promotion' OR (r.level = 'Customer' AND live.customer_id IS NOT NULL)
               OR (r.level = 'Code' AND live.promo_code_id IS NOT NULL)
               OR (r.level = 'Earn' AND r.window_kind IN ('FIXED', 'MOVING')
                   AND coalesce(live.earned_promotion_id, '') <> '')
            GROUP BY r.id, 2, 3
        ),
        counters AS (
            SELECT * FROM {T["counter"]} c WHERE {IN_ORGS.format(column="c.org_id")}
        )
        SELECT coalesce(c.restriction_id, f.restriction_id) AS restriction_id,
               coalesce(c.scope, f.scope) AS scope, coalesce(c.window_start, f.window_start) AS window_start,
               c.used AS counter, f.used AS facts,
               r."limit" AS restriction_limit, c."limit" AS counter_limit
        FROM counters c FULL JOIN facts f
          ON f.restriction_id = c.restriction_id AND f.scope = c.scope AND f.window_start = c.window_start
        JOIN {T["restriction"]} r ON r.id = coalesce(c.restriction_id, f.restriction_id)
        WHERE coalesce(c.used, 0) <> coalesce(f.used, 0) OR coalesce(f.used, 0) > r."limit"
           OR c.used > c."limit" OR c."limit" <> r."limit" OR r.level NOT IN ('Customer', 'Promotion', 'Code', 'Earn')
           OR (r.level = 'Earn' AND r.window_kind NOT IN ('FIXED', 'MOVING'))
    """,
    "counter's reserved equals its open carts' units; used plus reserved within the limit (cart-evaluation orgs)": f"""
        WITH held AS (
            SELECT u.restriction_id, u.scope, u.window_start, sum(u.amount) AS reserved
            FROM {T["unit"]} u JOIN {T["lock"]} k ON k.evaluation_id = u.lock_id
            WHERE k.status = 'OPEN' AND u.earned_promotion_id IS NULL AND u.restriction_id IS NOT NULL
              AND {IN_ORGS.format(column="k.org_id")}
            GROUP BY 1, 2, 3
        ),
        counters AS (
            SELECT * FROM {T["counter"]} c WHERE {IN_ORGS.format(column="c.org_id")}
        )
        SELECT coalesce(c.restriction_id, h.restriction_id) AS restriction_id,
               coalesce(c.scope, h.scope) AS scope, coalesce(c.window_start, h.window_start) AS window_start,
               c.reserved AS counter, h.reserved AS held, c.used, c."limit", o.redemption_strategy
        FROM counters c FULL JOIN held h
          ON h.restriction_id = c.restriction_id AND h.scope = c.scope AND h.window_start = c.window_start
        LEFT JOIN {T["org"]} o ON o.id = c.org_id
        WHERE coalesce(c.reserved, 0) <> coalesce(h.reserved, 0)
           OR (o.redemption_strategy = 'REDEMPTION_WITH_CART_EVALUATION' AND c.used + c.reserved > c."limit")
    """,
    "an open cart's unit is reserved in the window its evaluation fell in": f"""
        SELECT u.lock_id, u.restriction_id, u.scope, u.window_start, w.key AS evaluation_window, r.window_kind
        FROM {T["unit"]} u JOIN {T["lock"]} k ON k.evaluation_id = u.lock_id
        JOIN {T["restriction"]} r ON r.id = u.restriction_id
        JOIN {T["promotion"]} p ON p.id = r.promotion_id
        JOIN {T["org"]} o ON o.id = p.org_id
        CROSS JOIN LATERAL redemption_window_v1(
            r.window_kind, r.window_cycle, r.window_days, r.window_week_start, r.window_anchor_ms,
            p.start_date, o.timezone, k.created_at
        ) AS w
        WHERE k.status = 'OPEN' AND u.earned_promotion_id IS NULL AND {IN_ORGS.format(column="k.org_id")}
          AND u.window_start <> w.key
    """,
    "a cart is REDEEMED exactly when it names the redemption bound to its evaluation, of its customer": f"""
        SELECT k.evaluation_id, k.status, k.redemption_id, red.evaluation_id AS redemption_evaluation,
               k.customer_id, red.customer_id AS redemption_customer
        FROM {T["lock"]} k LEFT JOIN {T["redemption"]} red ON red.id = k.redemption_id
        WHERE {IN_ORGS.format(column="k.org_id")}
          AND ((k.status = 'REDEEMED') IS DISTINCT FROM (k.redemption_id IS NOT NULL)
               OR red.evaluation_id IS DISTINCT FROM CASE WHEN k.redemption_id IS NULL THEN NULL ELSE k.evaluation_id END
               OR (red.id IS NOT NULL AND red.customer_id IS DISTINCT FROM k.customer_id))
    """,
    "a redemption bound to an evaluation is of the evaluation's customer": f"""
        SELECT red.id, red.customer_id, ev.customer_id AS evaluation_customer
        FROM {T["redemption"]} red JOIN {T["evaluation"]} ev ON ev.id = red.evaluation_id
        WHERE {IN_ORGS.format(column="red.org_id")} AND ev.customer_id IS DISTINCT FROM red.customer_id
    """,
    "counter in its restriction's org, scoped to a customer of that org (Customer), to a code of its promotion (Code), to an instance of its promotion (Earn) or to all (Promotion)": f"""
        SELECT c.id, c.org_id, p.org_id AS promotion_org, r.level, c.scope
        FROM {T["counter"]} c JOIN {T["restriction"]} r ON r.id = c.restriction_id
        JOIN {T["promotion"]} p ON p.id = r.promotion_id
        WHERE {IN_ORGS.format(column="c.org_id")}
          AND (c.org_id <> p.org_id
               OR (r.level = 'Promotion' AND c.scope <> '')
               OR (r.level = 'Customer' AND NOT EXISTS (
                   SELECT 1 FROM {T["customer"]} cu WHERE cu.id::text = c.scope AND cu.org_id = c.org_id))
               OR (r.level = 'Code' AND NOT EXISTS (
                   SELECT 1 FROM {T["code"]} pc
                   WHERE 'code:' || pc.id::text = c.scope AND pc.promotion_id = r.promotion_id
                     AND pc.org_id = c.org_id))
               OR (r.level = 'Earn' AND NOT EXISTS (
                   SELECT 1 FROM {T["earned"]} e
                   WHERE 'earn:' || e.id = c.scope AND e.promotion_id = r.promotion_id
                     AND e.org_id = c.org_id)))
    """,
    "a line's promo code is a code of the line's promotion, which is a CODE promotion": f"""
        SELECT l.id, l.promotion_id, p.type, l.promo_code_id, pc.promotion_id AS code_promotion
        FROM {T["line"]} l JOIN {T["redemption"]} red ON red.id = l.redemption_id
        JOIN {T["promotion"]} p ON p.id = l.promotion_id
        JOIN {T["code"]} pc ON pc.id = l.promo_code_id
        WHERE {IN_ORGS.format(column="red.org_id")}
          AND (pc.promotion_id <> l.promotion_id OR p.type <> 'CODE')
    """,
    "earned instance counters equal its non-reversed lines, within its Earn limits, REDEEMED exactly when used up": f"""
        WITH live AS ({LIVE_LINES}),
        usage AS (
            SELECT earned_promotion_id AS id, sum(redemption_count) AS redemptions,
                   count(DISTINCT redemption_id) AS transactions, sum(discount) AS discount
            FROM live WHERE earned_promotion_id IS NOT NULL GROUP BY 1
        ),
        -- Lifetime Earn limits only (one whose window resets is a counter of scope earn:<id>); an
        -- instance without any Earn REDEMPTION limit is single-use.
        limits AS (
            SELECT promotion_id, bool_or(kpi = 'REDEMPTION') AS has_redemption,
                   max("limit") FILTER (WHERE kpi = 'REDEMPTION' AND {LIFETIME}) AS redemptions,
                   max("limit") FILTER (WHERE kpi = 'TRANSACTION' AND {LIFETIME}) AS transactions,
                   max("limit") FILTER (WHERE kpi = 'DISCOUNT' AND {LIFETIME}) AS discount
            FROM {T["restriction"]} WHERE level = 'Earn' GROUP BY 1
        ),
        instances AS (
            SELECT e.id, e.status, e.redemption_count, e.transaction_count, e.discount_total,
                   coalesce(u.redemptions, 0) AS u_redemptions, coalesce(u.transactions, 0) AS u_transactions,
                   coalesce(u.discount, 0) AS u_discount,
                   CASE WHEN lim.has_redemption THEN lim.redemptions ELSE 1 END AS max_redemptions, lim.transactions AS max_transactions,
                   lim.discount AS max_discount
            FROM {T["earned"]} e LEFT JOIN usage u ON u.id = e.id
            LEFT JOIN limits lim ON lim.promotion_id = e.promotion_id
            WHERE {IN_ORGS.format(column="e.org_id")}
        )
        SELECT * FROM instances i
        WHERE (i.redemption_count, i.transaction_count, i.discount_total)
                  IS DISTINCT FROM (i.u_redemptions, i.u_transactions, i.u_discount)
           OR i.redemption_count > coalesce(i.max_redemptions, i.redemption_count)
           OR i.transaction_count > coalesce(i.max_transactions, i.transaction_count)
           OR i.discount_total > coalesce(i.max_discount, i.discount_total)
           OR (i.status IN ('ACTIVE', 'REDEEMED') AND (i.status = 'REDEEMED') IS DISTINCT FROM (
                   i.redemption_count >= coalesce(i.max_redemptions, i.redemption_count + 1)
                   OR i.transaction_count >= coalesce(i.max_transactions, i.transaction_count + 1)
                   OR i.discount_total >= coalesce(i.max_discount, i.discount_total + 1)))
           OR (i.status = 'REVOKED' AND i.u_transactions > 0)
    """,
    "every recorded transaction within its Cart limits": f"""
        SELECT red.id AS redemption_id, r.promotion_id, r.kpi, r."limit",
               {KPI_MEASURE.format(kpi="r.kpi", lines="l")} AS used
        FROM {T["line"]} l JOIN {T["redemption"]} red ON red.id = l.redemption_id
        JOIN {T["restriction"]} r ON r.promotion_id = l.promotion_id AND r.level = 'Cart'
        WHERE {IN_ORGS.format(column="red.org_id")}
        GROUP BY red.id, r.id
        HAVING {KPI_MEASURE.format(kpi="r.kpi", lines="l")} > r."limit"
    """,
    "maxIssuancePerCustomer and maxEarningPerCustomer held by the instances not revoked": f"""
        SELECT e.promotion_id, e.customer_id,
               count(*) FILTER (WHERE e.kind = 'ISSUED') AS issued,
               count(*) FILTER (WHERE e.kind = 'EARNED' OR e.unlocked_from_id <> '') AS earned,
               p.max_issuance_per_customer, p.max_earning_per_customer
        FROM {T["earned"]} e JOIN {T["promotion"]} p ON p.id = e.promotion_id
        WHERE e.status <> 'REVOKED' AND {IN_ORGS.format(column="e.org_id")}
        GROUP BY e.promotion_id, e.customer_id, p.id
        HAVING (p.max_issuance_per_customer <> -1
                AND count(*) FILTER (WHERE e.kind = 'ISSUED') > p.max_issuance_per_customer)
            OR (coalesce(p.max_earning_per_customer, -1) <> -1
                AND count(*) FILTER (WHERE e.kind = 'EARNED' OR e.unlocked_from_id <> '')
                    > p.max_earning_per_customer)
    """,
    "a LOCKED instance is an issued EARNING instance, never unlocked nor redeemed": f"""
        SELECT e.id, e.kind, p.type, e.unlocked_from_id, e.redemption_count, e.transaction_count
        FROM {T["earned"]} e JOIN {T["promotion"]} p ON p.id = e.promotion_id
        WHERE e.locked AND {IN_ORGS.format(column="e.org_id")}
          AND (e.kind <> 'ISSUED' OR p.type <> 'EARNING' OR e.unlocked_from_id <> ''
               OR e.redemption_count > 0 OR e.transaction_count > 0 OR e.discount_total > 0)
    """,
    "a wallet line redeems the customer's own instance of its promotion, a POS or CODE line none": f"""
        SELECT l.id, l.promotion_id, p.type, l.earned_promotion_id, red.customer_id,
               e.customer_id AS instance_customer, e.promotion_id AS instance_promotion
        FROM {T["line"]} l JOIN {T["redemption"]} red ON red.id = l.redemption_id
        JOIN {T["promotion"]} p ON p.id = l.promotion_id
        LEFT JOIN {T["earned"]} e ON e.id = l.earned_promotion_id
        WHERE {IN_ORGS.format(column="red.org_id")}
          AND CASE WHEN p.type IN {WALLET_TYPES}
                   THEN e.id IS NULL OR e.customer_id IS DISTINCT FROM red.customer_id
                        OR e.promotion_id <> l.promotion_id
                   ELSE l.earned_promotion_id IS NOT NULL END
    """,
    "a transaction's promotions redeemed are those of its lines, once each, dated as it": f"""
        SELECT coalesce(l.redemption_id, p.redemption_id) AS redemption_id,
               coalesce(l.promotion_id, p.promotion_id) AS promotion_id,
               l.redemption_id IS NOT NULL AS has_lines, p.transaction_date, red.transaction_date AS expected
        FROM (SELECT DISTINCT redemption_id, promotion_id FROM {T["line"]}) l
        FULL JOIN {T["redeemed"]} p ON p.redemption_id = l.redemption_id AND p.promotion_id = l.promotion_id
        JOIN {T["redemption"]} red ON red.id = coalesce(l.redemption_id, p.redemption_id)
        WHERE {IN_ORGS.format(column="red.org_id")}
          AND (l.redemption_id IS NULL OR p.redemption_id IS NULL
               OR p.transaction_date <> red.transaction_date)
    """,
    "an API client's audit events in its own org": f"""
        SELECT ev.id, ev.org_id, ev.action, ev.actor_id, a.org_id AS client_org
        FROM {T["audit"]} ev JOIN {T["client"]} a ON a.id::text = ev.actor_id
        WHERE ev.actor_type = 'API_CLIENT' AND a.org_id <> ev.org_id AND {IN_ORGS.format(column="ev.org_id")}
    """,
    "one audit event per redemption and per reversal, in its org": f"""
        SELECT red.id, red.org_id, x.action, x.events, x.elsewhere
        FROM {T["redemption"]} red
        CROSS JOIN LATERAL (
            SELECT v.action,
                   count(*) FILTER (WHERE a.org_id = red.org_id) AS events,
                   count(*) FILTER (WHERE a.org_id <> red.org_id) AS elsewhere
            FROM (VALUES ('redemption.record'), ('redemption.reverse')) AS v(action)
            LEFT JOIN {T["audit"]} a ON a.action = v.action AND a.object_type = 'Redemption'
                 AND a.object_id = red.id::text
            GROUP BY v.action
        ) x
        WHERE {IN_ORGS.format(column="red.org_id")}
          AND (x.elsewhere > 0 OR x.events <> CASE
               WHEN x.action = 'redemption.record' THEN 1
               WHEN EXISTS (SELECT 1 FROM {T["reversal"]} rv WHERE rv.redemption_id = red.id) THEN 1
               ELSE 0 END)
    """,
}


def _sql_violations(org_ids: list[int] | None) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for name, statement in SQL_CHECKS.items():
            cursor.execute(statement, {"orgs": org_ids})
            columns = [c.name for c in cursor.description]
            found += [f"{name}: {dict(zip(columns, row, strict=True))}" for row in cursor.fetchall()[:5]]
    return found


def _has_org(model) -> bool:
    return any(f.name == "org" and f.is_relation for f in model._meta.concrete_fields)


def _org_references() -> Iterable[tuple[type, str, str]]:
    """(model, path to one org, path to another org) for every pair of rows that must share an org:
    a model with `org` and each foreign key to a model with `org`; a model without `org` and each pair
    of its foreign keys to models with `org` (the first against each other one)."""
    for model in apps.get_models():
        if model._meta.app_label not in APPS:
            continue
        keys = [
            f.name
            for f in model._meta.concrete_fields
            if f.many_to_one and f.name != "org" and _has_org(f.related_model)
        ]
        if _has_org(model):
            yield from ((model, "org_id", f"{key}__org_id") for key in keys)
        elif len(keys) > 1:
            yield from ((model, f"{keys[0]}__org_id", f"{key}__org_id") for key in keys[1:])


def _cross_org_query(org_ids: list[int] | None) -> tuple[str, tuple]:
    """One UNION query over every reference: (label, row id) of each row whose org differs. Each row is
    read from its own org's side (`one`), so only the orgs' own rows are scanned."""
    queries = []
    for model, one, other in _org_references():
        rows = model._default_manager.filter(Q(**{f"{other}__lt": F(one)}) | Q(**{f"{other}__gt": F(one)}))
        if org_ids is not None:
            rows = rows.filter(**{f"{one}__in": org_ids})
        label = f"{model._meta.label}: {one} vs {other}"
        queries.append(rows.order_by().values_list(Value(label), Cast("pk", TextField())))
    union = queries[0].union(*queries[1:], all=True)[:20]
    return union.query.get_compiler(connection=connection).as_sql()


_compiled: dict[tuple[int, ...] | None, tuple[str, tuple]] = {}


def _cross_org_violations(org_ids: list[int] | None) -> list[str]:
    # Compiled once per set of orgs: the random histories check after every step.
    key = tuple(org_ids) if org_ids is not None else None
    if key not in _compiled:
        _compiled.clear()
        _compiled[key] = _cross_org_query(org_ids)
    statement, params = _compiled[key]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [f"{CROSS_ORG}: {label} differ in row {pk}" for label, pk in cursor.fetchall()]


CROSS_ORG = "nothing crosses orgs"
# Every invariant checked, in the order `violations` reports them.
INVARIANTS = (*SQL_CHECKS, CROSS_ORG)


def violations(org_ids: list[int] | None = None) -> list[str]:
    """Every invariant violated by the stored rows of `org_ids` (every org when None): a few rows per
    invariant (5 per SQL check, 20 crossing orgs), each `<invariant>: <row>`."""
    return _sql_violations(org_ids) + _cross_org_violations(org_ids)
