"""PRODUCT conditions: criteria on SKU, CATEGORY, BRAND, ATTRIBUTE and the named attributes, IN and NOT_IN,
every criterion at once; kpi NONE, QUANTITY, AMOUNT."""

from __future__ import annotations

import pytest

from .builders import (
    D,
    cart,
    criteria,
    line,
    product,
    product_based,
    product_condition,
    promotion,
    reasons,
    run,
    shares,
)

LINES = (
    line(
        "S1",
        "40.00",
        2,
        key="red-shirt",
        categories=["SHIRTS", "MEN"],
        brands=["ACME"],
        color="red",
        size="M",
    ),
    line(
        "S2", "30.00", key="blue-shirt", categories=["SHIRTS"], brands=["OTHER"], color="blue", style="slim"
    ),
    line("P1", "1.50", "1.5", key="apples", categories=["FRUIT"], product_id="apple-1", origin="NZ"),
    line("X1", "10.00", key="bare"),
)
CART = cart(*LINES)


def ten_percent_where(*criteria_list, **kpi):
    return promotion(
        product_condition(product(*criteria_list, **kpi)), product_based("PERCENTAGE", 10), id="p"
    )


@pytest.mark.parametrize(
    ("criterion", "keys"),
    [
        (criteria("SKU", "S1", "P1"), {"red-shirt", "apples"}),
        (criteria("CATEGORY", "SHIRTS"), {"red-shirt", "blue-shirt"}),
        (criteria("BRAND", "ACME"), {"red-shirt"}),
        (criteria("ATTRIBUTE", "NZ", attribute="origin"), {"apples"}),
        (criteria("COLOR", "blue"), {"blue-shirt"}),
        (criteria("SIZE", "M"), {"red-shirt"}),
        (criteria("STYLE", "slim"), {"blue-shirt"}),
        (criteria("PRODUCT_ID", "apple-1"), {"apples"}),
        # NOT_IN holds when IN does not: a line without categories is NOT_IN every category list
        (criteria("CATEGORY", "SHIRTS", operator="NOT_IN"), {"apples", "bare"}),
        (criteria("BRAND", "ACME", operator="NOT_IN"), {"blue-shirt", "apples", "bare"}),
        (criteria("COLOR", "red", operator="NOT_IN"), {"blue-shirt", "apples", "bare"}),
    ],
)
def test_a_criterion_selects_lines(criterion, keys):
    # 10% of each selected line's value
    result = run(CART, ten_percent_where(criterion))
    expected = {line.key: line.amount / 10 for line in LINES if line.key in keys}
    assert shares(result, "p") == {key: D(value).quantize(D("0.01")) for key, value in expected.items()}


def test_comparison_is_exact():
    result = run(CART, ten_percent_where(criteria("CATEGORY", "shirts")))
    assert result.applied == ()
    assert reasons(run(CART, ten_percent_where(criteria("CATEGORY", "shirts")), explain=True)) == {
        "p": "CONDITION_NOT_MET"
    }


def test_every_criterion_must_match():
    # SHIRTS and not ACME: the blue shirt only, 10% of 30 = 3
    result = run(
        CART, ten_percent_where(criteria("CATEGORY", "SHIRTS"), criteria("BRAND", "ACME", operator="NOT_IN"))
    )
    assert shares(result, "p") == {"blue-shirt": D("3.00")}


@pytest.mark.parametrize(
    ("kpi", "operator", "value", "holds"),
    [
        ("QUANTITY", "EQUALS", "3", True),  # shirts: 2 + 1 units
        ("QUANTITY", "GREATER_THAN", "3", False),
        ("QUANTITY", "GREATER_THAN_OR_EQUAL", "3", True),
        ("AMOUNT", "EQUALS", "70", True),  # 40 + 30
        ("AMOUNT", "GREATER_THAN", "70", False),
        ("AMOUNT", "GREATER_THAN_OR_EQUAL", "69.99", True),
    ],
)
def test_kpi_measures_the_matching_lines(kpi, operator, value, holds):
    body = ten_percent_where(criteria("CATEGORY", "SHIRTS"), kpi=kpi, operator=operator, value=value)
    result = run(CART, body)
    # 10% of 70 = 7
    assert (result.discount == D("7.00")) is holds


def test_decimal_quantities():
    # 1.5 kg of apples: QUANTITY >= 1.5 holds, > 1.5 does not
    holds = ten_percent_where(
        criteria("CATEGORY", "FRUIT"), kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value="1.5"
    )
    assert shares(run(CART, holds), "p") == {"apples": D("0.15")}
    fails = ten_percent_where(
        criteria("CATEGORY", "FRUIT"), kpi="QUANTITY", operator="GREATER_THAN", value="1.5"
    )
    assert run(CART, fails).applied == ()


def test_kpi_none_needs_one_matching_line():
    assert run(CART, ten_percent_where(criteria("SKU", "NOPE"), kpi="NONE")).applied == ()
    assert shares(run(CART, ten_percent_where(criteria("SKU", "X1"))), "p") == {"bare": D("1.00")}
