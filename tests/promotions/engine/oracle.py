"""A second, deliberately naive implementation of docs/engine.md, for the differential test.

It is written from the specification alone, not from `promotions/engine/`: it takes the promotions as
the API echoes them (camelCase dicts, values as decimal strings), a `Cart` and a `Context`, and answers
a `Result` of the engine's own types. Nothing is compiled, indexed or cached; every rule is re-read from
its dict each time, every condition is evaluated by looping over every line, and all arithmetic is
exact (`fractions.Fraction`) until the one rounding the specification allows.

The cart's state during an evaluation is, per line, its current value and (with "several line
promotions per unit" off) how many of its units a line promotion already discounted; per tender, what
is left of it. Units of one line are interchangeable: a line's units are worth its current value
divided by its quantity (docs/engine.md, "Value").

Where docs/engine.md leaves a choice open, the reading taken is the one written in the comment at that
place (and, for the open questions, in the notes of the session that wrote this file).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from promotions.engine.types import (
    Applied,
    Cart,
    Context,
    Headroom,
    Line,
    LineShare,
    Result,
    Skipped,
    TenderShare,
)

ZERO = Fraction(0)

LINE_ACTIONS = ("PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE", "PER_UNIT")
CART_ACTIONS = ("CART_BASED",)
TENDER_ACTIONS = ("TENDER",)
WALLET_TYPES = ("CUSTOMER", "EARNING", "REWARD")
TYPE_TIER = {"CUSTOMER": 0, "REWARD": 1, "CODE": 2, "EARNING": 3, "POS": 3}
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
NAMED_ATTRIBUTES = {"PRODUCT_ID": "product_id", "STYLE": "style", "COLOR": "color", "SIZE": "size"}
ACTION_PART = {
    "CART_BASED": "cartBasedAction",
    "PRODUCT_BASED": "productBasedAction",
    "FREE_PRODUCT": "freeProductAction",
    "FIXED_PRICE": "fixedPriceAction",
    "PER_UNIT": "perUnitAction",
    "TENDER": "tenderBasedAction",
}


class OracleUnsupported(Exception):
    """A promotion the specification gives no meaning (e.g. PER_UNIT by AMOUNT with a FIXED_PRICE reward)."""


# --- Numbers ------------------------------------------------------------------------------------


def exact(value: Any) -> Fraction:
    """A decimal string, a number or a Decimal, exactly."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(Decimal(str(value)))
    if isinstance(value, str):
        return Fraction(Decimal(value))
    return Fraction(value)


def to_decimal(value: Fraction) -> Decimal:
    """A Fraction with a terminating decimal expansion, as a Decimal (exactly)."""
    for places in range(0, 40):
        scale = 10**places
        if (value * scale).denominator == 1:
            return Decimal(int(value * scale)).scaleb(-places)
    raise ValueError(f"{value} has no short decimal expansion")


def round_to(value: Fraction, precision: int, mode: str) -> Fraction:
    """`value` rounded to `precision` places with one of the org's rounding modes."""
    scale = 10**precision
    scaled = value * scale
    lower = math.floor(scaled)
    rest = scaled - lower
    if rest == 0:
        return Fraction(lower, scale)
    upper = lower + 1
    away = upper if value > 0 else lower  # away from zero
    toward = lower if value > 0 else upper  # toward zero
    half = Fraction(1, 2)
    if mode == "UP":
        chosen = away
    elif mode == "DOWN":
        chosen = toward
    elif mode == "CEILING":
        chosen = upper
    elif mode == "FLOOR":
        chosen = lower
    elif mode in ("HALF_UP", "HALF_DOWN", "HALF_EVEN"):
        if rest > half:
            chosen = upper
        elif rest < half:
            chosen = lower
        elif mode == "HALF_UP":
            chosen = away
        elif mode == "HALF_DOWN":
            chosen = toward
        else:
            chosen = lower if lower % 2 == 0 else upper
    else:
        raise ValueError(f"unknown rounding mode {mode}")
    return Fraction(chosen, scale)


def round_down(value: Fraction, precision: int) -> Fraction:
    scale = 10**precision
    return Fraction(math.floor(value * scale), scale)


def compare(measure: Fraction, operator: str, value: Fraction) -> bool:
    if operator == "EQUALS":
        return measure == value
    if operator == "GREATER_THAN":
        return measure > value
    if operator == "GREATER_THAN_OR_EQUAL":
        return measure >= value
    raise OracleUnsupported(f"operator {operator}")


# --- The cart as it stands ----------------------------------------------------------------------


