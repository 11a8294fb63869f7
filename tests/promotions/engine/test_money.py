"""Money (docs/engine.md, "Money and rounding"): each discount rounded once with the org's mode and precision,
capped, spread by largest remainder."""

from __future__ import annotations

import pytest

from promotions.engine.money import Rounding, allocate

from .builders import D, cart, cart_based, cart_condition, line, promotion, run, shares

ANY = cart_condition("SUBTOTAL", "GREATER_THAN", 0)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # 12.5% of 10.10 = 1.2625; of -: the discount is positive, so UP = CEILING and DOWN = FLOOR
        ("UP", "1.27"),
        ("DOWN", "1.26"),
        ("CEILING", "1.27"),
        ("FLOOR", "1.26"),
        ("HALF_UP", "1.26"),
        ("HALF_DOWN", "1.26"),
        ("HALF_EVEN", "1.26"),
    ],
)
def test_rounding_modes(mode, expected):
    result = run(
        cart(line("A", "10.10")), promotion(ANY, cart_based("PERCENTAGE", "12.5"), id="p"), rounding_mode=mode
    )
    assert result.discount == D(expected)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("HALF_UP", "0.13"), ("HALF_DOWN", "0.12"), ("HALF_EVEN", "0.12"), ("UP", "0.13"), ("DOWN", "0.12")],
)
def test_half_modes_on_an_exact_half(mode, expected):
    # 5% of 2.50 = 0.125, exactly between 0.12 and 0.13
    result = run(
        cart(line("A", "2.50")), promotion(ANY, cart_based("PERCENTAGE", 5), id="p"), rounding_mode=mode
    )
    assert result.discount == D(expected)


@pytest.mark.parametrize(
    ("precision", "expected"), [(0, "1"), (1, "1.3"), (2, "1.26"), (3, "1.263"), (6, "1.2625")]
)
def test_precision(precision, expected):
    result = run(cart(line("A", "10.10")), promotion(ANY, cart_based("PERCENTAGE", "12.5"), id="p"),
                 precision=precision)  # fmt: skip
    assert result.discount == D(expected)


def test_the_cap_is_rounded_down():
    # 100% of 10.125 with precision 2: the cap is 10.12, not 10.13
    result = run(cart(line("A", "10.125")), promotion(ANY, cart_based("PERCENTAGE", 100), id="p"))
    assert result.discount == D("10.12")


def test_largest_remainder_ties_follow_the_line_order():
    # 0.02 over three lines of 1.00: 0.00666.. each: floors 0, one cent each to the first two in line order
    the_cart = cart(line("C", "1.00", key="c"), line("B", "1.00", key="b"), line("A", "1.00", key="a"))
    result = run(the_cart, promotion(ANY, cart_based("ABSOLUTE", "0.02"), id="p"))
    assert shares(result, "p") == {"a": D("0.01"), "b": D("0.01")}


def test_allocate_adds_up_and_never_passes_a_cap():
    rounding = Rounding("HALF_UP", 2)
    shares_, given = allocate(
        D("10.00"), [(0, D("1"), D("1")), (1, D("2"), D("2")), (2, D("7"), D("7"))], rounding
    )
    assert shares_ == {0: D("1.00"), 1: D("2.00"), 2: D("7.00")} and given == D("10.00")
    # 7 over 1/3 : 1/3 : 1/3: 2.33 each + the cent to the first
    third = D(1) / 3
    shares_, given = allocate(D("7.00"), [(0, third, D(5)), (1, third, D(5)), (2, third, D(5))], rounding)
    assert shares_ == {0: D("2.34"), 1: D("2.33"), 2: D("2.33")} and given == D("7.00")
    # precision 0, two lines of 0.60: 1 unit to share, 0.5 each: neither can take the unit without passing
    # its value, so it is dropped
    shares_, given = allocate(
        D(1), [(0, D("0.6"), D("0.6")), (1, D("0.6"), D("0.6"))], Rounding("HALF_UP", 0)
    )
    assert given == D(0)


def test_off_grid_amounts_give_no_discount_when_no_line_can_take_a_unit():
    the_cart = cart(line("A", "0.60", key="a"), line("B", "0.60", key="b"))
    result = run(the_cart, promotion(ANY, cart_based("PERCENTAGE", 90), id="p"), precision=0)
    # 90% of 1.20 = 1.08 -> 1, cap 1.20 -> 1; no line can take the whole unit
    assert result.applied == ()
