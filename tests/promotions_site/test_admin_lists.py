"""The admin lists of the big tables: each default order is backed by an index (EXPLAIN), counts above
a threshold are the planner's estimate, and deep pages are the same rows found another way."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from promotions.models import AuditEvent
from promotions_site import admin_lists
from promotions_site.admin_lists import EstimatedCountPaginator
from redemptions.models import Redemption, RedemptionLine, RedemptionReversal
from redemptions.selectors import redemption_line_list
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
    UserFactory,
)
from wallets.models import Customer, EarnedPromotion

# Each big table's list, and the table its plan must read by an index.
BIG_LISTS = {
    Customer: "wallets_customer",
    EarnedPromotion: "wallets_earnedpromotion",
    Redemption: "redemptions_redemption",
    RedemptionLine: "redemptions_redemptionline",
    RedemptionReversal: "redemptions_redemptionreversal",
    AuditEvent: "promotions_auditevent",
}


def changelist(model, org, query=None):
    request = RequestFactory().get("/", query or {})
    request.user = UserFactory(org=org, is_superuser=True)  # every permission, scoped to the org
    return admin.site._registry[model].get_changelist_instance(request)


def explain(sql: str, params) -> str:
    """The plan of a query with sequential scans and full sorts priced out, as on a table of millions
    where they would never win: an index that can find the rows in order is then used, and a plan
    with no such index still shows its Seq Scan or its Sort."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        try:
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET LOCAL enable_seqscan = on")
            cursor.execute("SET LOCAL enable_sort = on")


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    return explain(sql, params)


def assert_read_by_index(explained: str, table: str) -> None:
    assert f"Seq Scan on {table} " not in explained, explained
    # no full sort of the rows: the index gives their order (an incremental sort of ties is fine)
    assert not any(line.strip().startswith("->  Sort ") or line.startswith("Sort ")
                   for line in explained.splitlines()), explained  # fmt: skip


@pytest.fixture
def rows(org):
    for _ in range(3):
        line = RedemptionLineFactory(redemption__org=org)
        EarnedPromotionFactory(org=org, customer=line.redemption.customer)
    RedemptionReversalFactory(redemption=line.redemption)
    return org


@pytest.mark.postgres_only
@pytest.mark.parametrize("model", list(BIG_LISTS), ids=lambda model: model.__name__)
def test_each_big_lists_default_page_reads_its_table_by_an_index(rows, model):
    # given: the first page of the list as the admin queries it (org-scoped, default order)
    page = changelist(model, rows).queryset[:100]
    # when
    explained = plan(page)
    # then: the big table is read through an index, in order, never scanned whole
    table = BIG_LISTS[model]
    assert_read_by_index(explained, table)
    # An index scan of the table, or a bitmap heap scan of it that an index scan drives (which the
    # planner picks for the lines by their redemption depending on the statistics of the moment).
    assert any(
        ("Index" in line or "Bitmap Heap Scan" in line) and f" on {table}" in line
        for line in explained.splitlines()
    ), explained


@pytest.mark.postgres_only
def test_the_audit_filtered_on_a_promotion_reads_the_promotions_index_in_order(org):
    # given: transactions of two promotions, one with two lines of the first, one reversed
    first, second = PromotionFactory(org=org), PromotionFactory(org=org)
    now = timezone.now()
    lines = [
        RedemptionLineFactory(
            redemption__org=org,
            redemption__transaction_date=now - dt.timedelta(hours=n // 2),
            promotion=first if n % 3 else second,
        )
        for n in range(9)
    ]
    RedemptionLineFactory(redemption=lines[1].redemption, promotion=first, level="CART")
    RedemptionReversalFactory(redemption=lines[2].redemption)
    # when: the audit list filtered on the first promotion
    listed = changelist(Redemption, org, {"promotion": first.pk}).queryset
    explained = plan(listed[:100])
    # then: read from its index (promotion, transaction date, redemption) backwards, in order
    assert "redemption_promotion_date" in explained, explained
    assert_read_by_index(explained, "redemptions_redemptionpromotion")
    assert_read_by_index(explained, "redemptions_redemption")
    # and: the transactions that redeemed it, each once, in the list's order (date, then id, newest first)
    expected = sorted(
        {line.redemption for line in lines if line.promotion == first},
        key=lambda r: (r.transaction_date, r.pk),
        reverse=True,
    )
    assert list(listed) == expected


class _Recorder:
    """Keeps the SQL a block runs (with its parameters)."""

    def __init__(self):
        self.queries = []

    def __call__(self, execute, sql, params, many, context):
        self.queries.append((sql, params))
        return execute(sql, params, many, context)


@pytest.mark.postgres_only
@pytest.mark.parametrize("descending", [True, False])
def test_the_redemption_list_apis_page_reads_by_the_index(rows, descending):
    recorder = _Recorder()
    with connection.execute_wrapper(recorder):
        redemption_line_list(org=rows, params={}, limit=10, page_number=0, descending=descending)
    sql, params = next((sql, params) for sql, params in recorder.queries if "LIMIT" in sql)
    explained = explain(sql, params)
    assert_read_by_index(explained, "redemptions_redemption")
    assert_read_by_index(explained, "redemptions_redemptionline")
    assert "redemption_org_txn_date_id" in explained, explained


# --- the paginator ------------------------------------------------------------------------------


@pytest.fixture
def customers(org):
    made = [CustomerFactory(org=org) for _ in range(25)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wallets_customer")
    return made


@pytest.mark.postgres_only
def test_above_the_threshold_the_count_is_the_planners_estimate(customers, org, monkeypatch):
    queryset = Customer.objects.filter(org=org).order_by("id")
    # below the threshold: exact
    exact = EstimatedCountPaginator(queryset, 10)
    assert exact.count == 25 and not exact.estimated
    # above it: the estimate, without counting
    monkeypatch.setattr(admin_lists, "ESTIMATE_ABOVE", 5)
    estimated = EstimatedCountPaginator(queryset, 10)
    with_count = estimated.count
    assert estimated.estimated and with_count == admin_lists.planner_rows(queryset) > 5
    # a page past the estimated end is empty, not an error
    assert list(estimated.page(estimated.num_pages + 3).object_list) == []


@pytest.mark.parametrize("per_page", [3, 7, 25, 40])
def test_deep_pages_are_the_same_rows_however_they_are_found(customers, org, monkeypatch, per_page):
    queryset = Customer.objects.filter(org=org).order_by("id")
    plain = [[c.pk for c in EstimatedCountPaginator(queryset, per_page).page(n).object_list]
             for n in range(1, -(-25 // per_page) + 1)]  # fmt: skip
    # when: every page is "deep" (found by key, the back half from the end)
    monkeypatch.setattr(admin_lists, "DEFERRED_FROM", 0)
    paginator = EstimatedCountPaginator(queryset, per_page)
    deep = [[c.pk for c in paginator.page(n).object_list] for n in range(1, paginator.num_pages + 1)]
    # then
    assert deep == plain and [pk for page in deep for pk in page] == [c.pk for c in customers]


def test_the_admin_lists_of_big_tables_estimate_their_counts_and_have_no_date_hierarchy():
    for model in BIG_LISTS:
        model_admin = admin.site._registry[model]
        assert model_admin.paginator is EstimatedCountPaginator, model
        assert model_admin.show_full_result_count is False, model
        assert not model_admin.date_hierarchy, model