@dataclass
class State:
    cart: Cart
    settings: Any
    current: dict[str, Fraction]  # line key -> current value
    consumed: dict[str, Fraction]  # line key -> units a line promotion discounted (per-unit rule)
    tender_left: list[Fraction]  # per tender (by position): amount less tender promotions' discounts

    @classmethod
    def fresh(cls, cart: Cart, settings) -> State:
        return cls(
            cart=cart,
            settings=settings,
            current={line.key: exact(line.amount) for line in cart.lines},
            consumed={line.key: ZERO for line in cart.lines},
            tender_left=[exact(tender.amount) for tender in cart.tenders],
        )

    def copy(self) -> State:
        return State(
            self.cart, self.settings, dict(self.current), dict(self.consumed), list(self.tender_left)
        )

    @property
    def gross(self) -> bool:
        return self.settings.percentage_base == "GROSS"

    def value(self, line: Line) -> Fraction:
        """The line's value for conditions and percentage bases: current (NET) or as sent (GROSS)."""
        return exact(line.amount) if self.gross else self.current[line.key]

    def unit_value(self, line: Line) -> Fraction:
        return self.value(line) / exact(line.qty)

    def current_unit_value(self, line: Line) -> Fraction:
        return self.current[line.key] / exact(line.qty)

    def available(self, line: Line) -> Fraction:
        """Units a line promotion may still put in its target."""
        if self.settings.several_line_promotions_per_unit:
            return exact(line.qty)
        return exact(line.qty) - self.consumed[line.key]

    def line(self, key: str) -> Line:
        for line in self.cart.lines:
            if line.key == key:
                return line
        raise KeyError(key)

    def measured(self, units: Mapping[str, Fraction]) -> Fraction:
        """Value (NET/GROSS) of some units."""
        return sum((self.unit_value(self.line(key)) * qty for key, qty in units.items()), ZERO)

    def current_value(self, units: Mapping[str, Fraction]) -> Fraction:
        return sum(self.weights(units).values(), ZERO)

    def weights(self, units: Mapping[str, Fraction]) -> dict[str, Fraction]:
        """Current value of some units, per line: what each line gives to a discount."""
        return {key: self.current_unit_value(self.line(key)) * qty for key, qty in units.items()}


def pick_cheapest(state: State, units: Mapping[str, Fraction], count: Fraction) -> dict[str, Fraction]:
    """`count` units out of `units`, cheapest first: lines by unit value, then the line order; a line's
    units before the next line's. The unit value is the line's current value divided by its quantity
    ("A line's units are valued at its current value divided by its quantity"), with GROSS too."""
    lines = sorted(
        (state.line(key) for key, qty in units.items() if qty > 0),
        key=lambda line: (state.current_unit_value(line), line.order_key()),
    )
    picked: dict[str, Fraction] = {}
    left = count
    for line in lines:
        if left <= 0:
            break
        take = min(units[line.key], left)
        if take > 0:
            picked[line.key] = take
            left -= take
    return picked


# --- Matching and conditions --------------------------------------------------------------------


def criterion_in(criterion: Mapping, line: Line) -> bool:
    entity = criterion["entity"]
    values = criterion["values"]
    if entity == "SKU":
        return line.sku in values
    if entity == "CATEGORY":
        return any(category in values for category in line.categories)
    if entity == "BRAND":
        return any(brand in values for brand in line.brands)
    if entity == "ATTRIBUTE" or entity in NAMED_ATTRIBUTES:
        name = criterion["attributeName"] if entity == "ATTRIBUTE" else NAMED_ATTRIBUTES[entity]
        return name in line.attributes and line.attributes[name] in values
    raise OracleUnsupported(f"criterion entity {entity}")


def criterion_matches(criterion: Mapping, line: Line) -> bool:
    inside = criterion_in(criterion, line)
    if criterion["operator"] == "IN":
        return inside
    if criterion["operator"] == "NOT_IN":
        return not inside
    raise OracleUnsupported(f"criterion operator {criterion['operator']}")


def matching_lines(product_condition: Mapping, lines: Sequence[Line]) -> list[Line]:
    return [
        line
        for line in lines
        if all(criterion_matches(criterion, line) for criterion in product_condition["criteriaList"])
    ]


def product_holds(product_condition: Mapping, state: State) -> tuple[bool, list[Line]]:
    lines = matching_lines(product_condition, state.cart.lines)
    kpi = product_condition.get("kpi") or "NONE"
    if kpi == "NONE":
        return bool(lines), lines
    if kpi == "QUANTITY":
        measure = sum((exact(line.qty) for line in lines), ZERO)
    elif kpi == "AMOUNT":
        measure = sum((state.value(line) for line in lines), ZERO)
    else:
        raise OracleUnsupported(f"kpi {kpi}")
    return compare(measure, product_condition["operator"], exact(product_condition["value"])), lines


