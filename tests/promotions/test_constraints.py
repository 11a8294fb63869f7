"""What must never be duplicated or out of range in the catalogue is refused by the database itself."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from promotions.models import ApiClient, Promotion, new_object_id, new_object_ids
from tests import factories
from tests.refusals import refused


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


def test_restriction_unique_per_level_and_kpi_and_positive(org):
    restriction = factories.PromotionRestrictionFactory(promotion__org=org)
    assert refused(lambda: factories.PromotionRestrictionFactory(promotion=restriction.promotion))
    assert refused(
        lambda: factories.PromotionRestrictionFactory(
            promotion=restriction.promotion, kpi="DISCOUNT", limit=0
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
