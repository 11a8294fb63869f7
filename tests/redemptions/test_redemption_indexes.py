"""The redemption tables keep the indexes a query needs and no more: every redemption writes a row into
each of them (a redemption, its lines, its audit event), and each index is one more insert per row.
Dropped: the single-column indexes an index leading with the same column already serves (org on
redemptions and audit events, redemption on lines) and the `LIKE` twins of the lines' text foreign keys.
On tables of a few thousand rows with fresh statistics, the look-ups those indexes served read the
table by an index, never by a sequential scan."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from promotions.models import AuditEvent
from redemptions.models import CartLock, CartLockUnit, Redemption, RedemptionLine
from redemptions.performance import _recent_lines_by
from tests.factories import (
    AuditEventFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

INDEXES = {
    Redemption: {
        "redemptions_redemption_pkey", "redemption_transaction_identifier_unique_per_org",
        "redemption_org_customer", "redemption_org_txn_date_id", "redemption_org_txn_number",
        "redemptions_redemption_api_client_id_e4a2693f", "redemptions_redemption_created_at_3b1dfa0d",
        "redemptions_redemption_customer_id_ee61a3f0",
        # cart locks: only redemptions bound to an evaluation are indexed (partial unique index)
        "redemption_evaluation_once",
    },
    RedemptionLine: {
        "redemptions_redemptionline_pkey", "redemption_line_position", "redemption_line_promotion",
        "redemption_line_promotion_id", "redemption_line_instance",
        # promo codes: only lines redeemed through a code are indexed (partial index)
        "redemption_line_promo_code",
    },
    AuditEvent: {"promotions_auditevent_pkey", "audit_org_object", "promotions_auditevent_created_at_355a19b9"},
    CartLock: {
        "redemptions_cartlock_pkey", "redemptions_cartlock_evaluation_id_399d6e47_like", "cart_lock_open_customer",
        "cart_lock_open_org", "redemptions_cartlock_customer_id_c2e5a12a", "redemptions_cartlock_org_id_483629e7",
        "redemptions_cartlock_redemption_id_f0fb44e0",
    },
    CartLockUnit: {
        "redemptions_cartlockunit_pkey", "cart_lock_unit_lock", "cart_lock_unit_instance",
        "redemptions_cartlockunit_restriction_id_721c73d5",
    },
}  # fmt: skip


def indexes_of(model) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [model._meta.db_table])
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("model", list(INDEXES), ids=lambda model: model.__name__)
def test_each_table_has_exactly_its_indexes(model):
    assert indexes_of(model) == INDEXES[model]


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def tables(org, other_org):
    """4,000 redemptions of 40 customers over 2 orgs, a line each over 20 promotions, an audit event each;
    the org looked up holds 1 redemption in 100 (an org among many)."""
    promotions = [PromotionFactory(org=o) for o in (org, other_org) for _ in range(10)]
    customers = [CustomerFactory(org=o) for o in (org, other_org) for _ in range(20)]
    instances = [EarnedPromotionFactory(org=c.org, customer=c, promotion=promotions[0 if c.org == org else 10]) for c in customers]  # fmt: skip
    redemptions = Redemption.objects.bulk_create(
        RedemptionFactory.build(org=customer.org, customer=customer, api_client=None)
        for customer in (customers[(n // 100) % 20 if n % 100 == 0 else 20 + n % 20] for n in range(4000))
    )
    RedemptionLine.objects.bulk_create(
        RedemptionLineFactory.build(
            redemption=r, promotion=promotions[(n % 10) + (0 if r.org == org else 10)],
            earned_promotion=instances[n % 40] if n % 7 == 0 else None,
        )
        for n, r in enumerate(redemptions)
    )  # fmt: skip
    AuditEvent.objects.bulk_create(AuditEventFactory.build(org=r.org) for r in redemptions)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return promotions, instances


def test_the_dropped_indexes_look_ups_still_use_an_index(org, tables):
    promotions, instances = tables
    looks = {
        "redemptions of an org": ("SELECT id FROM redemptions_redemption WHERE org_id = %s LIMIT 50", [org.pk]),
        "audit events of an org": ("SELECT id FROM promotions_auditevent WHERE org_id = %s LIMIT 50", [org.pk]),
        "lines of a redemption": (
            "SELECT id FROM redemptions_redemptionline WHERE redemption_id = %s",
            [Redemption.objects.order_by("pk").values_list("pk", flat=True).first()],
        ),
        "lines of a promotion": ("SELECT id FROM redemptions_redemptionline WHERE promotion_id = %s", [promotions[3].pk]),
        "lines of an instance": (
            "SELECT id FROM redemptions_redemptionline WHERE earned_promotion_id = %s",
            [instances[0].pk],
        ),
    }  # fmt: skip
    for name, (sql, params) in looks.items():
        explained = plan(sql, params)
        assert "Seq Scan" not in explained, (name, explained)
        assert "Index" in explained, (name, explained)


def test_the_performance_pages_top_stores_read_the_promotions_lines_by_an_index(org, tables):
    # given: a promotion of the org among many (its lines a handful of the table's 4,000)
    promotions, _ = tables
    today = timezone.localdate(timezone=org.tz)

    # when: the top stores' aggregate (redemptions/performance.py) is planned
    explained = _recent_lines_by(org, promotions[3], today, "redemption__till_code").explain()

    # then: the promotion's lines by its index, each redemption by its key; no new index needed (the
    # reversals, none here, are read whole: an empty table)
    assert "Seq Scan on redemptions_redemptionline " not in explained, explained
    assert "Seq Scan on redemptions_redemption " not in explained, explained
    assert "redemption_line_promotion_id" in explained, explained