def cart_holds(cart_condition: Mapping, state: State) -> bool:
    kpi = cart_condition["kpi"]
    if kpi == "SUBTOTAL":
        measure = sum((state.value(line) for line in state.cart.lines), ZERO)
    elif kpi == "ITEMCOUNT":
        measure = Fraction(len({line.sku for line in state.cart.lines}))
    else:
        raise OracleUnsupported(f"cart kpi {kpi}")
    return compare(measure, cart_condition["operator"], exact(cart_condition["value"]))


def union(*groups: Sequence[Line], cart: Cart) -> list[Line]:
    keys = {line.key for group in groups for line in group}
    return [line for line in cart.lines if line.key in keys]


def combo_holds(combo: Mapping, state: State) -> tuple[bool, list[Line]]:
    results = [product_holds(part, state) for part in combo["productConditions"]]
    return all(holds for holds, _ in results), union(*(lines for _, lines in results), cart=state.cart)


def selection_holds(selection: Mapping | None, cart: Cart) -> bool:
    """The payment mode selection: IN, a tender is in `values`; NOT_IN, there are tenders and none is."""
    if not selection or not cart.tenders:
        return False
    values = selection["values"]
    inside = [tender for tender in cart.tenders if tender.identifier in values]
    if selection["operator"] == "IN":
        return bool(inside)
    if selection["operator"] == "NOT_IN":
        return not inside
    raise OracleUnsupported(f"selection operator {selection['operator']}")


def tender_identifiers(tender_condition: Mapping) -> set[str]:
    return {ident for mode in tender_condition.get("tenderModes") or () for ident in mode["identifiers"]}


def condition_result(condition: Mapping, state: State) -> tuple[bool, list[Line]]:
    """Whether the condition holds on the cart as it stands, and its condition set."""
    kind = condition["type"]
    every_line = list(state.cart.lines)
    if kind == "CART":
        return cart_holds(condition["cartCondition"], state), every_line
    if kind == "PRODUCT":
        return product_holds(condition["productCondition"], state)
    if kind == "COMBO_PRODUCT":
        return combo_holds(condition["comboProductCondition"], state)
    if kind == "TENDER":
        tender_condition = condition.get("tenderCondition") or {}
        identifiers = tender_identifiers(tender_condition)
        paid = any(tender.identifier in identifiers for tender in state.cart.tenders)
        nested = tender_condition.get("condition")
        if nested is None:
            return paid, every_line
        if nested["type"] not in ("CART", "PRODUCT"):
            raise OracleUnsupported(f"nested tender condition {nested['type']}")
        holds, lines = condition_result(nested, state)
        return paid and holds, lines
    selection = selection_holds(condition.get("paymentModeCondition"), state.cart)
    if kind == "PAYMENT_MODE":
        return selection, every_line
    if kind == "PAYMENT_MODE_SCOPE":
        holds, lines = product_holds(condition["productCondition"], state)
        return selection and holds, lines
    if kind == "PAYMENT_MODE_COMBO_PRODUCT":
        holds, lines = combo_holds(condition["comboProductCondition"], state)
        return selection and holds, lines
    raise OracleUnsupported(f"condition type {kind}")


def matching_tenders(condition: Mapping, cart: Cart) -> list[int]:
    """Positions of the tenders a TENDER action discounts: those the condition names (TENDER: its
    tenderModes' identifiers; the payment mode family: the selection's, NOT_IN: the others)."""
    kind = condition["type"]
    if kind == "TENDER":
        identifiers = tender_identifiers(condition.get("tenderCondition") or {})
        return [i for i, tender in enumerate(cart.tenders) if tender.identifier in identifiers]
    if kind in ("PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"):
        selection = condition.get("paymentModeCondition") or {}
        values = selection.get("values") or []
        inside = selection.get("operator") == "IN"
        return [i for i, tender in enumerate(cart.tenders) if (tender.identifier in values) == inside]
    return []


# --- Targets ------------------------------------------------------------------------------------
# A target is a dict line key -> units. None: the target condition does not hold (the promotion does
# not apply: CONDITION_NOT_MET). Target conditions are conditions: they see every unit of the cart; the
# units they hand out are the ones still available (per-unit rule) and not picked by an earlier part.


def is_n_units(product_condition: Mapping) -> bool:
    return product_condition.get("kpi") == "QUANTITY" and product_condition.get("operator") == "EQUALS"


def product_target(
    product_condition: Mapping, state: State, taken: Mapping[str, Fraction], *, limit_n: bool
) -> dict[str, Fraction] | None:
    lines = matching_lines(product_condition, state.cart.lines)
    free = {line.key: state.available(line) - taken.get(line.key, ZERO) for line in lines}
    free = {key: qty for key, qty in free.items() if qty > 0}
    if is_n_units(product_condition):
        if not lines:  # "at least one must be there"
            return None
        if limit_n:
            return pick_cheapest(state, free, exact(product_condition["value"]))
        return free
    holds, _ = product_holds(product_condition, state)
    return free if holds else None


