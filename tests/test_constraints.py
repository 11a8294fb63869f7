"""What must never be duplicated or out of range is refused by the database itself."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from promotions.models import ApiClient, Promotion, new_object_id, new_object_ids
from tests import factories
from wallets.models import EarnedPromotion


def refused(make) -> bool:
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False


def test_object_ids_are_24_hex_and_unique():
    ids = {new_object_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{24}", value) for value in ids)


def test_object_ids_made_in_bulk_are_shaped_alike_and_unique():
    # given: the time part of a single id, taken just before
    prefix = new_object_id()[:8]
    # when
    ids = new_object_ids(10_000)
    # then
    assert len(ids) == len(set(ids)) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{24}", value) for value in ids)
    assert {value[:8] for value in ids} <= {prefix, f"{int(prefix, 16) + 1:08x}"}


def test_promotion_name_unique_per_org(org, other_org):
    factories.PromotionFactory(org=org, name="Summer")
    assert refused(lambda: factories.PromotionFactory(org=org, name="Summer"))
    assert not refused(lambda: factories.PromotionFactory(org=other_org, name="Summer"))


@pytest.mark.parametrize(
    ("changes", "bad"),
    [
        ({"max_issuance_per_customer": 0}, True),
        ({"max_issuance_per_customer": 51}, True),
        ({"max_issuance_per_customer": -2}, True),
        ({"max_issuance_per_customer": -1}, False),
        ({"max_issuance_per_customer": 50}, False),
        ({"max_earning_per_customer": 0}, True),
        ({"max_earning_per_customer": -1}, False),
        ({"earned_validity_days": 0}, True),
        ({"type": "BOGUS"}, True),
        ({"mode": "CASH"}, True),
    ],
)
def test_promotion_ranges(org, changes, bad):
    promotion = factories.PromotionFactory(org=org)
    assert refused(lambda: Promotion.objects.filter(pk=promotion.pk).update(**changes)) is bad


def test_promotion_ends_after_it_starts(org):
    now = timezone.now()
    assert refused(
        lambda: factories.PromotionFactory(org=org, start_date=now, end_date=now - dt.timedelta(seconds=1))
    )


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


def test_transaction_identifier_unique_per_org(org, other_org):
    factories.RedemptionFactory(org=org, transaction_identifier="T-1")
    assert refused(lambda: factories.RedemptionFactory(org=org, transaction_identifier="T-1"))
    assert not refused(lambda: factories.RedemptionFactory(org=other_org, transaction_identifier="T-1"))


def test_one_reversal_per_redemption(org):
    redemption = factories.RedemptionFactory(org=org)
    factories.RedemptionReversalFactory(redemption=redemption)
    assert refused(lambda: factories.RedemptionReversalFactory(redemption=redemption))


def test_redemption_line_rules(org):
    line = factories.RedemptionLineFactory(redemption__org=org, position=0)
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, position=0))
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, redemption_count=0))
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, discount=-1))


def test_restriction_unique_per_level_and_kpi_and_positive(org):
    restriction = factories.PromotionRestrictionFactory(promotion__org=org)
    assert refused(lambda: factories.PromotionRestrictionFactory(promotion=restriction.promotion))
    assert refused(
        lambda: factories.PromotionRestrictionFactory(
            promotion=restriction.promotion, kpi="DISCOUNT", limit=0
        )
    )


def test_one_issual_per_customer_and_loyalty_promotion(org):
    issual = factories.IssualFactory(org=org)
    assert refused(
        lambda: factories.IssualFactory(
            org=org, customer=issual.customer, loyalty_promotion=issual.loyalty_promotion
        )
    )


def test_api_client_username_unique_and_ttl_bounded(org, other_org):
    client = factories.ApiClientFactory(org=org)
    assert refused(lambda: ApiClient.objects.create(org=other_org, username=client.username, secret_hash="x"))
    for ttl, bad in ((59, True), (3601, True), (60, False), (3600, False)):
        assert (
            refused(lambda ttl=ttl: ApiClient.objects.filter(pk=client.pk).update(token_ttl_seconds=ttl))
            is bad
        )
