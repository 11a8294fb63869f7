"""Cart locks under real concurrency (threads, PostgreSQL transactions): one open cart per customer,
the last unit of a limit offered once, an expired cart released once."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from promotions.rules import org_rules_forget
from redemptions.cart_locks import cart_locks_release_expired, cart_locks_sweep
from redemptions.invariants import violations
from redemptions.models import CartLock, RedemptionCounter
from tests.concurrency import run_concurrently
from tests.factories import (
    CustomerFactory,
    OrganizationFactory,
    PromotionRestrictionFactory,
    RedemptionCounterFactory,
)
from tests.redemptions.test_cart_locks import WITH_EVALUATION, applied, cart, codes, evaluate, pos_promotion

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


def test_100_concurrent_evaluations_of_one_customer_open_exactly_one_cart():
    # given a locking org and a promotion with room for all
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = pos_promotion(org, limit=1000)
    customer = CustomerFactory(org=org)

    # when 100 new carts of the customer are evaluated at once
    def call(api, _index):
        response = evaluate(api, cart(customer))
        return response.status_code, tuple(codes(response)) if response.status_code != 200 else ()

    results = run_concurrently(100, call, org=org, threads=40)

    # then exactly one holds the lock; the others are refused (busy: 521, or the open cart: 116)
    outcome = Counter(results)
    assert outcome[200, ()] == 1, outcome
    assert set(outcome) <= {(200, ()), (409, (116,)), (409, (521,))}
    assert CartLock.objects.filter(status="OPEN").count() == 1
    assert RedemptionCounter.objects.get(restriction__promotion=promotion).reserved == 1
    assert violations([org.pk]) == []


def test_customers_racing_for_the_last_unit_of_a_promotion_limit_are_offered_it_once():
    # given a promotion with one unit left and 30 customers at 30 tills
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = pos_promotion(org, limit=1)
    customers = CustomerFactory.create_batch(30, org=org)

    # when each evaluates at once
    def call(api, index):
        response = evaluate(api, cart(customers[index]))
        assert response.status_code == 200, response.content
        return tuple(applied(response))

    results = run_concurrently(30, call, org=org, threads=30)

    # then exactly one is offered it, and it is reserved once
    assert Counter(results) == {(promotion.pk,): 1, (): 29}
    counter = RedemptionCounter.objects.get(restriction__promotion=promotion)
    assert (counter.used, counter.reserved) == (0, 1)
    assert CartLock.objects.filter(status="OPEN").count() == 1
    assert violations([org.pk]) == []


def test_customers_racing_for_the_last_unit_of_a_moving_limit_are_offered_it_once():
    # given 2 in any 3 days, one used yesterday: today's bucket alone would take 2 more, the window 1
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION, timezone="America/New_York")
    promotion = pos_promotion(org, start_date=timezone.now() - dt.timedelta(days=30))
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=2, frequency="DAYS",
        min_time_between_repeat=3 * 86_400_000,
    )  # fmt: skip
    yesterday = timezone.now().astimezone(org.tz).date() - dt.timedelta(days=1)
    RedemptionCounterFactory(
        org=org, restriction=restriction, scope="", window_start=yesterday, used=1, limit=2
    )
    customers = CustomerFactory.create_batch(30, org=org)

    # when each evaluates at once
    def call(api, index):
        response = evaluate(api, cart(customers[index]))
        assert response.status_code == 200, response.content
        return tuple(applied(response))

    results = run_concurrently(30, call, org=org, threads=30)

    # then exactly one is offered it (the lock row makes the reservations take turns, then the window
    # is summed), and it is reserved once
    assert Counter(results) == {(promotion.pk,): 1, (): 29}
    assert (
        sum(RedemptionCounter.objects.filter(restriction=restriction).values_list("reserved", flat=True)) == 1
    )
    assert CartLock.objects.filter(status="OPEN").count() == 1
    assert [v for v in violations([org.pk]) if not v.startswith("counter equals")] == []


def test_an_expired_cart_is_released_exactly_once_by_reads_and_sweeps_racing():
    # given an expired open cart holding a unit of a Promotion and a Customer limit
    org = OrganizationFactory(redemption_strategy=WITH_EVALUATION)
    promotion = pos_promotion(org, limit=3)
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=3)
    customer = CustomerFactory(org=org)
    evaluate_in_thread(org, cart(customer))
    past = timezone.now() - dt.timedelta(seconds=1)
    CartLock.objects.update(created_at=past - dt.timedelta(seconds=300), expires_at=past)

    # when 20 threads release expired carts at once, half by reading, half by sweeping
    barrier = threading.Barrier(20)
    released = [0] * 20

    def worker(index):
        try:
            barrier.wait()
            now = timezone.now()
            released[index] = (
                cart_locks_release_expired(now=now, org=org, customer_id=customer.pk)
                if index % 2
                else cart_locks_sweep(now=now)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then it is released once and every unit is given back once
    assert sum(released) == 1
    assert CartLock.objects.get().status == "EXPIRED"
    assert set(RedemptionCounter.objects.values_list("reserved", flat=True)) == {0}
    assert RedemptionCounter.objects.filter(restriction__promotion=promotion).count() == 2
    assert violations([org.pk]) == []


def evaluate_in_thread(org, body):
    results = run_concurrently(1, lambda api, _: evaluate(api, body).status_code, org=org)
    assert results == [200]
