"""Limits and idempotency of the redeem API under real concurrency (threads, PostgreSQL transactions)."""

from __future__ import annotations

from collections import Counter

import pytest

from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal
from tests.concurrency import run_concurrently
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_100_redemptions_racing_for_a_global_limit_of_10_give_exactly_10():
    # given a POS promotion whose global limit is 10 redemptions, and 100 customers
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type="POS")
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=10)
    customers = CustomerFactory.create_batch(100, org=org)

    # when 100 distinct transactions are sent at once (40 connections)
    def call(api, index):
        response = redeem(api, body(customers[index], txn=f"T{index}", redemptions=[line(promotion)]))
        return response.status_code, tuple(codes(response)) if response.status_code != 200 else ()

    results = run_concurrently(100, call, org=org, threads=40)

    # then exactly 10 succeed and 90 are refused with the limit's 409
    assert Counter(results) == {(200, ()): 10, (409, (409,)): 90}
    assert Redemption.objects.filter(org=org).count() == 10
    assert RedemptionCounter.objects.get(restriction__promotion=promotion).used == 10


def test_50_concurrent_replays_record_once_and_answer_identically():
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="CUSTOMER")
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    data = body(customer, txn="SAME", line_items=[line(promotion, instance)])

    results = run_concurrently(
        50, lambda api, _: (lambda r: (r.status_code, r.content))(redeem(api, data)), org=org, threads=25
    )

    assert {status for status, _ in results} == {200}
    assert len({content for _, content in results}) == 1
    assert Redemption.objects.filter(org=org).count() == 1
    assert RedemptionLine.objects.count() == 1
    instance.refresh_from_db()
    assert (instance.redemption_count, instance.status) == (1, "REDEEMED")


def test_one_single_use_instance_raced_by_20_transactions_is_redeemed_once():
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="EARNING")
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, kind="EARNED")

    results = run_concurrently(
        20,
        lambda api, i: (
            redeem(api, body(customer, txn=f"T{i}", line_items=[line(promotion, instance)])).status_code
        ),
        org=org,
    )

    assert Counter(results) == {200: 1, 409: 19}
    instance.refresh_from_db()
    assert instance.redemption_count == 1


def test_one_instance_raced_by_its_owner_and_another_customer():
    org = OrganizationFactory()
    owner, other = CustomerFactory.create_batch(2, org=org)
    promotion = PromotionFactory(org=org, type="CUSTOMER")
    instance = EarnedPromotionFactory(org=org, customer=owner, promotion=promotion)

    results = run_concurrently(
        2,
        lambda api, i: redeem(
            api, body([owner, other][i], txn=f"T{i}", line_items=[line(promotion, instance)])
        ),
        org=org,
    )

    assert results[0].status_code == 200
    assert results[1].status_code == 400 and codes(results[1]) == [715]
    assert RedemptionLine.objects.get().redemption.customer == owner


def test_instances_chosen_concurrently_are_each_used_once():
    # given a customer holding 5 instances, and 20 transactions naming none
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="CUSTOMER", max_issuance_per_customer=-1)
    instances = EarnedPromotionFactory.create_batch(5, org=org, customer=customer, promotion=promotion)

    results = run_concurrently(
        20,
        lambda api, i: redeem(api, body(customer, txn=f"T{i}", redemptions=[line(promotion)])).status_code,
        org=org,
    )

    assert Counter(results) == {200: 5, 400: 15}
    used = RedemptionLine.objects.values_list("earned_promotion_id", flat=True)
    assert sorted(used) == sorted(i.pk for i in instances)
    assert set(EarnedPromotion.objects.values_list("status", flat=True)) == {"REDEEMED"}


def test_concurrent_reversals_give_back_once():
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="POS")
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="DISCOUNT", limit=1000)
    setup = run_concurrently(
        1,
        lambda api, _: redeem(api, body(customer, txn="R", redemptions=[line(promotion, discount=300)])),
        org=org,
    )
    assert setup[0].status_code == 200

    results = run_concurrently(
        10,
        lambda api, _: (
            api.post(
                "/api_gateway/v1/promotions/redemptions/reverse",
                {"transactionIdentifier": "R"},
                format="json",
            ).status_code
        ),
        org=org,
    )

    assert results == [200] * 10
    assert RedemptionReversal.objects.count() == 1
    assert RedemptionCounter.objects.get().used == 0


def _two_promotions_with_limits(org, *, promotion_type, levels):
    """Two promotions of `type`, each with a REDEMPTION limit of 1000 at every level of `levels`."""
    promotions = PromotionFactory.create_batch(2, org=org, type=promotion_type)
    for promotion in promotions:
        for level in levels:
            PromotionRestrictionFactory(promotion=promotion, level=level, kpi="REDEMPTION", limit=1000)
    return promotions


