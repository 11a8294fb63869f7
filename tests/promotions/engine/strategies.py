"""Promotions, carts and contexts for the engine's tests: plain builders, and Hypothesis strategies.

The builders write promotions in the shape the API echoes (camelCase, values as six-decimal strings,
dates in epoch ms), the shape `compile_rule` and the oracle both read. The strategies draw from small
universes of SKUs, categories, brands and attribute values, so random rules actually match random
carts; amounts have at most two decimals; some quantities are fractional (1.5 kg); SKUs repeat across
lines; carts carry tenders.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import strategies as st

from promotions.engine.types import Cart, Context, Headroom, Line, Settings, StoreScope, Tender

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # a Monday
DAY_MS = 86_400_000


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def dec6(value: Any) -> str:
    return f"{Decimal(str(value)):.6f}"


# --- Builders -----------------------------------------------------------------------------------


def criterion(entity: str, values, operator: str = "IN", attribute_name: str | None = None) -> dict:
    made = {"entity": entity, "operator": operator, "values": list(values)}
    if attribute_name is not None:
        made["attributeName"] = attribute_name
    return made


def product_condition(*criteria: dict, kpi: str = "NONE", operator: str = "NONE", value: Any = 0) -> dict:
    return {"criteriaList": list(criteria), "kpi": kpi, "operator": operator, "value": dec6(value)}


def product(*criteria: dict, kpi: str = "NONE", operator: str = "NONE", value: Any = 0) -> dict:
    return {
        "type": "PRODUCT",
        "productCondition": product_condition(*criteria, kpi=kpi, operator=operator, value=value),
    }


def combo(*parts: dict) -> dict:
    """A COMBO_PRODUCT condition of product conditions (each as `product_condition` builds it)."""
    return {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": list(parts)}}


def cart_condition(kpi: str, operator: str, value: Any) -> dict:
    return {"type": "CART", "cartCondition": {"kpi": kpi, "operator": operator, "value": dec6(value)}}


def tender_condition(*identifiers: str, nested: dict | None = None, mode: str = "CARD") -> dict:
    made: dict = {"tenderModes": [{"type": mode, "identifiers": list(identifiers)}]}
    if nested is not None:
        made["condition"] = nested
    return {"type": "TENDER", "tenderCondition": made}


def payment_mode(operator: str, *values: str, scope: dict | None = None, combo_parts=None) -> dict:
    selection = {"operator": operator, "values": list(values)}
    if scope is not None:
        return {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": selection, "productCondition": scope}
    if combo_parts is not None:
        return {
            "type": "PAYMENT_MODE_COMBO_PRODUCT",
            "paymentModeCondition": selection,
            "comboProductCondition": {"productConditions": list(combo_parts)},
        }
    return {"type": "PAYMENT_MODE", "paymentModeCondition": selection}


def cart_based(kind: str, value: Any) -> dict:
    return {"type": "CART_BASED", "cartBasedAction": {"type": kind, "value": dec6(value)}}


def tender_based(kind: str, value: Any) -> dict:
    return {"type": "TENDER", "tenderBasedAction": {"type": kind, "value": dec6(value)}}


def _targeted(part: dict, target: dict | None) -> dict:
    part["includeItemsFromConditionSet"] = target is None
    if target is not None:
        part["productBasedCondition"] = target
    return part


def product_based(kind: str, value: Any, target: dict | None = None) -> dict:
    return {
        "type": "PRODUCT_BASED",
        "productBasedAction": _targeted({"type": kind, "value": dec6(value)}, target),
    }


def free_product(target: dict | None = None, quantity: Any = None) -> dict:
    part = _targeted({}, target)
    if quantity is not None:
        part["quantity"] = dec6(quantity)
    return {"type": "FREE_PRODUCT", "freeProductAction": part}


def fixed_price(value: Any, target: dict | None = None) -> dict:
    return {"type": "FIXED_PRICE", "fixedPriceAction": _targeted({"value": dec6(value)}, target)}


def per_unit(reward: dict, divider: Any = 1, kpi: str = "QUANTITY", include: bool = True) -> dict:
    return {
        "type": "PER_UNIT",
        "perUnitAction": {
            "rewardAction": reward,
            "perUnitKPI": kpi,
            "perUnitDivider": dec6(divider),
            "includeItemsFromConditionSet": include,
        },
    }


def promotion(pid: str, condition: dict, action: dict, **fields: Any) -> dict:
    """A promotion as the API echoes it: active POS, stackable, priority 0, running a year around NOW."""
    made = {
        "id": pid,
        "name": f"promotion {pid}",
        "messageLabel": f"label {pid}",
        "type": "POS",
        "mode": "DISCOUNT",
        "active": True,
        "priority": 0,
        "isStackable": True,
        "startDate": ms(NOW) - 365 * DAY_MS,
        "endDate": ms(NOW) + 365 * DAY_MS,
        "condition": condition,
        "action": action,
        "promotionRestrictions": {},
        "storeCriteria": None,
        "timeCriteria": None,
        "isLoyaltyOnly": False,
    }
    made.update(fields)
    return made


def cart_limits(discount: Any = None, redemptions: Any = None) -> dict:
    limits = []
    if discount is not None:
        limits.append({"kpi": "DISCOUNT", "limit": dec6(discount)})
    if redemptions is not None:
        limits.append({"kpi": "REDEMPTION", "limit": dec6(redemptions)})
    return {"Cart": limits}


def line(key: str, sku: str, amount: Any, qty: Any = 1, categories=(), brands=(), attributes=None) -> Line:
    return Line(
        key=key,
        sku=sku,
        amount=Decimal(str(amount)),
        qty=Decimal(str(qty)),
        categories=frozenset(categories),
        brands=frozenset(brands),
        attributes=dict(attributes or {}),
    )


def cart(*lines: Line, tenders=()) -> Cart:
    return Cart(
        lines=tuple(lines),
        tenders=tuple(Tender(identifier, Decimal(str(amount))) for identifier, amount in tenders),
    )


def context(now: dt.datetime = NOW, **kwargs: Any) -> Context:
    settings_fields = {
        name: kwargs.pop(name) for name in list(kwargs) if name in Settings.__dataclass_fields__
    }
    return Context(now=now, settings=Settings(**settings_fields), **kwargs)


# --- Strategies ---------------------------------------------------------------------------------
# Each draw of Hypothesis costs time: small choices are made once from precomputed pools (every
# attribute combination, every criterion) rather than field by field, and strategies are built once.

SKUS = ["A", "B", "C", "D", "E"]
CATEGORIES = ["c1", "c2", "c3"]
BRANDS = ["b1", "b2"]
ATTRIBUTES = {"color": ["red", "blue"], "size": ["S", "M"], "style": ["x"], "product_id": ["p1", "p2"]}
ATTRIBUTE_ENTITIES = {"COLOR": "color", "SIZE": "size", "STYLE": "style", "PRODUCT_ID": "product_id"}
TENDERS = ["CreditCard", "CASH", "POINTS", "GiftCard"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
WEEKDAY_NAMES = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
# Outside every list the strategies draw from: a line no rule mentions.
STRANGER = {"sku": "ZZ-STRANGER", "category": "zz-category", "brand": "zz-brand"}


def _subsets(pool, max_size):
    return [list(found) for size in range(1, max_size + 1) for found in itertools.combinations(pool, size)]


def _attribute_choices() -> list[dict]:
    names = sorted(ATTRIBUTES)
    options = [[None, *ATTRIBUTES[name]] for name in names]
    return [
        {name: value for name, value in zip(names, values, strict=True) if value is not None}
        for values in itertools.product(*options)
    ]


def _all_criteria() -> list[dict]:
    found = []
    for entity, pool, name in [
        ("SKU", SKUS, None),
        ("CATEGORY", CATEGORIES, None),
        ("BRAND", BRANDS, None),
        *[("ATTRIBUTE", ATTRIBUTES[attr], attr) for attr in sorted(ATTRIBUTES)],
        *[(entity, ATTRIBUTES[attr], None) for entity, attr in ATTRIBUTE_ENTITIES.items()],
    ]:
        weight = 3 if entity in ("SKU", "CATEGORY") else 1
        for values in _subsets(pool, 3):
            found += [criterion(entity, values, "IN", name)] * (3 * weight)
            found += [criterion(entity, values, "NOT_IN", name)] * weight
    return found


amounts = st.one_of(
    st.integers(min_value=1, max_value=20_000).map(lambda cents: Decimal(cents).scaleb(-2)),
    st.sampled_from([Decimal("0.00"), Decimal("0.01"), Decimal("0.05"), Decimal("10.00"), Decimal("100.00")]),
)
quantities = st.sampled_from(
    [Decimal(n) for n in ("1", "1", "1", "1", "2", "2", "3", "4", "0.5", "1.5", "2.25", "0.75")]
)
LINE_CONTENT = st.tuples(
    st.sampled_from(SKUS),
    amounts,
    quantities,
    st.sampled_from([[], [], *_subsets(CATEGORIES, 2)]),
    st.sampled_from([[], [], *_subsets(BRANDS, 1)]),
    st.sampled_from(_attribute_choices()),
)
TENDER_SETS = st.sampled_from([[], [], *_subsets(TENDERS, 3)])


def _cart(contents, tenders) -> Cart:
    return Cart(
        lines=tuple(
            Line(
                key=f"L{i}",
                sku=sku,
                amount=amount,
                qty=qty,
                categories=frozenset(categories),
                brands=frozenset(brands),
                attributes=attributes,
            )
            for i, (sku, amount, qty, categories, brands, attributes) in enumerate(contents)
        ),
        tenders=tuple(Tender(identifier, amount) for identifier, amount in tenders),
    )


def carts(max_lines: int = 6) -> st.SearchStrategy[Cart]:
    return _carts(max_lines)


@functools.cache
def _carts(max_lines: int) -> st.SearchStrategy[Cart]:
    tenders = TENDER_SETS.flatmap(
        lambda identifiers: st.tuples(
            *(st.tuples(st.just(i), amounts.map(lambda a: a * 2)) for i in identifiers)
        )
    )
    return st.builds(_cart, st.lists(LINE_CONTENT, min_size=1, max_size=max_lines), tenders)


CRITERIA = st.sampled_from(_all_criteria())
QUANTITY_VALUES = ["1", "1", "1", "2", "2", "3", "0.5", "1.5"]
AMOUNT_VALUES = ["1", "10", "10", "50", "100", "150.50"]
_THRESHOLDS = [
    (kpi, operator, value)
    for kpi, values in (("QUANTITY", QUANTITY_VALUES), ("AMOUNT", AMOUNT_VALUES))
    for operator in ("GREATER_THAN_OR_EQUAL", "GREATER_THAN_OR_EQUAL", "GREATER_THAN", "EQUALS")
    for value in values
]
# kpi NONE half the time (a product condition that holds whenever a line matches).
PRODUCT_KPIS = st.sampled_from([("NONE", "NONE", "0")] * len(_THRESHOLDS) + _THRESHOLDS)
PRODUCT_CONDITIONS = st.builds(
    lambda found, kpi: product_condition(*found, kpi=kpi[0], operator=kpi[1], value=kpi[2]),
    st.one_of(*[CRITERIA.map(lambda c: [c]) for _ in range(3)], st.lists(CRITERIA, min_size=2, max_size=2)),
    PRODUCT_KPIS,
)
CART_CONDITIONS = st.sampled_from(
    [
        cart_condition("SUBTOTAL", operator, value)
        for operator in ("GREATER_THAN_OR_EQUAL", "GREATER_THAN", "GREATER_THAN", "EQUALS")
        for value in ("0", "1", "50", "99", "150", "200.25")
    ]
    + [
        cart_condition("ITEMCOUNT", operator, value)
        for operator in ("GREATER_THAN_OR_EQUAL", "GREATER_THAN", "EQUALS")
        for value in ("1", "2", "3")
    ]
)
PRODUCTS = PRODUCT_CONDITIONS.map(lambda pc: {"type": "PRODUCT", "productCondition": pc})
COMBOS = st.lists(PRODUCT_CONDITIONS, min_size=1, max_size=2).map(lambda found: combo(*found))
SELECTIONS = st.builds(
    lambda operator, values: {"operator": operator, "values": values},
    st.sampled_from(["IN", "IN", "NOT_IN"]),
    st.sampled_from(_subsets(TENDERS, 2)),
)
TENDER_CONDITIONS = st.builds(
    lambda modes, nested: {
        "type": "TENDER",
        "tenderCondition": {
            "tenderModes": [{"type": kind, "identifiers": ids} for kind, ids in modes],
            **({"condition": nested} if nested is not None else {}),
        },
    },
    st.lists(
        st.tuples(
            st.sampled_from(["CARD", "CASH", "PAYMENT_VOUCHER"]), st.sampled_from(_subsets(TENDERS, 2))
        ),
        min_size=1,
        max_size=2,
    ),
    st.one_of(st.none(), CART_CONDITIONS, PRODUCTS),
)
PAYMENT_CONDITIONS = {
    "PAYMENT_MODE": SELECTIONS.map(lambda s: {"type": "PAYMENT_MODE", "paymentModeCondition": s}),
    "PAYMENT_MODE_SCOPE": st.builds(
        lambda s, pc: {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": s, "productCondition": pc},
        SELECTIONS,
        PRODUCT_CONDITIONS,
    ),
    "PAYMENT_MODE_COMBO_PRODUCT": st.builds(
        lambda s, c: {
            "type": "PAYMENT_MODE_COMBO_PRODUCT",
            "paymentModeCondition": s,
            "comboProductCondition": c["comboProductCondition"],
        },
        SELECTIONS,
        COMBOS,
    ),
}
CONDITION_KINDS = [
    "CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT",
]  # fmt: skip
ACTION_KINDS = ["CART_BASED", "PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE", "PER_UNIT", "TENDER"]


@functools.cache
def conditions(kinds: tuple[str, ...] = tuple(CONDITION_KINDS)) -> st.SearchStrategy[dict]:
    options = {
        "CART": CART_CONDITIONS,
        "PRODUCT": PRODUCTS,
        "COMBO_PRODUCT": COMBOS,
        "TENDER": TENDER_CONDITIONS,
        **PAYMENT_CONDITIONS,
    }
    weights = {"PRODUCT": 6, "CART": 4, "COMBO_PRODUCT": 3}
    # (st.one_of drops a strategy given twice: each copy is a strategy of its own.)
    return st.one_of(*(options[kind].map(dict) for kind in kinds for _ in range(weights.get(kind, 1))))


TARGETS = st.sampled_from([0, 0, 1, 1, 2, 3]).flatmap(
    lambda i: [st.none(), PRODUCTS, COMBOS, CART_CONDITIONS][i]
)
PERCENTAGES = ["5", "10", "12.5", "25", "33.33", "50", "100"]
ABSOLUTES = ["0.01", "1", "5", "10", "19.99", "50", "500"]
PRODUCT_BASED_ACTIONS = st.builds(
    lambda kind_value, target: product_based(*kind_value, target),
    st.sampled_from(
        [("PERCENTAGE", v) for v in PERCENTAGES]
        + [(k, v) for k in ("ABSOLUTE", "FIXED_PRICE") for v in ABSOLUTES]
    ),
    TARGETS,
)
FREE_PRODUCT_ACTIONS = st.builds(free_product, TARGETS, st.sampled_from([None, None, None, "1", "2", "0.5"]))
FIXED_PRICE_ACTIONS = st.builds(fixed_price, st.sampled_from(ABSOLUTES), TARGETS)


def _per_unit(kpi_divider, reward, include):
    kpi, divider = kpi_divider
    if kpi == "AMOUNT" and reward["type"] == "FIXED_PRICE":
        reward = product_based("ABSOLUTE", reward["fixedPriceAction"]["value"])
    if (
        kpi == "AMOUNT"
        and reward["type"] == "PRODUCT_BASED"
        and reward["productBasedAction"]["type"] == "FIXED_PRICE"
    ):
        reward = {**reward, "productBasedAction": {**reward["productBasedAction"], "type": "ABSOLUTE"}}
    return per_unit(reward, divider, kpi, include)


PER_UNIT_ACTIONS = st.builds(
    _per_unit,
    st.sampled_from(
        [("QUANTITY", d) for d in ("1", "1", "2", "2", "3", "1.5")]
        + [("AMOUNT", d) for d in ("10", "25", "100")]
    ),
    st.one_of(FREE_PRODUCT_ACTIONS, PRODUCT_BASED_ACTIONS, FIXED_PRICE_ACTIONS),
    st.booleans(),
)
ACTIONS = {
    "CART_BASED": st.sampled_from(
        [cart_based("PERCENTAGE", v) for v in PERCENTAGES] + [cart_based("ABSOLUTE", v) for v in ABSOLUTES]
    ),
    "PRODUCT_BASED": PRODUCT_BASED_ACTIONS,
    "FREE_PRODUCT": FREE_PRODUCT_ACTIONS,
    "FIXED_PRICE": FIXED_PRICE_ACTIONS,
    "PER_UNIT": PER_UNIT_ACTIONS,
    "TENDER": st.sampled_from(
        [tender_based("PERCENTAGE", v) for v in PERCENTAGES]
        + [tender_based("ABSOLUTE", v) for v in ABSOLUTES]
    ),
}


@functools.cache
def actions(kinds: tuple[str, ...] = tuple(ACTION_KINDS)) -> st.SearchStrategy[dict]:
    return st.one_of(*(ACTIONS[kind] for kind in kinds))


TIME_CRITERIA = st.builds(
    lambda repeat, hour, minute, hours, days: {
        "startTime": f"{hour:02d}:{minute:02d}",
        "durationInHours": hours,
        "repeatFrequency": repeat,
        **({"weeklyValues": days} if repeat == "WEEKS" else {}),
    },
    st.sampled_from(["DAYS", "WEEKS", "DOES_NOT_REPEAT"]),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30]),
    st.integers(1, 24),
    st.sampled_from(_subsets(WEEKDAY_NAMES, 2)),
)
STORE_CRITERIA = st.builds(
    lambda kind, operator, values: {"type": kind, "operator": operator, "values": values},
    st.sampled_from(["STORE", "ZONE", "CONCEPT"]),
    st.sampled_from(["IN", "NOT_IN"]),
    st.sampled_from(_subsets([1, 2, 3, 4], 2)),
)
LIMITS = st.sampled_from(
    [{}] * 9
    + [
        cart_limits(discount=d, redemptions=r)
        for d in (None, "1", "5.55", "20", "100")
        for r in (None, "1", "2")
    ][1:]
)
SCOPE = st.one_of(
    st.just({}),
    st.just({}).map(dict),
    st.just({}).map(lambda scope: {**scope}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["POS", "POS", "CUSTOMER", "EARNING", "REWARD", "CODE"]),
            "active": st.sampled_from([True] * 9 + [False]),
            "isLoyaltyOnly": st.booleans(),
            "startDate": st.sampled_from([ms(NOW) - 365 * DAY_MS] * 5 + [ms(NOW) + DAY_MS]),
            "storeCriteria": st.one_of(st.none(), st.none(), STORE_CRITERIA),
            "timeCriteria": st.one_of(st.none(), st.none(), TIME_CRITERIA),
        }
    ),
)


@functools.cache
def promotions(
    pid: str,
    condition_kinds: tuple[str, ...] = tuple(CONDITION_KINDS),
    action_kinds: tuple[str, ...] = tuple(ACTION_KINDS),
    scoped: bool = True,
) -> st.SearchStrategy[dict]:
    """A valid promotion of any condition and action kind named. `scoped` false: always eligible as far
    as dates, store, time, wallet and type go (a plain POS promotion). TENDER actions go with TENDER
    conditions."""
    # A TENDER action goes with a TENDER condition (which names the tenders it discounts); the engine
    # refuses it with the payment mode kinds.
    tender_kinds = ("TENDER",)

    def build(action, condition, tender_condition_, priority, stackable, end_days, limits, scope):
        fields = {
            "priority": priority,
            "isStackable": stackable,
            "endDate": ms(NOW) + end_days * DAY_MS,
            "promotionRestrictions": limits,
            **(scope if scoped else {}),
        }
        chosen = tender_condition_ if action["type"] == "TENDER" else condition
        return promotion(pid, chosen, action, **fields)

    return st.builds(
        build,
        actions(tuple(action_kinds)),
        conditions(tuple(condition_kinds)),
        conditions(tender_kinds),
        st.integers(0, 2),
        st.sampled_from([True, True, True, True, False]),  # mostly stackable: an exclusive winner is alone
        st.sampled_from([8, 9, 30]),
        LIMITS,
        SCOPE,
    )


def rule_sets(max_size: int = 5, **kwargs) -> st.SearchStrategy[list[dict]]:
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    return st.sampled_from([n for n in range(1, max_size + 1) for _ in range(n)]).flatmap(
        lambda count: st.tuples(*(promotions(f"P{i:02d}", **kwargs) for i in range(count))).map(list)
    )


SETTINGS = st.builds(
    Settings,
    rounding_mode=st.sampled_from(
        ["HALF_UP", "HALF_UP", "UP", "DOWN", "CEILING", "FLOOR", "HALF_DOWN", "HALF_EVEN"]
    ),
    precision=st.sampled_from([2, 2, 2, 0, 1, 3]),
    mechanism=st.sampled_from(["LINE_ITEM_FIRST", "CART_FIRST"]),
    percentage_base=st.sampled_from(["NET", "GROSS"]),
    several_line_promotions_per_unit=st.booleans(),
)
STORES = st.one_of(
    st.none(),
    st.builds(
        lambda store, zones, concepts: StoreScope(store, frozenset(zones), frozenset(concepts)),
        st.integers(1, 4),
        st.sampled_from([[], *_subsets([1, 2, 3, 4], 2)]),
        st.sampled_from([[], *_subsets([1, 2, 3, 4], 2)]),
    ),
)
HEADROOMS = st.sampled_from(
    [None] * 60
    + [
        Headroom(redemptions=r, discount=d)
        for r in (None, Decimal(0), Decimal(1), Decimal(5))
        for d in (None, Decimal(0), Decimal("3.33"), Decimal(50))
    ]
)


@functools.cache
def contexts(promotion_ids: tuple[str, ...] = (), scoped: bool = True) -> st.SearchStrategy[Context]:
    if not scoped:
        return st.builds(lambda settings: Context(now=NOW, settings=settings), SETTINGS)

    def build(settings, store, known, in_wallet, headrooms, quarter_hours, zone):
        return Context(
            now=NOW + dt.timedelta(minutes=15 * quarter_hours),
            timezone=zone,
            store=store,
            customer_known=known,
            wallet={
                pid: f"E-{pid}" for pid, held in zip(promotion_ids, in_wallet, strict=True) if known and held
            },
            headroom={pid: h for pid, h in zip(promotion_ids, headrooms, strict=True) if h is not None},
            settings=settings,
        )

    return st.builds(
        build,
        SETTINGS,
        STORES,
        st.booleans(),
        st.tuples(*(st.sampled_from([True, True, True, False]) for _ in promotion_ids)),
        st.tuples(*(HEADROOMS for _ in promotion_ids)),
        st.integers(0, 7 * 24 * 4),
        st.sampled_from(ZONES),
    )


def at_precision(cart: Cart, precision: int) -> Cart:
    """The cart with its amounts rounded down to the org's precision. docs/engine.md cannot keep both
    "a line's discounts add up exactly to the promotion's discount" and "a line never gets more than it
    had" when a line's value is finer than the precision (lines of 0.01 and 0.69 at one decimal: a
    cart discount of 0.7 has no split in tenths), so an org's carts are taken to be in its precision."""
    if precision >= 2:
        return cart
    step = Decimal(1).scaleb(-precision)
    return Cart(
        lines=tuple(
            replace(line, amount=line.amount.quantize(step, rounding=ROUND_DOWN)) for line in cart.lines
        ),
        tenders=tuple(
            replace(tender, amount=tender.amount.quantize(step, rounding=ROUND_DOWN))
            for tender in cart.tenders
        ),
    )


