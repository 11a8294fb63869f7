"""Each index of wallets_earnedpromotion is there for a query the app runs: on a table of 20,000 rows with
fresh statistics, the app's own statements (recorded as it runs them, or taken from the admin's
querysets) are planned by PostgreSQL, and each reads the table by the index it is kept for, never by a
sequential scan. The table has no other index: every one is paid for by each row a bulk issue writes
(docs/architecture.md, "The earned promotions' indexes")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.db import connection
from django.db.models.deletion import ProtectedError, RestrictedError
from django.test import RequestFactory
from django.utils import timezone

from promotions.audit import Actor
from promotions.models import PromotionType
from promotions.rules import org_rules
from promotions.selectors import engine_settings_for
from redemptions.evaluation import evaluation_context
from tests.factories import PromotionFactory, UserFactory
from wallets.models import Customer, EarnedPromotion
from wallets.selectors import wallet_get
from wallets.services import (
    EarnRequest,
    RevokeRequest,
    bulk_job_preview,
    earned_promotions_earn,
    earned_promotions_expire,
    earned_promotions_issue,
    earned_promotions_redate,
    earned_promotions_revoke,
)

TABLE = EarnedPromotion._meta.db_table
CUSTOMERS = 1_000
PROMOTIONS = 20  # every customer holds one instance of each: 20,000 rows
PRIMARY_KEY = "wallets_earnedpromotion_pkey"
IDEMPOTENCY_KEY = "earned_promotion_idempotency_key"
CUSTOMER_STATUS_TILL = "earned_customer_status_till"
STATUS_TILL = "earned_status_valid_till"
ORG_TILL = "earned_org_valid_till"
KEPT = {PRIMARY_KEY, IDEMPOTENCY_KEY, CUSTOMER_STATUS_TILL, STATUS_TILL, ORG_TILL}


@dataclass
class Table:
    org: object
    customers: list[Customer]
    promotions: list  # CUSTOMER and EARNING in turn
    now: dt.datetime


@pytest.fixture
def table(org) -> Table:
    """20,000 instances over 1,000 customers and 20 promotions, as the services would leave them: most
    ACTIVE, some REDEEMED, EXPIRED or REVOKED, valid for up to 100 days, one in a hundred ACTIVE but
    past its validTill (due for the expiry job); then ANALYZE, as autovacuum would after a bulk load."""
    now = timezone.now()
    customers = Customer.objects.bulk_create(
        [Customer(org=org, mobile=f"9{n:09d}") for n in range(CUSTOMERS)], batch_size=2000
    )
    promotions = [
        PromotionFactory(
            org=org,
            type=PromotionType.EARNING if n % 2 else PromotionType.CUSTOMER,
            max_issuance_per_customer=1,
            max_earning_per_customer=5,
        )
        for n in range(PROMOTIONS)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TABLE} (id, org_id, customer_id, promotion_id, kind, earned_from_type,
                earned_from_id, seq, event_time, event_details, valid_till, status, redemption_count,
                transaction_count, discount_total, created_at, locked, unlocked_from_id, unlocked_from_type)
            SELECT lpad(to_hex(g), 24, '0'), %(org)s, (%(customers)s::bigint[])[1 + g %% %(n)s],
                (%(promotions)s::text[])[1 + g / %(n)s], 'ISSUED', 'BULK_ISSUE', 'context-' || g, 1,
                %(now)s, '{{}}',
                CASE WHEN g %% 100 = 0 OR g %% 20 = 3 THEN %(now)s - interval '1 day'
                     ELSE %(now)s + (g %% 100) * interval '1 day' END,
                CASE g %% 20 WHEN 1 THEN 'REDEEMED' WHEN 2 THEN 'REDEEMED' WHEN 3 THEN 'EXPIRED'
                     WHEN 4 THEN 'REVOKED' ELSE 'ACTIVE' END,
                0, 0, 0, %(now)s, false, '', ''
            FROM generate_series(0, %(rows)s - 1) AS g
            """,
            {
                "org": org.pk,
                "customers": [c.pk for c in customers],
                "promotions": [p.pk for p in promotions],
                "n": CUSTOMERS,
                "now": now,
                "rows": CUSTOMERS * PROMOTIONS,
            },
        )
        cursor.execute(f"ANALYZE {TABLE}, {Customer._meta.db_table}, promotions_promotion")
    return Table(org, customers, promotions, now)


# --- what the app asks ---------------------------------------------------------------------------


class _Recorder:
    """The statements a block runs on the table that can be planned (not its COPY or INSERTs)."""

    def __init__(self):
        self.statements: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        if TABLE in sql and sql.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE"):
            self.statements.append((sql, params))
        return execute(sql, params, many, context)


def recorded(run: Callable[[], object]) -> list[tuple[str, object]]:
    recorder = _Recorder()
    with connection.execute_wrapper(recorder):
        run()
    return recorder.statements


