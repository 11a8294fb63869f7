"""The invariant checks themselves: silent on what the services write, loud on each kind of corruption."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from redemptions.invariants import violations
from redemptions.models import RedemptionPromotion
from tests.factories import (
    AuditEventFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionCounterFactory,
    RedemptionLineFactory,
)
from tests.redemptions.support import URL, body, line
from wallets.models import EarnedPromotion

pytestmark = pytest.mark.postgres_only


def names(found: list[str]) -> set[str]:
    return {violation.split(":")[0] for violation in found}


def test_what_the_services_write_keeps_every_invariant(api, org, other_org):
    # given: limits on a wallet promotion and a POS promotion, an instance, a redemption, a reversal
    customer = CustomerFactory(org=org)
    wallet = PromotionFactory(org=org, type="EARNING")
    pos = PromotionFactory(org=org, type="POS")
    PromotionRestrictionFactory(promotion=wallet, level="Customer", kpi="REDEMPTION", limit=2)
    PromotionRestrictionFactory(promotion=wallet, level="Earn", kpi="REDEMPTION", limit=2)
    PromotionRestrictionFactory(promotion=pos, level="Promotion", kpi="DISCOUNT", limit=500)
    PromotionRestrictionFactory(promotion=pos, level="Cart", kpi="TRANSACTION", limit=1)
    EarnedPromotionFactory(org=org, customer=customer, promotion=wallet, kind="EARNED")
    # when
    first = api.post(URL, body(customer, "TXN-1", line_items=[line(wallet), line(pos)]), format="json")
    second = api.post(URL, body(customer, "TXN-2", line_items=[line(wallet)]), format="json")
    reversal = api.post(f"{URL}/reverse", {"transactionIdentifier": "TXN-1"}, format="json")
    # then
    assert [first.status_code, second.status_code, reversal.status_code] == [200, 200, 200]
    assert violations([org.pk, other_org.pk]) == []
    assert violations() == []


def test_a_counter_that_differs_from_its_facts(org):
    # given: a counter holding a use no redemption recorded
    RedemptionCounterFactory(restriction__promotion__org=org, used=Decimal(1))
    # then
    assert "counter equals the non-reversed redemptions it counts, within its limit" in names(
        violations([org.pk])
    )


def test_an_instance_counter_without_lines_and_a_used_up_instance_still_active(org):
    EarnedPromotionFactory(org=org, redemption_count=1, transaction_count=1)
    [violation] = violations([org.pk])
    assert violation.startswith("earned instance counters equal its non-reversed lines")


def test_an_instance_marked_redeemed_with_room_left(org):
    EarnedPromotionFactory(org=org, status="REDEEMED")
    assert names(violations([org.pk])) == {
        "earned instance counters equal its non-reversed lines, within its Earn limits, REDEEMED exactly when used up"
    }


def test_an_instance_still_active_with_its_discount_limit_used_up(org):
    # given: Earn limits of 3 redemptions and 40 of discount, the 40 used up by one redemption line
    instance = EarnedPromotionFactory(org=org, promotion__type="EARNING", kind="EARNED")
    PromotionRestrictionFactory(promotion=instance.promotion, level="Earn", kpi="REDEMPTION", limit=3)
    PromotionRestrictionFactory(promotion=instance.promotion, level="Earn", kpi="DISCOUNT", limit=40)
    redeemed = RedemptionLineFactory(
        redemption__org=org,
        redemption__customer=instance.customer,
        promotion=instance.promotion,
        earned_promotion=instance,
        discount=Decimal(40),
    )
    AuditEventFactory(
        org=org, action="redemption.record", object_type="Redemption", object_id=redeemed.redemption_id
    )
    EarnedPromotion.objects.filter(pk=instance.pk).update(
        redemption_count=1, transaction_count=1, discount_total=40
    )
    assert names(violations([org.pk])) == {
        "earned instance counters equal its non-reversed lines, within its Earn limits, REDEEMED exactly when used up"
    }
    # when
    EarnedPromotion.objects.filter(pk=instance.pk).update(status="REDEEMED")
    # then
    assert violations([org.pk]) == []


def test_more_issued_instances_than_max_issuance_per_customer(org):
    # given: maxIssuancePerCustomer 1 and two issued instances (a revoked one does not count)
    instance = EarnedPromotionFactory(org=org, promotion__max_issuance_per_customer=1)
    EarnedPromotionFactory(
        org=org, customer=instance.customer, promotion=instance.promotion, status="REVOKED"
    )
    assert violations([org.pk]) == []
    # when
    EarnedPromotionFactory(org=org, customer=instance.customer, promotion=instance.promotion)
    # then
    assert names(violations([org.pk])) == {
        "maxIssuancePerCustomer and maxEarningPerCustomer held by the instances not revoked"
    }


def test_a_locked_instance_that_is_not_an_issued_earning_one(org):
    # given: an issued EARNING instance, LOCKED as issueBulk writes it
    locked = EarnedPromotionFactory(org=org, promotion__type="EARNING")
    assert locked.locked and violations([org.pk]) == []
    # when: a LOCKED instance of a CUSTOMER promotion
    EarnedPromotionFactory(org=org, promotion__type="CUSTOMER", locked=True)
    # then
    assert names(violations([org.pk])) == {
        "a LOCKED instance is an issued EARNING instance, never unlocked nor redeemed"
    }


def test_a_row_that_references_another_orgs_row(org, other_org):
    # given: an instance of `org` in the wallet of `other_org`'s customer
    EarnedPromotionFactory(org=org, customer=CustomerFactory(org=other_org))
    # then
    [violation] = violations([org.pk])
    assert violation.startswith("nothing crosses orgs: wallets.EarnedPromotion: org_id vs customer__org_id")
    assert violations([other_org.pk]) == []  # each row is checked from its own org's side
    assert len(violations()) == 1


def test_a_promotion_redeemed_missing_or_misdated(org):
    # given: a line whose promotion-redeemed row is gone, and one whose row carries another date
    missing, misdated = RedemptionLineFactory(redemption__org=org), RedemptionLineFactory(redemption__org=org)
    RedemptionPromotion.objects.filter(redemption=missing.redemption).delete()
    RedemptionPromotion.objects.filter(redemption=misdated.redemption).update(
        transaction_date=misdated.redemption.transaction_date - dt.timedelta(days=1)
    )
    # then
    name = "a transaction's promotions redeemed are those of its lines, once each, dated as it"
    found = [violation for violation in violations([org.pk]) if violation.startswith(name)]
    assert {str(missing.redemption_id), str(misdated.redemption_id)} == {
        violation.split("'redemption_id': ")[1].split(",")[0] for violation in found
    }, found