def condition_target(target: Mapping, state: State, *, limit_n: bool) -> dict[str, Fraction] | None:
    kind = target["type"]
    if kind == "CART":
        if not cart_holds(target["cartCondition"], state):
            return None
        units = {line.key: state.available(line) for line in state.cart.lines}
        return {key: qty for key, qty in units.items() if qty > 0}
    if kind == "PRODUCT":
        return product_target(target["productCondition"], state, {}, limit_n=limit_n)
    if kind == "COMBO_PRODUCT":
        taken: dict[str, Fraction] = {}
        for part in target["comboProductCondition"]["productConditions"]:
            units = product_target(part, state, taken, limit_n=limit_n)
            if units is None:
                return None
            for key, qty in units.items():
                taken[key] = taken.get(key, ZERO) + qty
        return taken
    raise OracleUnsupported(f"target condition {kind}")


def action_target(
    part: Mapping, condition_set: Sequence[Line], state: State, *, limit_n: bool = True
) -> dict[str, Fraction] | None:
    if part.get("includeItemsFromConditionSet", True):
        units = {line.key: state.available(line) for line in condition_set}
        return {key: qty for key, qty in units.items() if qty > 0}
    return condition_target(part["productBasedCondition"], state, limit_n=limit_n)


def free_count(part: Mapping) -> Fraction:
    """FREE_PRODUCT's count: `quantity`, else n of a QUANTITY EQUALS n target (a PRODUCT target of an
    action that does not take the condition set), else 1."""
    if part.get("quantity") is not None:
        return exact(part["quantity"])
    target = part.get("productBasedCondition")
    if (
        not part.get("includeItemsFromConditionSet", True)
        and target
        and target["type"] == "PRODUCT"
        and is_n_units(target["productCondition"])
    ):
        return exact(target["productCondition"]["value"])
    return Fraction(1)


# --- One application ----------------------------------------------------------------------------


@dataclass
class Plan:
    """What one promotion would do, before rounding."""

    exact: Fraction
    units: dict[str, Fraction]  # discounted units per line (discountAppliedOnQuantity)
    weights: dict[str, Fraction]  # what each line gives: current value of its discounted units
    level: str
    groups: int = 1
    trigger: dict[str, Fraction] = field(default_factory=dict)  # units used as trigger
    tender_weights: dict[int, Fraction] | None = None  # tender position -> what is left of it
    # PER_UNIT by QUANTITY: each group an application of its own, (exact discount, its units)
    applications: list[tuple[Fraction, dict[str, Fraction]]] | None = None


def cart_limits(promotion: Mapping) -> tuple[Fraction | None, Fraction | None]:
    """(Cart-level DISCOUNT limit, Cart-level REDEMPTION/TRANSACTION limit)."""
    discount = redemptions = None
    for restriction in (promotion.get("promotionRestrictions") or {}).get("Cart") or ():
        limit = exact(restriction["limit"])
        if restriction["kpi"] == "DISCOUNT":
            discount = limit if discount is None else min(discount, limit)
        elif restriction["kpi"] in ("REDEMPTION", "TRANSACTION"):
            redemptions = limit if redemptions is None else min(redemptions, limit)
    return discount, redemptions


def whole_cart(state: State) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """Every line with something left: (units, weights) of a cart or tender promotion."""
    lines = [line for line in state.cart.lines if state.current[line.key] > 0]
    return {line.key: exact(line.qty) for line in lines}, {
        line.key: state.current[line.key] for line in lines
    }


def discount_of(kind: str, value: Fraction, base: Fraction) -> Fraction:
    if kind == "ABSOLUTE":
        return value
    if kind == "PERCENTAGE":
        return value * base / 100
    if kind == "FIXED_PRICE":
        return max(base - value, ZERO)
    raise OracleUnsupported(f"discount type {kind}")


