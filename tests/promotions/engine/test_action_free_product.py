"""FREE_PRODUCT actions: the target's cheapest units cost 0; how many: `quantity`, else n of a QUANTITY
EQUALS n target, else 1."""

from __future__ import annotations

from .builders import (
    D,
    cart,
    category,
    discounts,
    free_product,
    line,
    product_condition,
    promotion,
    run,
    shares,
)

CAKES = product_condition(category("CAKES"))


def cakes_cart():
    return cart(
        line("CAKE-L", "24.00", 2, key="large", categories=["CAKES"]),  # 12 each
        line("CAKE-S", "7.00", key="small", categories=["CAKES"]),
        line("CAKE-M", "9.00", key="medium", categories=["CAKES"]),
    )


def test_one_free_unit_the_cheapest():
    assert shares(run(cakes_cart(), promotion(CAKES, free_product(), id="p")), "p") == {"small": D("7.00")}


def test_quantity_free_units():
    # the three cheapest: 7 + 9 + 12 = 28
    result = run(cakes_cart(), promotion(CAKES, free_product(quantity=3), id="p"))
    assert shares(result, "p") == {"small": D("7.00"), "medium": D("9.00"), "large": D("12.00")}
    assert {share.line_key: share.discount_qty for share in result.applied[0].lines} == {
        "small": D(1), "medium": D(1), "large": D(1)
    }  # fmt: skip


def test_n_of_the_target():
    two = product_condition(category("CAKES", kpi="QUANTITY", operator="EQUALS", value=2))
    assert discounts(run(cakes_cart(), promotion(CAKES, free_product(two), id="p"))) == {"p": D("16.00")}


def test_ties_on_unit_value_follow_the_line_order():
    # two lines of the same price: the one first in line order (sku A before B) is free
    the_cart = cart(
        line("B", "5.00", key="b", categories=["CAKES"]), line("A", "5.00", key="a", categories=["CAKES"])
    )
    assert shares(run(the_cart, promotion(CAKES, free_product(), id="p")), "p") == {"a": D("5.00")}


def test_a_free_fraction_of_a_decimal_quantity():
    # 2.5 kg of cheese at 20.00 (8.00 a kg), 1 free unit (kg): 8.00
    the_cart = cart(line("CHEESE", "20.00", "2.5", key="cheese", categories=["CAKES"]))
    assert shares(run(the_cart, promotion(CAKES, free_product(), id="p")), "p") == {"cheese": D("8.00")}