def admin_list(t: Table, query: dict) -> list[tuple[str, object]]:
    """The first page of the earned promotions' admin list as its changelist queries it."""
    request = RequestFactory().get("/", query)
    request.user = UserFactory(org=t.org, is_superuser=True)
    changelist = admin.site._registry[EarnedPromotion].get_changelist_instance(request)
    return [changelist.queryset[:100].query.sql_with_params()]


def wallet_read(t: Table):
    return recorded(lambda: wallet_get(customer=t.customers[7], limit=50))


def wallet_read_active(t: Table):
    return recorded(lambda: wallet_get(customer=t.customers[7], limit=50, active_only=True))


def evaluation_wallet(t: Table):
    """An evaluation reads the wallet inside `evaluation_context_v1` (redemptions migration 0023): the
    query that function runs, taken from its definition, with this customer, org and moment."""
    org = t.org
    rules = org_rules(org.pk, org.rules_version)
    settings = engine_settings_for(org)
    calls = []

    def record(execute, sql, params, many, context):
        calls.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        evaluation_context(
            org=org, customer_id=t.customers[7].pk, rules=rules, store=None, settings=settings, now=t.now
        )
    assert any("evaluation_context_v1(" in sql for sql in calls), calls
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'evaluation_context_v1'")
        (source,) = cursor.fetchone()
    query = source.split("RETURN QUERY", 1)[1].split(";", 1)[0]
    assert TABLE in query, query
    for name in ("p_customer", "p_org", "p_now"):
        query = query.replace(name, f"%({name})s")
    return [(query, {"p_customer": t.customers[7].pk, "p_org": org.pk, "p_now": t.now})]


def issue(t: Table):
    """An issue with maxIssuancePerCustomer: the replay probe and the limit probe per customer."""
    ids = [c.pk for c in t.customers[:200]]
    return recorded(
        lambda: earned_promotions_issue(
            promotion=t.promotions[0], customer_ids=ids, context_id="again", actor=Actor.system("test")
        )
    )


def earn(t: Table):
    """An earn with maxEarningPerCustomer: the earn's own instances, the limit, the LOCKED ones."""
    request = EarnRequest(promotion=t.promotions[1], earn_count=1, earned_from_id="earn-1")
    return recorded(
        lambda: earned_promotions_earn(
            customer=t.customers[7],
            requests=[request],
            earned_from_type="ACTIVITY",
            event_time=t.now,
            event_details={},
            actor=Actor.system("test"),
        )
    )


def bulk_job_preview_issue(t: Table):
    values = [str(c.pk) for c in t.customers[:300]]
    return recorded(
        lambda: bulk_job_preview(
            org=t.org,
            kind="ISSUE",
            promotion=t.promotions[0],
            identifier_type="id",
            values=values,
            params={"contextId": "context-1"},
        )
    )


def revoke(t: Table):
    customer = t.customers[7]
    held = EarnedPromotion.objects.filter(customer=customer, promotion=t.promotions[2]).values_list(
        "pk", flat=True
    )
    details = [RevokeRequest(promotion_id=t.promotions[2].pk, earn_ids=list(held))]
    return recorded(
        lambda: earned_promotions_revoke(customer=customer, details=details, actor=Actor.system("test"))
    )


def expiry(t: Table):
    return recorded(lambda: earned_promotions_expire(now=t.now))


def expiry_of_one_org(t: Table):
    return recorded(lambda: earned_promotions_expire(org=t.org, now=t.now))


def redate(t: Table):
    promotion = t.promotions[2]
    promotion.end_date = t.now + dt.timedelta(days=200)
    promotion.save(update_fields=["end_date"])
    return recorded(lambda: earned_promotions_redate(promotion=promotion))


def admin_default_page(t: Table):
    return admin_list(t, {})


def admin_customer_filter(t: Table):
    return admin_list(t, {"customer": str(t.customers[7].pk)})


def admin_search_instance_id(t: Table):
    return admin_list(t, {"q": instance_id(0xAB)})  # not all digits: not also a customer id


def admin_search_customer_id(t: Table):
    return admin_list(t, {"q": str(t.customers[7].pk)})


def admin_search_promotion_name(t: Table):
    return admin_list(t, {"q": t.promotions[3].name})


def promotion_delete(t: Table):
    """Deleting a promotion (the admin allows it): the PROTECT check on its instances."""

    def run():
        with pytest.raises((ProtectedError, RestrictedError)):
            t.promotions[4].delete()

    return recorded(run)


def customer_delete(t: Table):
    """Deleting a customer (the admin allows it): the PROTECT check on their instances."""

    def run():
        with pytest.raises((ProtectedError, RestrictedError)):
            t.customers[7].delete()

    return recorded(run)


def instance_id(n: int) -> str:
    """The id the table's fixture gave its `n`th row."""
    return f"{n:x}".rjust(24, "0")


