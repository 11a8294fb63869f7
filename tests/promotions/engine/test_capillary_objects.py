"""Capillary's 14 published promotion objects (promotions/examples/capillary-promotion-objects.json): each
compiles, and gives what docs/engine.md says on a hand-built cart."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from promotions.engine import Context, RuleSet, StoreScope, compile_rule, evaluate

from .builders import D, cart, line

FIXTURE = Path(__file__).resolve().parents[3] / "promotions" / "examples" / "capillary-promotion-objects.json"
OBJECTS = {body["name"]: body for body in json.loads(FIXTURE.read_text())["promotions"]}


def evaluate_one(name: str, the_cart, **context):
    body = OBJECTS[name]
    now = dt.datetime.fromtimestamp(body["startDate"] / 1000, tz=dt.UTC) + dt.timedelta(days=1)
    wallet = {body["id"]: "earned-1"} if body["type"] in ("CUSTOMER", "EARNING", "REWARD") else {}
    result = evaluate(the_cart, RuleSet([compile_rule(body)]), Context(now=now, wallet=wallet, **context))
    return result


def discount(result):
    assert len(result.applied) <= 1
    return result.applied[0].discount if result.applied else None


def reason(result):
    return result.skipped[0].reason if result.skipped else None


def test_all_fourteen_compile():
    assert len(OBJECTS) == 14
    rules = [compile_rule(body) for body in OBJECTS.values()]
    assert all(not rule.is_stackable for rule in rules)


@pytest.mark.parametrize("name", ["SeptemberPromo", "AugustCartPromo"])
def test_fifteen_percent_off_carts_of_500(name):
    # 15% of 600 = 90; 15% of 500 (>= 500 holds) = 75; 499.99 does not qualify
    assert discount(evaluate_one(name, cart(line("A", "600.00")))) == D("90.00")
    assert discount(evaluate_one(name, cart(line("A", "200.00"), line("B", "300.00")))) == D("75.00")
    assert reason(evaluate_one(name, cart(line("A", "499.99")))) == "CONDITION_NOT_MET"


def test_code_promotion_needs_its_code():
    assert reason(evaluate_one("code promotion", cart(line("A", "2000.00")))) == "CODE_REQUIRED"


def test_doc_promotions_item_count_equals_200():
    # 200 distinct SKUs at 2.00 (400): 200 off; 199 SKUs: not met
    lines = [line(f"S{number:03d}", "2.00") for number in range(200)]
    assert discount(evaluate_one("doc_promotions", cart(*lines))) == D("200.00")
    assert reason(evaluate_one("doc_promotions", cart(*lines[:199]))) == "CONDITION_NOT_MET"


def test_rake_crazy_deal_attribute_condition_cart_action():
    rake = line("R1", "40.00", sku_code="SKU456")
    assert discount(evaluate_one("Rake Crazy Deal", cart(rake, line("X", "60.00")))) == D("15.00")
    assert reason(evaluate_one("Rake Crazy Deal", cart(line("X", "60.00")))) == "CONDITION_NOT_MET"


def test_rake_half_price_on_the_rake_target():
    # ITEMCOUNT >= 1, 50% off the lines whose attribute sku_code is SKU456: 50% of 40 = 20
    result = evaluate_one("Rake 50% Discount", cart(line("R1", "40.00", key="rake", sku_code="SKU456"),
                                                    line("X", "60.00")))  # fmt: skip
    assert discount(result) == D("20.00")
    assert {share.line_key: share.discount for share in result.applied[0].lines if share.discount} == {
        "rake": D("20.00")
    }
    # no rake: the target condition does not hold
    assert reason(evaluate_one("Rake 50% Discount", cart(line("X", "60.00")))) == "CONDITION_NOT_MET"


def test_dengue_test_category_with_two_spaces():
    test = line("DENGUE", "1500.00", categories=["Health  Wellness"])
    # 20% of 1500 = 300
    assert discount(evaluate_one("20% on Dengue Test", cart(test, line("X", "100.00")))) == D("300.00")
    # comparison is exact: one space is another category
    other = line("DENGUE", "1500.00", categories=["Health Wellness"])
    assert evaluate_one("20% on Dengue Test", cart(other)).applied == ()


def test_twenty_percent_on_all():
    assert discount(evaluate_one("OH 20% on All", cart(line("A", "250.00")))) == D("50.00")


def test_biba_sku_gives_fifteen_percent_off_the_cart():
    # 15% of 1000 + 500 = 225
    the_cart = cart(line("A24BI10476EEN", "1000.00"), line("OTHER", "500.00"))
    assert discount(evaluate_one("Buy any Biba product, get 15% off", the_cart)) == D("225.00")


def test_ten_off_over_a_hundred():
    assert discount(
        evaluate_one("$10 off any order when you spend more than $100", cart(line("A", "100.00")))
    ) == D("10.00")


def test_region_west_zone_and_loyalty_only():
    name = "Region based offers Flat 500 INR off (West)"
    west = StoreScope(store_id=1, zone_ids=frozenset({75175598, 1}))
    assert discount(evaluate_one(name, cart(line("A", "3000.00")), store=west)) == D("500.00")
    assert reason(evaluate_one(name, cart(line("A", "3000.00")))) == "STORE_NOT_IN_SCOPE"
    assert (
        reason(evaluate_one(name, cart(line("A", "3000.00")), store=west, customer_known=False))
        == "LOYALTY_ONLY"
    )


def test_region_nautica_store():
    name = "Region based offers Flat 500 INR off (Nautica)"
    nautica = StoreScope(store_id=75027647)
    assert discount(evaluate_one(name, cart(line("A", "5000.00")), store=nautica)) == D("500.00")
    assert reason(evaluate_one(name, cart(line("A", "5000.00")), store=StoreScope(store_id=2))) == (
        "STORE_NOT_IN_SCOPE"
    )


def test_category_based_offers_amount_of_two_skus():
    # 3000 + 2500 of the two SKUs >= 5000: 50% of the cart 6000 = 3000
    the_cart = cart(line("33257531", "3000.00"), line("32059180", "2500.00"), line("X", "500.00"))
    assert discount(evaluate_one("Category based offers", the_cart)) == D("3000.00")
    assert (
        reason(evaluate_one("Category based offers", cart(line("33257531", "4999.99"))))
        == "CONDITION_NOT_MET"
    )


@pytest.mark.parametrize(("units", "free"), [(2, 1), (3, 1), (4, 2)])
def test_buy_one_get_one(units, free):
    # 10.00 a unit; groups = floor(units / (1 + 1))
    result = evaluate_one("Buy 1 get 1", cart(line("32753189", D(10) * units, units)))
    assert discount(result) == D(10) * free
    assert result.applied[0].redemption_count == free