def plan(promotion: Mapping, state: State) -> Plan | str:
    """The promotion on the cart as it stands: a Plan, or the reason it does not apply."""
    condition = promotion["condition"]
    holds, condition_set = condition_result(condition, state)
    if not holds:
        return "CONDITION_NOT_MET"
    action = promotion["action"]
    kind = action["type"]
    part = action[ACTION_PART[kind]]
    trigger = {line.key: exact(line.qty) for line in condition_set}

    if kind == "CART_BASED":
        units, weights = whole_cart(state)
        base = sum((state.value(line) for line in state.cart.lines), ZERO)
        return Plan(
            discount_of(part["type"], exact(part["value"]), base), units, weights, "CART", trigger=trigger
        )

    if kind == "TENDER":
        units, weights = whole_cart(state)
        positions = matching_tenders(condition, state.cart)
        left = {i: state.tender_left[i] for i in positions}
        base = sum((exact(state.cart.tenders[i].amount) if state.gross else left[i] for i in positions), ZERO)
        return Plan(
            discount_of(part["type"], exact(part["value"]), base),
            units,
            weights,
            "TENDER",
            trigger=trigger,
            tender_weights=left,
        )

    if kind in ("PRODUCT_BASED", "FIXED_PRICE"):
        target = action_target(part, condition_set, state)
        if target is None:
            return "CONDITION_NOT_MET"
        discount_type = part["type"] if kind == "PRODUCT_BASED" else "FIXED_PRICE"
        # GROSS changes "amounts in conditions and percentage bases" only: a fixed price is the
        # target's current value less v.
        base = state.measured(target) if discount_type == "PERCENTAGE" else state.current_value(target)
        amount = discount_of(discount_type, exact(part["value"]), base)
        return Plan(amount, target, state.weights(target), "LINE", trigger=trigger)

    if kind == "FREE_PRODUCT":
        target = action_target(part, condition_set, state)
        if target is None:
            return "CONDITION_NOT_MET"
        free = pick_cheapest(state, target, free_count(part))
        weights = state.weights(free)
        return Plan(sum(weights.values(), ZERO), free, weights, "LINE", trigger=trigger)

    if kind == "PER_UNIT":
        return per_unit_plan(promotion, part, condition_set, state, trigger)

    raise OracleUnsupported(f"action type {kind}")


def per_unit_plan(
    promotion: Mapping, part: Mapping, condition_set: list[Line], state: State, trigger: dict
) -> Plan | str:
    reward = part["rewardAction"]
    reward_kind = reward["type"]
    reward_part = reward[ACTION_PART[reward_kind]]
    kpi = part.get("perUnitKPI") or "QUANTITY"
    divider = exact(part.get("perUnitDivider", 1))
    if reward_kind == "PRODUCT_BASED":
        reward_type = reward_part["type"]
    elif reward_kind == "FIXED_PRICE":
        reward_type = "FIXED_PRICE"
    elif reward_kind == "FREE_PRODUCT":
        reward_type = "FREE"
    else:
        raise OracleUnsupported(f"reward {reward_kind}")
    if reward_type == "FIXED_PRICE" and kpi != "QUANTITY":
        raise OracleUnsupported("PER_UNIT by AMOUNT with a fixed price")

    # Inside PER_UNIT a target's QUANTITY EQUALS n does not limit the units: the groups do.
    target = action_target(reward_part, condition_set, state, limit_n=False)
    if target is None:
        return "CONDITION_NOT_MET"
    if part.get("includeItemsFromConditionSet", True):
        counted = {line.key: exact(line.qty) for line in condition_set}  # conditions see every unit
    else:
        counted = dict(target)
    counted_qty = sum(counted.values(), ZERO)

    per_group = free_count(reward_part) if reward_type == "FREE" else None
    if kpi == "QUANTITY":
        if reward_type == "FREE" and set(counted) & set(target):
            groups = math.floor(counted_qty / (divider + per_group))
        else:
            groups = math.floor(counted_qty / divider)
    elif kpi == "AMOUNT":
        groups = math.floor(state.measured(counted) / divider)
    else:
        raise OracleUnsupported(f"perUnitKPI {kpi}")
    _, redemption_limit = cart_limits(promotion)
    if redemption_limit is not None:
        groups = min(groups, math.floor(redemption_limit))
    trigger = {**trigger}
    for key, qty in counted.items():
        trigger[key] = max(trigger.get(key, ZERO), qty)
    if groups <= 0:
        return "NO_DISCOUNT"

    value = exact(reward_part["value"]) if reward_type != "FREE" else ZERO
    if kpi == "AMOUNT" and reward_type != "FREE":
        # A group is d of value, not units: one application, groups x v (or p% of groups x d of
        # value), off the whole target. (Free units are free units per group, by AMOUNT too.)
        amount = groups * value if reward_type == "ABSOLUTE" else value * groups * divider / 100
        return Plan(amount, target, state.weights(target), "LINE", groups=groups, trigger=trigger)

    # By QUANTITY (and free units by AMOUNT) each group is an application ("Each application's discount is computed exactly and
    # rounded once", redemptionCount = groups): the groups take the target's units cheapest first,
    # each its own (d units, or its free units); a group left without units gives nothing; a fixed
    # price prices whole groups of d units only.
    applications = []
    taken: dict[str, Fraction] = {}
    size = per_group if reward_type == "FREE" else divider
    for _ in range(groups):
        rest = {key: qty - taken.get(key, ZERO) for key, qty in target.items()}
        group = pick_cheapest(state, rest, size)
        if reward_type == "FIXED_PRICE" and sum(group.values(), ZERO) < divider:
            break
        for key, qty in group.items():
            taken[key] = taken.get(key, ZERO) + qty
        if reward_type == "FREE":
            amount = state.current_value(group)
        elif reward_type == "ABSOLUTE":
            amount = value if group else ZERO
        elif reward_type == "PERCENTAGE":
            amount = value * state.measured(group) / 100
        elif reward_type == "FIXED_PRICE":
            amount = max(state.current_value(group) - value, ZERO)
        else:
            raise OracleUnsupported(f"reward type {reward_type}")
        applications.append((amount, group))
    units = taken
    weights = state.weights(units)
    amount = sum((amount for amount, _ in applications), ZERO)
    return Plan(amount, units, weights, "LINE", groups=groups, trigger=trigger, applications=applications)


