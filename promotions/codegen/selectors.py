"""Reads of promo codes in bulk: the CSV export of a promotion's codes, walked by a keyset cursor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from promotions.models import PromoCode, PromoCodeBatch, Promotion
from promotions_site.errors import ErrorCode, PromotionError

EXPORT_COLUMNS = ["code", "customerId", "linkedOn", "active", "createdOn", "batchId"]
EXPORT_PAGE = 5000  # rows per query: memory stays one page whatever the promotion holds


def promo_codes_export_rows(*, promotion: Promotion) -> Iterator[tuple[Any, ...]]:
    """The promotion's codes in creation order (EXPORT_COLUMNS), read page by page on the
    (promotion, id) index (`id > last ORDER BY id LIMIT n`): no OFFSET, no open cursor between pages."""
    last = 0
    while True:
        page = list(
            PromoCode.objects.filter(promotion=promotion, id__gt=last)
            .order_by("id")
            .values_list("id", "code", "customer_id", "linked_on", "active", "created_on", "batch_id")[
                :EXPORT_PAGE
            ]
        )
        for row in page:
            yield row[1:]
        if len(page) < EXPORT_PAGE:
            return
        last = page[-1][0]


def promo_code_batch_get(*, promotion: Promotion, batch_id) -> PromoCodeBatch:
    """The promotion's batch with this id; another promotion's (or org's) or an unknown id is 404."""
    try:
        key = int(batch_id)
    except (TypeError, ValueError):
        key = None
    batch = (
        PromoCodeBatch.objects.filter(promotion=promotion, pk=key).first()
        if key and 0 < key < 2**63
        else None
    )
    if batch is None:
        raise PromotionError(ErrorCode.NOT_FOUND, "Code batch not found.")
    return batch
