"""Builders for the engine's golden tests: carts, promotions in the shape the API echoes them (compiled
with `compile_rule`, as the API layer does), and one call that evaluates."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from promotions.engine import Cart, Context, Line, RuleSet, Settings, Tender, compile_rule, evaluate

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # a Monday
START_MS = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
END_MS = int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
_ids = itertools.count(1)


def D(value) -> Decimal:
    return Decimal(str(value))


def line(sku: str, amount, qty=1, *, key: str | None = None, categories=(), brands=(), **attributes) -> Line:
    return Line(
        key=key or f"{sku}-{next(_ids)}",
        sku=sku,
        amount=D(amount),
        qty=D(qty),
        categories=frozenset(categories),
        brands=frozenset(brands),
        attributes=attributes,
    )


def cart(*lines: Line, tenders: dict[str, Any] | None = None) -> Cart:
    return Cart(tuple(lines), tuple(Tender(name, D(amount)) for name, amount in (tenders or {}).items()))


def criteria(entity: str, *values: str, operator: str = "IN", attribute: str | None = None) -> dict:
    found = {"entity": entity, "operator": operator, "values": list(values)}
    if attribute:
        found["attributeName"] = attribute
    return found


def product(*criteria_list: dict, kpi: str = "NONE", operator: str = "NONE", value="0") -> dict:
    return {"criteriaList": list(criteria_list), "kpi": kpi, "operator": operator, "value": str(value)}


def skus(*values: str, kpi: str = "NONE", operator: str = "NONE", value="0") -> dict:
    """A product condition on SKUs."""
    return product(criteria("SKU", *values), kpi=kpi, operator=operator, value=value)


def category(*values: str, kpi: str = "NONE", operator: str = "NONE", value="0") -> dict:
    return product(criteria("CATEGORY", *values), kpi=kpi, operator=operator, value=value)


# Conditions ------------------------------------------------------------------------------------------


def cart_condition(kpi: str = "SUBTOTAL", operator: str = "GREATER_THAN_OR_EQUAL", value="0") -> dict:
    return {"type": "CART", "cartCondition": {"kpi": kpi, "operator": operator, "value": str(value)}}


def product_condition(condition: dict) -> dict:
    return {"type": "PRODUCT", "productCondition": condition}


def combo_condition(*parts: dict) -> dict:
    return {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": list(parts)}}


def tender_condition(*identifiers: str, nested: dict | None = None, mode: str = "CARD") -> dict:
    body: dict[str, Any] = {"tenderModes": [{"type": mode, "identifiers": list(identifiers)}]}
    if nested is not None:
        body["condition"] = nested
    return {"type": "TENDER", "tenderCondition": body}


def payment_mode(
    *values: str, operator: str = "IN", scope: dict | None = None, combo: list | None = None
) -> dict:
    selection = {"operator": operator, "values": list(values)}
    if scope is not None:
        return {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": selection, "productCondition": scope}
    if combo is not None:
        return {
            "type": "PAYMENT_MODE_COMBO_PRODUCT",
            "paymentModeCondition": selection,
            "comboProductCondition": {"productConditions": combo},
        }
    return {"type": "PAYMENT_MODE", "paymentModeCondition": selection}


# Actions ---------------------------------------------------------------------------------------------


def _target(body: dict, target: dict | None) -> dict:
    if target is None:
        body["includeItemsFromConditionSet"] = True
    else:
        body["includeItemsFromConditionSet"] = False
        body["productBasedCondition"] = target
    return body


def cart_based(kind: str, value) -> dict:
    return {"type": "CART_BASED", "cartBasedAction": {"type": kind, "value": str(value)}}


def product_based(kind: str, value, target: dict | None = None) -> dict:
    return {
        "type": "PRODUCT_BASED",
        "productBasedAction": _target({"type": kind, "value": str(value)}, target),
    }


def free_product(target: dict | None = None, quantity=None) -> dict:
    body = _target({}, target)
    if quantity is not None:
        body["quantity"] = str(quantity)
    return {"type": "FREE_PRODUCT", "freeProductAction": body}


def fixed_price(value, target: dict | None = None) -> dict:
    return {"type": "FIXED_PRICE", "fixedPriceAction": _target({"value": str(value)}, target)}


def per_unit(reward: dict, divider="1", kpi: str = "QUANTITY", include: bool = True) -> dict:
    return {
        "type": "PER_UNIT",
        "perUnitAction": {
            "rewardAction": reward,
            "perUnitKPI": kpi,
            "perUnitDivider": str(divider),
            "includeItemsFromConditionSet": include,
        },
    }


def tender_action(kind: str, value) -> dict:
    return {"type": "TENDER", "tenderBasedAction": {"type": kind, "value": str(value)}}


# Promotions ------------------------------------------------------------------------------------------


def promotion(condition: dict, action: dict, **fields) -> dict:
    number = next(_ids)
    body = {
        "id": f"p{number:04d}",
        "name": f"promotion {number}",
        "messageLabel": "",
        "type": "POS",
        "mode": "DISCOUNT",
        "active": True,
        "priority": 0,
        "isStackable": True,
        "startDate": START_MS,
        "endDate": END_MS,
        "condition": condition,
        "action": action,
        "promotionRestrictions": {},
    }
    body.update(fields)
    return body


def context(**fields) -> Context:
    settings = fields.pop("settings", None) or Settings(
        **{key: fields.pop(key) for key in list(fields) if key in Settings.__dataclass_fields__}
    )
    fields.setdefault("now", NOW)
    return Context(settings=settings, **fields)


def run(the_cart: Cart, *promotions: dict, explain: bool = False, **context_fields):
    """Compile `promotions`, evaluate `the_cart` with them."""
    rules = RuleSet(compile_rule(body) for body in promotions)
    return evaluate(the_cart, rules, context(**context_fields), explain=explain)


def shares(result, promotion_id: str) -> dict[str, Decimal]:
    """line key -> discount of one applied promotion."""
    for applied in result.applied:
        if applied.promotion_id == promotion_id:
            return {share.line_key: share.discount for share in applied.lines if share.discount}
    raise AssertionError(f"{promotion_id} did not apply: {result.skipped}")


def discounts(result) -> dict[str, Decimal]:
    """promotion id -> discount, for the promotions that applied."""
    return {applied.promotion_id: applied.discount for applied in result.applied}


def reasons(result) -> dict[str, str]:
    return {skipped.promotion_id: skipped.reason for skipped in result.skipped}