# --- Money --------------------------------------------------------------------------------------


def allocate(total: Fraction, weights: Sequence[tuple[Any, Fraction]], precision: int) -> list[Fraction]:
    """`total` spread over `weights` (in tie-break order) in proportion, each share rounded down to the
    precision, the units left over one each to the largest remainders (ties: the order given)."""
    unit = Fraction(1, 10**precision)
    whole = sum((weight for _, weight in weights), ZERO)
    if whole == 0:
        return [ZERO for _ in weights]
    exact_shares = [total * weight / whole for _, weight in weights]
    shares = [round_down(share, precision) for share in exact_shares]
    left = (total - sum(shares, ZERO)) / unit
    assert left.denominator == 1 and 0 <= left <= len(shares), (total, weights)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact_shares[i] - shares[i]), i))
    for i in by_remainder[: int(left)]:
        shares[i] += unit
    return shares


@dataclass
class Outcome:
    discount: Fraction
    plan: Plan
    line_shares: dict[str, Fraction]
    tender_shares: dict[int, Fraction]


def finish(promotion: Mapping, planned: Plan | str, state: State, headroom: Headroom | None) -> Outcome | str:
    """One rounding, the caps, and the spread over lines (and tenders)."""
    if isinstance(planned, str):
        return planned
    settings = state.settings
    precision = settings.precision
    if planned.applications is not None:
        return finish_groups(promotion, planned, state, headroom)
    discount = round_to(planned.exact, precision, settings.rounding_mode)
    caps = [round_down(sum(planned.weights.values(), ZERO), precision)]
    if planned.tender_weights is not None:
        caps.append(round_down(sum(planned.tender_weights.values(), ZERO), precision))
    discount_limit, _ = cart_limits(promotion)
    if discount_limit is not None:
        caps.append(round_down(discount_limit, precision))
    if headroom is not None and headroom.discount is not None:
        caps.append(round_down(exact(headroom.discount), precision))
    discount = min([discount, *caps])
    if discount <= 0:
        return "NO_DISCOUNT"
    line_shares = spread(discount, planned.weights, state)
    tender_shares: dict[int, Fraction] = {}
    if planned.tender_weights is not None:
        positions = sorted(planned.tender_weights)
        parts = allocate(discount, [(i, planned.tender_weights[i]) for i in positions], precision)
        tender_shares = dict(zip(positions, parts, strict=True))
    return Outcome(discount, planned, line_shares, tender_shares)


def spread(discount: Fraction, weights: Mapping[str, Fraction], state: State) -> dict[str, Fraction]:
    """A discount over lines in proportion to their weights, ties in the line order."""
    ordered = sorted((state.line(key) for key, weight in weights.items() if weight > 0), key=Line.order_key)
    shares = allocate(discount, [(line.key, weights[line.key]) for line in ordered], state.settings.precision)
    return {line.key: share for line, share in zip(ordered, shares, strict=True)}


def finish_groups(
    promotion: Mapping, planned: Plan, state: State, headroom: Headroom | None
) -> Outcome | str:
    """PER_UNIT by QUANTITY (free units by AMOUNT too): each group rounded once, capped at its units' current value, spread over
    them; then the Cart-level DISCOUNT limit and the headroom cap the total, which is then spread again
    over every unit the groups took, in proportion to what each line gave."""
    settings = state.settings
    precision = settings.precision
    total = ZERO
    line_shares: dict[str, Fraction] = {}
    discounted: dict[str, Fraction] = {}  # the units of the groups' lines that got a share
    giving: dict[str, Fraction] = {}  # every unit of the groups that gave something
    for amount, group in planned.applications:
        weights = state.weights(group)
        discount = min(
            round_to(amount, precision, settings.rounding_mode),
            round_down(sum(weights.values(), ZERO), precision),
        )
        if discount <= 0:
            continue
        total += discount
        for key, qty in group.items():
            giving[key] = giving.get(key, ZERO) + qty
        for key, share in spread(discount, weights, state).items():
            line_shares[key] = line_shares.get(key, ZERO) + share
            if share > 0:
                discounted[key] = discounted.get(key, ZERO) + group[key]
    planned = replace(planned, units=discounted)
    caps = []
    discount_limit, _ = cart_limits(promotion)
    if discount_limit is not None:
        caps.append(round_down(discount_limit, precision))
    if headroom is not None and headroom.discount is not None:
        caps.append(round_down(exact(headroom.discount), precision))
    if caps and total > min(caps):
        # Spread again over the units of the groups that gave something (a group that gave nothing
        # touched no line).
        total = min(caps)
        line_shares = spread(total, state.weights(giving), state)
    if total <= 0:
        return "NO_DISCOUNT"
    return Outcome(total, planned, line_shares, {})


