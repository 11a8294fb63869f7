"""Promotions, carts and contexts for the engine's tests: plain builders, and Hypothesis strategies.

The builders write promotions in the shape the API echoes (camelCase, values as six-decimal strings,
dates in epoch ms), the shape `compile_rule` and the oracle both read. The strategies draw from small
universes of SKUs, categories, brands and attribute values, so random rules actually match random
carts; amounts have at most two decimals; some quantities are fractional (1.5 kg); SKUs repeat across
lines; carts carry tenders.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
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

SKUS = ["A", "B", "C", "D", "E"]
CATEGORIES = ["c1", "c2", "c3"]
BRANDS = ["b1", "b2"]
ATTRIBUTES = {"color": ["red", "blue"], "size": ["S", "M"], "style": ["x"], "product_id": ["p1", "p2"]}
ATTRIBUTE_ENTITIES = {"COLOR": "color", "SIZE": "size", "STYLE": "style", "PRODUCT_ID": "product_id"}
TENDERS = ["CreditCard", "CASH", "POINTS", "GiftCard"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
# Outside every list the strategies draw from: a line no rule mentions.
STRANGER = {"sku": "ZZ-STRANGER", "category": "zz-category", "brand": "zz-brand"}


def money(low: str = "0.01", high: str = "200.00") -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=2)


quantities = st.one_of(
    st.integers(min_value=1, max_value=4).map(Decimal),
    st.sampled_from([Decimal("0.5"), Decimal("1.5"), Decimal("2.25"), Decimal("0.75")]),
)


@st.composite
def lines_(draw, key: str) -> Line:
    attributes = {
        name: draw(st.sampled_from(values)) for name, values in ATTRIBUTES.items() if draw(st.booleans())
    }
    return Line(
        key=key,
        sku=draw(st.sampled_from(SKUS)),
        amount=draw(
            st.one_of(money(), money(), money(), st.sampled_from(["0.00", "0.01", "0.05"]).map(Decimal))
        ),
        qty=draw(quantities),
        categories=frozenset(draw(st.sets(st.sampled_from(CATEGORIES), max_size=2))),
        brands=frozenset(draw(st.sets(st.sampled_from(BRANDS), max_size=1))),
        attributes=attributes,
    )


@st.composite
def carts(draw, max_lines: int = 6) -> Cart:
    count = draw(st.integers(min_value=1, max_value=max_lines))
    lines = [draw(lines_(f"L{i}")) for i in range(count)]
    identifiers = draw(st.lists(st.sampled_from(TENDERS), unique=True, max_size=3))
    tenders = tuple(Tender(identifier, draw(money("0.00", "300.00"))) for identifier in identifiers)
    return Cart(lines=tuple(lines), tenders=tenders)


@st.composite
def criteria(draw) -> dict:
    entity = draw(
        st.sampled_from(["SKU", "SKU", "CATEGORY", "CATEGORY", "BRAND", "ATTRIBUTE", *ATTRIBUTE_ENTITIES])
    )
    operator = draw(st.sampled_from(["IN", "IN", "IN", "NOT_IN"]))
    if entity == "SKU":
        pool, name = SKUS, None
    elif entity == "CATEGORY":
        pool, name = CATEGORIES, None
    elif entity == "BRAND":
        pool, name = BRANDS, None
    elif entity == "ATTRIBUTE":
        name = draw(st.sampled_from(sorted(ATTRIBUTES)))
        pool = ATTRIBUTES[name]
    else:
        pool, name = ATTRIBUTES[ATTRIBUTE_ENTITIES[entity]], None
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=min(3, len(pool)), unique=True))
    return criterion(entity, values, operator, name)


@st.composite
def product_conditions(draw, allow_n_units: bool = True) -> dict:
    found = draw(st.lists(criteria(), min_size=1, max_size=2))
    kpi = draw(st.sampled_from(["NONE", "QUANTITY", "AMOUNT"]))
    if kpi == "NONE":
        return product_condition(*found)
    operators = ["GREATER_THAN_OR_EQUAL", "GREATER_THAN", "EQUALS"]
    operator = draw(st.sampled_from(operators if allow_n_units or kpi != "QUANTITY" else operators[:2]))
    if kpi == "QUANTITY":
        value = draw(st.sampled_from(["1", "1", "2", "2", "3", "0.5", "1.5", "4"]))
    else:
        value = draw(st.sampled_from(["1", "10", "50", "100", "150.50", "300"]))
    return product_condition(*found, kpi=kpi, operator=operator, value=value)


@st.composite
def cart_conditions(draw) -> dict:
    kpi = draw(st.sampled_from(["SUBTOTAL", "ITEMCOUNT"]))
    operator = draw(st.sampled_from(["GREATER_THAN_OR_EQUAL", "GREATER_THAN", "EQUALS"]))
    if kpi == "SUBTOTAL":
        value = draw(st.sampled_from(["0", "1", "50", "99", "150", "200.25", "400"]))
    else:
        value = draw(st.sampled_from(["1", "2", "3"]))
    return cart_condition(kpi, operator, value)


def combos(parts=None) -> st.SearchStrategy[dict]:
    return st.lists(parts or product_conditions(), min_size=1, max_size=3).map(lambda found: combo(*found))


def products() -> st.SearchStrategy[dict]:
    return product_conditions().map(lambda pc: {"type": "PRODUCT", "productCondition": pc})


@st.composite
def selections(draw) -> dict:
    return {
        "operator": draw(st.sampled_from(["IN", "IN", "NOT_IN"])),
        "values": draw(st.lists(st.sampled_from(TENDERS), min_size=1, max_size=2, unique=True)),
    }


@st.composite
def tender_conditions(draw) -> dict:
    modes = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["CARD", "CASH", "PAYMENT_VOUCHER"]),
                st.lists(st.sampled_from(TENDERS), min_size=1, max_size=2, unique=True),
            ),
            min_size=1,
            max_size=2,
        )
    )
    made: dict = {"tenderModes": [{"type": kind, "identifiers": ids} for kind, ids in modes]}
    nested = draw(st.one_of(st.none(), cart_conditions(), products()))
    if nested is not None:
        made["condition"] = nested
    return {"type": "TENDER", "tenderCondition": made}


@st.composite
def payment_conditions(draw) -> dict:
    kind = draw(st.sampled_from(["PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"]))
    made = {"type": kind, "paymentModeCondition": draw(selections())}
    if kind == "PAYMENT_MODE_SCOPE":
        made["productCondition"] = draw(product_conditions())
    elif kind == "PAYMENT_MODE_COMBO_PRODUCT":
        made["comboProductCondition"] = draw(combos())["comboProductCondition"]
    return made


CONDITION_KINDS = [
    "CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT",
]  # fmt: skip
ACTION_KINDS = ["CART_BASED", "PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE", "PER_UNIT", "TENDER"]


def conditions(kinds=CONDITION_KINDS) -> st.SearchStrategy[dict]:
    options = {
        "CART": cart_conditions(),
        "PRODUCT": products(),
        "COMBO_PRODUCT": combos(),
        "TENDER": tender_conditions(),
    }
    payment = [kind for kind in kinds if kind.startswith("PAYMENT_MODE")]
    chosen = [options[kind] for kind in kinds if kind in options]
    if payment:
        chosen.append(payment_conditions().filter(lambda c: c["type"] in payment))
    return st.one_of(*chosen)


def targets() -> st.SearchStrategy[dict]:
    return st.one_of(products(), products(), combos(), cart_conditions())


percentages = st.sampled_from(["5", "10", "12.5", "25", "33.33", "50", "100"])
absolutes = st.sampled_from(["0.01", "1", "5", "10", "19.99", "50", "500"])


@st.composite
def product_based_actions(draw) -> dict:
    kind = draw(st.sampled_from(["ABSOLUTE", "PERCENTAGE", "FIXED_PRICE"]))
    value = draw(percentages if kind == "PERCENTAGE" else absolutes)
    target = draw(st.one_of(st.none(), targets()))
    return product_based(kind, value, target)


@st.composite
def free_product_actions(draw) -> dict:
    target = draw(st.one_of(st.none(), targets()))
    quantity = draw(st.one_of(st.none(), st.sampled_from(["1", "2", "0.5"])))
    return free_product(target, quantity)


@st.composite
def fixed_price_actions(draw) -> dict:
    return fixed_price(draw(absolutes), draw(st.one_of(st.none(), targets())))


@st.composite
def per_unit_actions(draw) -> dict:
    kpi = draw(st.sampled_from(["QUANTITY", "QUANTITY", "AMOUNT"]))
    rewards = [free_product_actions(), product_based_actions()]
    if kpi == "QUANTITY":
        rewards.append(fixed_price_actions())
    reward = draw(st.one_of(*rewards))
    if (
        kpi == "AMOUNT"
        and reward["type"] == "PRODUCT_BASED"
        and reward["productBasedAction"]["type"] == "FIXED_PRICE"
    ):
        reward["productBasedAction"]["type"] = "ABSOLUTE"
    divider = draw(st.sampled_from(["1", "2", "3", "1.5"] if kpi == "QUANTITY" else ["10", "25", "100"]))
    return per_unit(reward, divider, kpi, draw(st.booleans()))


def actions(kinds=ACTION_KINDS) -> st.SearchStrategy[dict]:
    options = {
        "CART_BASED": st.tuples(st.sampled_from(["ABSOLUTE", "PERCENTAGE"]), st.integers(0, 1)).flatmap(
            lambda kind: (percentages if kind[0] == "PERCENTAGE" else absolutes).map(
                lambda value: cart_based(kind[0], value)
            )
        ),
        "PRODUCT_BASED": product_based_actions(),
        "FREE_PRODUCT": free_product_actions(),
        "FIXED_PRICE": fixed_price_actions(),
        "PER_UNIT": per_unit_actions(),
        "TENDER": st.sampled_from(["ABSOLUTE", "PERCENTAGE"]).flatmap(
            lambda kind: (percentages if kind == "PERCENTAGE" else absolutes).map(
                lambda value: tender_based(kind, value)
            )
        ),
    }
    return st.one_of(*(options[kind] for kind in kinds))


@st.composite
def time_criteria(draw) -> dict:
    repeat = draw(st.sampled_from(["DAYS", "WEEKS", "DOES_NOT_REPEAT"]))
    made = {
        "startTime": f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15, 30])):02d}",
        "durationInHours": draw(st.integers(1, 24)),
        "repeatFrequency": repeat,
    }
    if repeat == "WEEKS":
        made["weeklyValues"] = draw(
            st.lists(
                st.sampled_from(
                    ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
                ),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
    return made


@st.composite
def promotions(
    draw,
    pid: str,
    condition_kinds=CONDITION_KINDS,
    action_kinds=ACTION_KINDS,
    scoped: bool = True,
) -> dict:
    """A valid promotion of any condition and action. `scoped` false: always eligible as far as dates,
    store, time, wallet and type go (a POS promotion without criteria)."""
    action = draw(actions(action_kinds))
    if action["type"] == "TENDER":
        kinds = [k for k in condition_kinds if k == "TENDER" or k.startswith("PAYMENT_MODE")] or ["TENDER"]
        condition = draw(conditions(kinds))
    else:
        condition = draw(conditions(condition_kinds))
    fields: dict[str, Any] = {
        "priority": draw(st.integers(0, 2)),
        "isStackable": draw(st.booleans()),
        "endDate": ms(NOW) + draw(st.sampled_from([8, 9, 30])) * DAY_MS,
    }
    limits: dict = {}
    if draw(st.integers(0, 3)) == 0:
        limits = cart_limits(
            discount=draw(st.one_of(st.none(), st.sampled_from(["1", "5.55", "20", "100"]))),
            redemptions=draw(st.one_of(st.none(), st.sampled_from(["1", "2"]))),
        )
    fields["promotionRestrictions"] = limits
    if scoped:
        fields["type"] = draw(st.sampled_from(["POS", "POS", "POS", "CUSTOMER", "EARNING", "REWARD", "CODE"]))
        fields["active"] = draw(st.integers(0, 15)) != 0
        fields["isLoyaltyOnly"] = draw(st.booleans())
        shift = draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
        if shift == 1:
            fields["startDate"] = ms(NOW) + DAY_MS  # not started
        elif shift == -1:
            fields["endDate"] = ms(NOW)  # expired (now < end fails)
        if draw(st.integers(0, 4)) == 0:
            fields["storeCriteria"] = {
                "type": draw(st.sampled_from(["STORE", "ZONE", "CONCEPT"])),
                "operator": draw(st.sampled_from(["IN", "NOT_IN"])),
                "values": draw(st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True)),
            }
        if draw(st.integers(0, 4)) == 0:
            fields["timeCriteria"] = draw(time_criteria())
    return promotion(pid, condition, action, **fields)


@st.composite
def rule_sets(draw, max_size: int = 5, **kwargs) -> list[dict]:
    count = draw(st.integers(min_value=1, max_value=max_size))
    return [draw(promotions(f"P{i:02d}", **kwargs)) for i in range(count)]


@st.composite
def contexts(draw, promotion_ids=(), scoped: bool = True) -> Context:
    settings = Settings(
        rounding_mode=draw(
            st.sampled_from(
                ["HALF_UP", "HALF_UP", "UP", "DOWN", "CEILING", "FLOOR", "HALF_DOWN", "HALF_EVEN"]
            )
        ),
        precision=draw(st.sampled_from([2, 2, 2, 0, 1, 3])),
        mechanism=draw(st.sampled_from(["LINE_ITEM_FIRST", "CART_FIRST"])),
        percentage_base=draw(st.sampled_from(["NET", "GROSS"])),
        several_line_promotions_per_unit=draw(st.booleans()),
    )
    if not scoped:
        return Context(now=NOW, settings=settings)
    store = None
    if draw(st.booleans()):
        store = StoreScope(
            store_id=draw(st.integers(1, 4)),
            zone_ids=frozenset(draw(st.sets(st.integers(1, 4), max_size=2))),
            concept_ids=frozenset(draw(st.sets(st.integers(1, 4), max_size=2))),
        )
    known = draw(st.booleans())
    wallet = {}
    headroom = {}
    for pid in promotion_ids:
        if known and draw(st.booleans()):
            wallet[pid] = f"E-{pid}"
        if draw(st.integers(0, 4)) == 0:
            headroom[pid] = Headroom(
                redemptions=draw(st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal(1), Decimal(5)]))),
                discount=draw(
                    st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("3.33"), Decimal(50)]))
                ),
            )
    now = NOW + dt.timedelta(minutes=draw(st.integers(0, 7 * 24 * 4)) * 15)
    return Context(
        now=now,
        timezone=draw(st.sampled_from(ZONES)),
        store=store,
        customer_known=known,
        wallet=wallet,
        headroom=headroom,
        settings=settings,
    )


@st.composite
def scenarios(draw, max_rules: int = 5, scoped: bool = True, **kwargs) -> tuple[Cart, list[dict], Context]:
    rules = draw(rule_sets(max_size=max_rules, scoped=scoped, **kwargs))
    return draw(carts()), rules, draw(contexts([rule["id"] for rule in rules], scoped=scoped))
