"""Per-promotion counts of the instances ever issued and earned (`PromotionTally`): kept by the
services that create instances, read by the dashboard instead of counting the earned promotions."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Count, Q

from promotions.models import Organization
from wallets.models import EarnedPromotion, PromotionTally


def promotion_tally_add(*, org_id: int, promotion_id: str, issued: int = 0, earned: int = 0) -> None:
    """Add to a promotion's counts, in the caller's transaction: one upsert (PostgreSQL and SQLite
    both take `ON CONFLICT ... DO UPDATE`), the row created on first use."""
    if not (issued or earned):
        return
    table = PromotionTally._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (org_id, promotion_id, issued, earned) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (promotion_id) DO UPDATE SET issued = {table}.issued + excluded.issued, "
            f"earned = {table}.earned + excluded.earned",
            [org_id, promotion_id, issued, earned],
        )


def promotion_tallies_refresh(*, org: Organization | None = None) -> int:
    """Recount every promotion's tally (of `org`, or of all orgs) from the earned promotions: for rows
    written behind the services' back (a bulk load in SQL, a test's factories). One grouped query;
    the promotions' rows are replaced in one transaction. The number of tallies written."""
    instances = EarnedPromotion.objects.all() if org is None else EarnedPromotion.objects.for_org(org)
    counts = (
        instances.values("org_id", "promotion_id")
        .annotate(
            issued=Count("id", filter=Q(kind=EarnedPromotion.Kind.ISSUED)),
            earned=Count("id", filter=Q(kind=EarnedPromotion.Kind.EARNED)),
        )
        .order_by()
    )
    rows = [PromotionTally(**row) for row in counts]
    with transaction.atomic():
        tallies = PromotionTally.objects.all() if org is None else PromotionTally.objects.for_org(org)
        tallies.delete()
        PromotionTally.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