def scenarios(
    max_rules: int = 5, scoped: bool = True, **kwargs
) -> st.SearchStrategy[tuple[Cart, list[dict], Context]]:
    """A cart, a rule set and a context (the cart's amounts in the context's precision)."""
    return rule_sets(max_size=max_rules, scoped=scoped, **kwargs).flatmap(
        lambda rules: st.tuples(
            carts(), st.just(rules), contexts(tuple(rule["id"] for rule in rules), scoped=scoped)
        ).map(lambda found: (at_precision(found[0], found[2].settings.precision), found[1], found[2]))
    )


def describe(cart: Cart, promotions: list[dict], context: Context) -> str:
    """A case, readable: to reproduce it by hand or report it."""
    import json

    lines = [
        f"  {line.key}: sku={line.sku} amount={line.amount} qty={line.qty} categories={sorted(line.categories)} "
        f"brands={sorted(line.brands)} attributes={dict(line.attributes)}"
        for line in cart.lines
    ]
    tenders = [f"  tender {tender.identifier} {tender.amount}" for tender in cart.tenders]
    rules = [
        json.dumps({k: v for k, v in p.items() if v not in (None, {}, False) or k == "isStackable"})
        for p in promotions
    ]
    return "\n".join(["cart:", *lines, *tenders, "promotions:", *rules, f"context: {context}"])