def _used(promotion, level):
    return RedemptionCounter.objects.get(restriction__promotion=promotion, restriction__level=level).used


def test_redemptions_naming_two_limited_promotions_in_opposite_orders_never_deadlock():
    # given two POS promotions, each with a global limit (one counter row each), and 80 customers
    org = OrganizationFactory()
    first, second = _two_promotions_with_limits(org, promotion_type="POS", levels=["Promotion"])
    customers = CustomerFactory.create_batch(80, org=org)

    # when 80 redemptions touch both promotions at once, half naming them in one order, half in the other
    def call(api, index):
        pair = [first, second] if index % 2 else [second, first]
        response = redeem(api, body(customers[index], txn=f"T{index}", redemptions=[line(p) for p in pair]))
        return response.status_code

    results = run_concurrently(80, call, org=org, threads=20)

    # then every one is recorded (a deadlock answers 503) and each counter holds exactly 80
    assert Counter(results) == {200: 80}
    assert (_used(first, "Promotion"), _used(second, "Promotion")) == (80, 80)


def test_reversals_and_redemptions_in_opposite_orders_never_deadlock():
    # given two limited POS promotions and 30 redemptions recorded naming them in one order
    org = OrganizationFactory()
    first, second = _two_promotions_with_limits(org, promotion_type="POS", levels=["Promotion"])
    customers = CustomerFactory.create_batch(60, org=org)
    setup = run_concurrently(
        30,
        lambda api, i: redeem(
            api, body(customers[i], txn=f"OLD{i}", redemptions=[line(first), line(second)])
        ),
        org=org,
        threads=10,
    )
    assert {response.status_code for response in setup} == {200}

    # when those 30 are reversed while 30 new ones name the promotions in the other order
    def call(api, index):
        if index % 2:
            return api.post(
                "/api_gateway/v1/promotions/redemptions/reverse",
                {"transactionIdentifier": f"OLD{index // 2}"},
                format="json",
            ).status_code
        data = body(customers[30 + index // 2], txn=f"NEW{index}", redemptions=[line(second), line(first)])
        return redeem(api, data).status_code

    results = run_concurrently(60, call, org=org, threads=20)

    # then every request succeeds and the counters hold exactly the 30 new redemptions
    assert Counter(results) == {200: 60}
    assert (_used(first, "Promotion"), _used(second, "Promotion")) == (30, 30)


def test_one_customers_instances_and_counters_named_in_opposite_orders_never_deadlock():
    # given a customer holding one multi-use instance of each of two promotions, limited at every
    # counted level: its instances and Customer counters are rows only this customer's redemptions
    # lock, kept apart by the customer row's lock and again by the id order of instances and counters
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    levels = ["Earn", "Customer", "Promotion"]
    first, second = _two_promotions_with_limits(org, promotion_type="CUSTOMER", levels=levels)
    instances = {
        p.pk: EarnedPromotionFactory(org=org, customer=customer, promotion=p) for p in (first, second)
    }

    # when 40 redemptions name both instances at once, half in one order, half in the other
    def call(api, index):
        pair = [first, second] if index % 2 else [second, first]
        lines = [line(p, instances[p.pk]) for p in pair]
        return redeem(api, body(customer, txn=f"T{index}", line_items=lines)).status_code

    results = run_concurrently(40, call, org=org, threads=20)

    # then every one is recorded, and every instance and counter counts exactly 40
    assert Counter(results) == {200: 40}
    for promotion in (first, second):
        assert (_used(promotion, "Customer"), _used(promotion, "Promotion")) == (40, 40)
        assert EarnedPromotion.objects.get(pk=instances[promotion.pk].pk).redemption_count == 40


@pytest.mark.parametrize(
    "window",
    [
        {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}},
        {"window_type": "MOVING", "frequency": "WEEKS"},
    ],
    ids=["a month", "the last 7 days"],
)
def test_40_redemptions_racing_for_a_windowed_global_limit_of_5_give_exactly_5(window):
    # given a POS promotion limited to 5 redemptions a window, over all customers, in Berlin
    org = OrganizationFactory(timezone="Europe/Berlin")
    promotion = PromotionFactory(org=org, type="POS")
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=5, **window)
    customers = CustomerFactory.create_batch(40, org=org)

    # when 40 transactions of one moment are sent at once
    def call(api, index):
        return redeem(api, body(customers[index], txn=f"W{index}", redemptions=[line(promotion)])).status_code

    results = run_concurrently(40, call, org=org, threads=20)

    # then exactly 5 succeed, counted in one window (and, for MOVING, its lock row holding nothing)
    assert Counter(results) == {200: 5, 409: 35}
    used = sorted(
        RedemptionCounter.objects.filter(restriction__promotion=promotion).values_list("used", flat=True)
    )
    assert used == ([0, 5] if window["window_type"] == "MOVING" else [5])