def commit(outcome: Outcome, state: State) -> None:
    for key, share in outcome.line_shares.items():
        state.current[key] -= share
        assert state.current[key] >= 0
    if outcome.plan.level == "LINE" and not state.settings.several_line_promotions_per_unit:
        # A unit is "discounted" when its line got a share: a line whose share rounded to nothing
        # keeps its units for later line promotions.
        for key, qty in outcome.plan.units.items():
            if outcome.line_shares.get(key, ZERO) <= 0:
                continue
            state.consumed[key] += qty
            assert state.consumed[key] <= exact(state.line(key).qty)
    for position, share in outcome.tender_shares.items():
        state.tender_left[position] -= share


def applied(promotion: Mapping, outcome: Outcome, earned: str | None, cart: Cart) -> Applied:
    planned = outcome.plan
    keys = set(planned.units) | set(outcome.line_shares)
    if planned.level == "LINE":
        keys |= set(planned.trigger)
    shares = []
    for line in cart.lines:
        if line.key not in keys:
            continue
        units = planned.units.get(line.key, ZERO)
        used = max(units, planned.trigger.get(line.key, ZERO)) if planned.level == "LINE" else units
        shares.append(
            LineShare(
                line_key=line.key,
                discount=to_decimal(outcome.line_shares.get(line.key, ZERO)),
                discount_qty=to_decimal(units),
                promotion_qty=to_decimal(used),
            )
        )
    tenders = tuple(
        TenderShare(identifier=cart.tenders[i].identifier, discount=to_decimal(share), tender_index=i)
        for i, share in sorted(outcome.tender_shares.items())
    )
    return Applied(
        promotion_id=str(promotion["id"]),
        name=promotion.get("name") or "",
        message_label=promotion.get("messageLabel") or "",
        mode=promotion.get("mode") or "DISCOUNT",
        level=planned.level,
        discount=to_decimal(outcome.discount),
        redemption_count=planned.groups,
        earned_promotion_id=earned,
        lines=tuple(shares),
        tenders=tenders,
    )


# --- Who may get what ---------------------------------------------------------------------------


def epoch_ms(moment: dt.datetime) -> Fraction:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return Fraction(delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds, 1000)


def in_time_window(criteria: Mapping, promotion: Mapping, context: Context) -> bool:
    zone = ZoneInfo(context.timezone)
    hours, minutes = (int(part) for part in criteria["startTime"].split(":"))
    duration = dt.timedelta(hours=int(criteria["durationInHours"]))
    repeat = criteria["repeatFrequency"]
    weekdays = {WEEKDAYS.index(day) for day in criteria.get("weeklyValues") or ()}
    start_day = dt.datetime.fromtimestamp(int(promotion["startDate"]) / 1000, tz=zone).date()
    today = context.now.astimezone(zone).date()
    for back in range(0, 3):
        day = today - dt.timedelta(days=back)
        if repeat == "WEEKS" and day.weekday() not in weekdays:
            continue
        if repeat == "DOES_NOT_REPEAT" and day != start_day:
            continue
        if repeat not in ("WEEKS", "DAYS", "DOES_NOT_REPEAT"):
            raise OracleUnsupported(f"repeatFrequency {repeat}")
        opens = dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone).astimezone(dt.UTC)
        if opens <= context.now < opens + duration:
            return True
    return False


def in_store_scope(criteria: Mapping, context: Context) -> bool:
    store = context.store
    values = {int(value) for value in criteria["values"]}
    if store is None:
        inside = False
    elif criteria["type"] == "STORE":
        inside = store.store_id in values
    elif criteria["type"] == "ZONE":
        inside = bool(set(store.zone_ids) & values)
    elif criteria["type"] == "CONCEPT":
        inside = bool(set(store.concept_ids) & values)
    else:
        raise OracleUnsupported(f"store criteria type {criteria['type']}")
    return inside if criteria["operator"] == "IN" else not inside


