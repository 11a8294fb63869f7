"""What must never be duplicated in wallets is refused by the database itself."""

from __future__ import annotations

import pytest

from tests import factories
from tests.refusals import refused
from wallets.models import EarnedPromotion


@pytest.mark.parametrize("field", ["mobile", "email", "external_id"])
def test_customer_identifiers_unique_per_org(org, other_org, field):
    value = {"mobile": "919800000001", "email": "a@example.com", "external_id": "X1"}[field]
    factories.CustomerFactory(org=org, **{field: value})
    assert refused(lambda: factories.CustomerFactory(org=org, **{field: value}))
    assert not refused(lambda: factories.CustomerFactory(org=other_org, **{field: value}))
    # several customers without the identifier are fine
    factories.CustomerFactory(org=org, **{field: None})
    assert not refused(lambda: factories.CustomerFactory(org=org, **{field: None}))


def test_earned_promotion_idempotency_key(org):
    first = factories.EarnedPromotionFactory(org=org, earned_from_id="ctx")
    same_key = dict(org=org, customer=first.customer, promotion=first.promotion, earned_from_id="ctx")
    assert refused(lambda: factories.EarnedPromotionFactory(**same_key, seq=1))
    assert not refused(lambda: factories.EarnedPromotionFactory(**same_key, seq=2))
    assert refused(lambda: EarnedPromotion.objects.filter(pk=first.pk).update(seq=0))
    assert len(first.pk) == 24


def test_one_issual_per_customer_and_loyalty_promotion(org):
    issual = factories.IssualFactory(org=org)
    assert refused(
        lambda: factories.IssualFactory(
            org=org, customer=issual.customer, loyalty_promotion=issual.loyalty_promotion
        )
    )