# name: (the app's statements for it, the indexes they may read the table by, the index it is the
# reason to keep). A statement may read by several (a BitmapOr of two conditions, a BitmapAnd the
# planner finds cheaper), never by a sequential scan.
QUERIES = {
    "wallet read (API, admin customer page)": (wallet_read, {CUSTOMER_STATUS_TILL}, CUSTOMER_STATUS_TILL),
    "wallet read, active only": (wallet_read_active, {CUSTOMER_STATUS_TILL}, CUSTOMER_STATUS_TILL),
    "evaluation: the customer's usable instances": (
        evaluation_wallet,
        {CUSTOMER_STATUS_TILL},
        CUSTOMER_STATUS_TILL,
    ),
    "issue: replay and limit probes per customer": (issue, {IDEMPOTENCY_KEY}, IDEMPOTENCY_KEY),
    "earn: its instances, the limit, the LOCKED ones": (
        earn,
        {IDEMPOTENCY_KEY, CUSTOMER_STATUS_TILL},
        IDEMPOTENCY_KEY,
    ),
    "bulk job preview: replayed and held": (
        bulk_job_preview_issue,
        {IDEMPOTENCY_KEY, CUSTOMER_STATUS_TILL},
        IDEMPOTENCY_KEY,
    ),
    "revokeEarn: the instances locked, then revoked": (
        revoke,
        {PRIMARY_KEY, CUSTOMER_STATUS_TILL},
        PRIMARY_KEY,
    ),
    "expiry: the due instances, then their update": (expiry, {STATUS_TILL, PRIMARY_KEY}, STATUS_TILL),
    "expiry of one org": (expiry_of_one_org, {STATUS_TILL, ORG_TILL, PRIMARY_KEY}, None),
    "redate after an end-date change": (redate, {IDEMPOTENCY_KEY}, IDEMPOTENCY_KEY),
    "admin list: default page": (admin_default_page, {ORG_TILL}, ORG_TILL),
    "admin list: customer filter": (admin_customer_filter, {CUSTOMER_STATUS_TILL}, CUSTOMER_STATUS_TILL),
    "admin search: an instance id": (admin_search_instance_id, {PRIMARY_KEY}, PRIMARY_KEY),
    "admin search: a customer id": (admin_search_customer_id, {PRIMARY_KEY, CUSTOMER_STATUS_TILL}, None),
    "admin search: a promotion name": (admin_search_promotion_name, {IDEMPOTENCY_KEY, ORG_TILL}, None),
    "promotion delete: PROTECT check": (promotion_delete, {IDEMPOTENCY_KEY}, IDEMPOTENCY_KEY),
    "customer delete: PROTECT check": (customer_delete, {CUSTOMER_STATUS_TILL}, CUSTOMER_STATUS_TILL),
}


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def indexes_read(explained: str) -> set[str]:
    """The indexes of the table a plan reads."""
    found = set()
    for line in explained.splitlines():
        for marker in ("Index Scan using ", "Index Only Scan using ", "Index Scan Backward using "):
            if marker in line and f" on {TABLE}" in line:
                found.add(line.split(marker, 1)[1].split()[0])
        if "Bitmap Index Scan on " in line:
            found.add(line.split("Bitmap Index Scan on ", 1)[1].split()[0])
    return found & set(table_indexes())  # not the other tables' indexes a Bitmap Index Scan names


def table_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [TABLE])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres_only
@pytest.mark.parametrize("name", list(QUERIES))
def test_each_query_reads_the_table_by_its_index(table, name):
    # given: the app's statements on the table for this operation
    run, allowed, reason_for = QUERIES[name]
    statements = run(table)
    assert statements, f"{name}: no statement on {TABLE} was recorded"
    # when: PostgreSQL plans them on 20,000 analyzed rows
    plans = [plan(sql, params) for sql, params in statements]
    # then: none reads the whole table, each reads it by indexes it may use
    used = set()
    for (sql, _), explained in zip(statements, plans, strict=True):
        assert f"Seq Scan on {TABLE}" not in explained, f"{sql}\n{explained}"
        read_by = indexes_read(explained)
        assert read_by and read_by <= allowed, (
            f"{name}: read by {read_by}, allowed {allowed}\n{sql}\n{explained}"
        )
        used |= read_by
    # and: among them the index this operation is the reason to keep
    assert reason_for is None or reason_for in used, f"{name}: {reason_for} unused, read by {used}"


@pytest.mark.postgres_only
def test_the_table_has_only_the_indexes_a_query_needs(db):
    # given: the indexes some operation above is the reason to keep
    needed = {reason_for for _, _, reason_for in QUERIES.values()} - {None}
    # then: the table has those and no other (a new index comes with the operation that needs it)
    assert set(table_indexes()) == needed == KEPT