def eligibility(promotion: Mapping, context: Context) -> tuple[str | None, str | None]:
    """(reason it is skipped before its condition is looked at, or None; the earned promotion id)."""
    pid = str(promotion["id"])
    if promotion.get("active") is False:
        return "INACTIVE", None
    now = epoch_ms(context.now)
    if now < int(promotion["startDate"]):
        return "NOT_STARTED", None
    if now >= int(promotion["endDate"]):
        return "EXPIRED", None
    if promotion.get("timeCriteria") and not in_time_window(promotion["timeCriteria"], promotion, context):
        return "OUTSIDE_TIME_WINDOW", None
    if promotion.get("storeCriteria") and not in_store_scope(promotion["storeCriteria"], context):
        return "STORE_NOT_IN_SCOPE", None
    earned = None
    kind = promotion["type"]
    if kind in WALLET_TYPES:
        earned = context.wallet.get(pid)
        if earned is None:
            return "NOT_IN_WALLET", None
    elif kind == "CODE":
        return "CODE_REQUIRED", None
    elif promotion.get("isLoyaltyOnly") and not context.customer_known:
        return "LOYALTY_ONLY", None
    headroom = context.headroom.get(pid)
    if headroom is not None:
        if headroom.redemptions is not None and headroom.redemptions <= 0:
            return "LIMIT_REACHED", None
        if headroom.discount is not None and headroom.discount <= 0:
            return "LIMIT_REACHED", None
    return None, earned


# --- The evaluation -----------------------------------------------------------------------------


def level_of(promotion: Mapping) -> str:
    kind = promotion["action"]["type"]
    if kind in CART_ACTIONS:
        return "CART"
    if kind in TENDER_ACTIONS:
        return "TENDER"
    if kind in LINE_ACTIONS:
        return "LINE"
    raise OracleUnsupported(f"action type {kind}")


def try_on(promotion: Mapping, state: State, context: Context) -> Outcome | str:
    headroom = context.headroom.get(str(promotion["id"]))
    return finish(promotion, plan(promotion, state), state, headroom)


def evaluate(cart: Cart, promotions: Sequence[Mapping], context: Context) -> Result:
    settings = context.settings
    skipped: dict[str, str] = {}
    candidates = []
    for promotion in promotions:
        level_of(promotion)  # an unknown action is refused before anything else
        reason, earned = eligibility(promotion, context)
        if reason:
            skipped[str(promotion["id"])] = reason
        else:
            candidates.append((promotion, earned))

    fresh = State.fresh(cart, settings)
    alone = {str(p["id"]): try_on(p, fresh.copy(), context) for p, _ in candidates}

    def rank(entry) -> tuple:
        promotion, _ = entry
        outcome = alone[str(promotion["id"])]
        discount = outcome.discount if isinstance(outcome, Outcome) else ZERO
        return (
            int(promotion.get("priority") or 0),
            TYPE_TIER[promotion["type"]],
            int(promotion["endDate"]),
            -discount,
            str(promotion["id"]),
        )

    ranked = sorted(candidates, key=rank)
    exclusive = [entry for entry in ranked if not entry[0].get("isStackable")]
    winners = [entry for entry in exclusive if isinstance(alone[str(entry[0]["id"])], Outcome)]
    if winners:
        best, earned = winners[0]
        best_id = str(best["id"])
        for promotion, _ in ranked:
            pid = str(promotion["id"])
            if pid == best_id:
                continue
            own = alone[pid]
            if not promotion.get("isStackable") and isinstance(own, str):
                skipped[pid] = own
            else:
                skipped[pid] = "BLOCKED_BY_EXCLUSIVE"
        return result(cart, promotions, [applied(best, alone[best_id], earned, cart)], skipped)

    for promotion, _ in exclusive:
        skipped[str(promotion["id"])] = alone[str(promotion["id"])]
    stackable = [entry for entry in ranked if entry[0].get("isStackable")]
    by_level = {
        level: [e for e in stackable if level_of(e[0]) == level] for level in ("LINE", "CART", "TENDER")
    }
    state = fresh.copy()
    done: list[Applied] = []

    def run(entries) -> int:
        count = 0
        for promotion, earned in entries:
            outcome = try_on(promotion, state, context)
            if isinstance(outcome, str):
                skipped[str(promotion["id"])] = outcome
                continue
            commit(outcome, state)
            done.append(applied(promotion, outcome, earned, cart))
            count += 1
        return count

    if settings.mechanism == "CART_FIRST":
        if run(by_level["CART"]):
            for promotion, _ in by_level["LINE"]:
                skipped[str(promotion["id"])] = "CART_PROMOTION_APPLIED"
        else:
            run(by_level["LINE"])
    else:
        run(by_level["LINE"])
        run(by_level["CART"])
    run(by_level["TENDER"])
    return result(cart, promotions, done, skipped)


def result(cart: Cart, promotions, done: list[Applied], skipped: dict[str, str]) -> Result:
    order = [str(p["id"]) for p in promotions]
    return Result(
        applied=tuple(done),
        skipped=tuple(Skipped(pid, skipped[pid]) for pid in order if pid in skipped),
    )
