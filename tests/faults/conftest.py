"""A till's world for the fault tests: an org, its write client, a customer holding an issued
promotion, and a POS promotion with a Promotion-level limit (one counter row every redemption takes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)


@pytest.fixture
def till(transactional_db):
    org = OrganizationFactory()
    client = ApiClientFactory(org=org)
    customer = CustomerFactory(org=org)
    pos = PromotionFactory(org=org, type="POS")
    wallet = PromotionFactory(org=org, type="CUSTOMER")
    return SimpleNamespace(
        org=org,
        auth=(client.username, client.plain_secret),
        customer=customer,
        pos=pos,
        limit=PromotionRestrictionFactory(promotion=pos, level="Promotion", kpi="REDEMPTION", limit=100),
        wallet=wallet,
        instance=EarnedPromotionFactory(org=org, customer=customer, promotion=wallet),
    )
