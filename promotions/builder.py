"""The promotion builder (docs/marketer-guide.md, "The promotion builder"): a promotion's condition
and action as flat, named form values a marketer picks ("spend at least", "buy products from", "% off
the cart"), and back.

- `compose(values)` turns the flat values (the admin form's fields, or the page's live preview) into
  the condition and action JSON the create API takes; the admin then validates and stores them with the
  API's own serializers and engine compile, so the builder can never store what the API would refuse.
- `decompose(condition, action)` is the inverse: the flat values of a stored promotion (what the
  change page starts from).
- `summary(condition, action)` is the one-sentence plain-language reading of a rule.

Everything here is plain data: no database, no request.

The earning criteria (`ec_*`, an EARNING promotion's `earningCriteria`) are built the same way by
`compose_earning` / `decompose_earning`, and read by `earning_words`.

Flat names: `cond_type`; the cart condition `cart_kpi`, `cart_operator`, `cart_value`; product groups
(one product condition each) `cg{i}_` for the condition and `tg{i}_` for the reward's own items, each
with `kpi`, `operator`, `value` and criteria `c{j}_entity`, `c{j}_operator`, `c{j}_values` (one value a
line), `c{j}_attribute`; tender modes `tm{k}_type`, `tm{k}_ids`, the tender's extra condition
`tender_nested`; the payment selection `pay_operator`, `pay_values`. The action: `reward`, `act_value`,
`free_qty`, `target` (CONDITION: the items that met the condition; OTHER: the items below),
`target_type`, the target's cart condition `tcart_*`; per unit `pu_kpi`, `pu_divider`, `pu_count`,
`pu_reward`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from promotions_site.limits import holds_nul, json_depth_exceeds

# The promotion's fields the builder makes (the admin's form and a copy's initial values set them
# from the builder's values, never as JSON).
BUILT_FIELDS = (
    "condition", "action", "store_criteria", "time_criteria", "custom_field_values", "earning_criteria",
)  # fmt: skip

# --- Choices, in the marketer's words -------------------------------------------------------------

CONDITION_KINDS = [
    ("CART", "Spend at least / buy at least N products (the whole cart)"),
    ("PRODUCT", "Buy products from…"),
    ("COMBO_PRODUCT", "Buy a bundle (every part must be in the cart)"),
    ("TENDER", "Pay with a tender (card, cash, voucher)…"),
    ("PAYMENT_MODE", "Pay with a payment mode (whole cart)"),
    ("PAYMENT_MODE_SCOPE", "Pay with a payment mode, for these products"),
    ("PAYMENT_MODE_COMBO_PRODUCT", "Pay with a payment mode, for a bundle"),
]
CART_KPIS = [("SUBTOTAL", "the cart's subtotal"), ("ITEMCOUNT", "the number of different products (SKUs)")]
OPERATORS = [("GREATER_THAN_OR_EQUAL", "at least"), ("GREATER_THAN", "more than"), ("EQUALS", "exactly")]
GROUP_KPIS = [("NONE", "any of them"), ("QUANTITY", "a number of units"), ("AMOUNT", "an amount spent")]
ENTITIES = [
    ("SKU", "SKU"), ("CATEGORY", "Category"), ("BRAND", "Brand"), ("ATTRIBUTE", "Attribute (name below)"),
    ("PRODUCT_ID", "Product id"), ("STYLE", "Style"), ("COLOR", "Color"), ("SIZE", "Size"),
]  # fmt: skip
IN_OPERATORS = [("IN", "is one of"), ("NOT_IN", "is none of")]
TENDER_MODE_TYPES = [("CARD", "Card"), ("CASH", "Cash"), ("PAYMENT_VOUCHER", "Payment voucher")]
TENDER_NESTED = [
    ("NONE", "nothing else"),
    ("CART", "and the cart condition (spend / count)"),
    ("PRODUCT", "and products from the first product group"),
]
REWARDS = [
    ("CART_BASED:PERCENTAGE", "% off the whole cart"),
    ("CART_BASED:ABSOLUTE", "Amount off the whole cart"),
    ("PRODUCT_BASED:PERCENTAGE", "% off these products"),
    ("PRODUCT_BASED:ABSOLUTE", "Amount off these products"),
    ("PRODUCT_BASED:FIXED_PRICE", "These products for a set price (product discount)"),
    ("FREE_PRODUCT", "Free item(s)"),
    ("FIXED_PRICE", "Fixed bundle price"),
    ("PER_UNIT", "Per every N units (or amount)…"),
    ("TENDER:PERCENTAGE", "% off what is paid with the tender"),
    ("TENDER:ABSOLUTE", "Amount off what is paid with the tender"),
]
PER_UNIT_REWARDS = [
    ("PRODUCT_BASED:PERCENTAGE", "% off each group"),
    ("PRODUCT_BASED:ABSOLUTE", "Amount off each group"),
    ("PRODUCT_BASED:FIXED_PRICE", "Each group for a set price (product discount)"),
    ("FREE_PRODUCT", "Free item(s) per group"),
    ("FIXED_PRICE", "Each group for a fixed price"),
]
TARGETS = [("CONDITION", "the items that met the condition"), ("OTHER", "other items, chosen below")]
TARGET_TYPES = [
    ("PRODUCT", "products from a group"),
    ("COMBO_PRODUCT", "a bundle"),
    ("CART", "the whole cart"),
]
PER_UNIT_KPIS = [("QUANTITY", "units"), ("AMOUNT", "amount spent")]
PER_UNIT_COUNTS = [("CONDITION", "the items that met the condition"), ("TARGET", "the reward's items")]

# Slots the form offers at least (a stored promotion with more gets as many, plus one spare).
MIN_GROUPS, MIN_CRITERIA, MIN_MODES, MAX_SLOTS = 3, 2, 2, 20


class BuilderError(ValueError):
    """A value the builder cannot turn into a rule, with the field it belongs to and words for it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


# --- Reading the flat values ----------------------------------------------------------------------


def _text(values: Mapping[str, Any], key: str, default: str = "") -> str:
    value = values.get(key)
    if value is None:
        return default
    return str(value).strip() or default


def _number(values: Mapping[str, Any], key: str, what: str) -> str:
    """A non-negative decimal, as text ("1000", "12.5"); thousands commas are taken ("1,000.00")."""
    raw = _text(values, key)
    if not raw:
        raise BuilderError(key, f"Enter {what}.")
    if re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", raw):
        raw = raw.replace(",", "")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw):
        raise BuilderError(key, f"Enter {what} as a number, e.g. 1000 or 12.50.")
    return raw


def split_values(text: Any) -> list[str]:
    """One value a line, exactly as written (case and inner spaces count: the engine compares exactly);
    blank lines and a line's trailing carriage return are dropped."""
    if isinstance(text, list | tuple):
        return [str(v) for v in text if str(v) != ""]
    return [line.rstrip("\r") for line in str(text or "").split("\n") if line.strip()]


def indexes(values: Mapping[str, Any], pattern: str) -> list[int]:
    """The slot indexes present in `values` for keys matching `pattern` (a regex with one group)."""
    found = {int(m[1]) for key in values if (m := re.fullmatch(pattern, key))}
    return sorted(found)


def _criteria(values: Mapping[str, Any], prefix: str) -> list[dict]:
    criteria = []
    for j in indexes(values, rf"{prefix}c(\d+)_values"):
        items = split_values(values.get(f"{prefix}c{j}_values"))
        if not items:
            continue
        entity = _text(values, f"{prefix}c{j}_entity", "SKU")
        criterion = {
            "entity": entity,
            "operator": _text(values, f"{prefix}c{j}_operator", "IN"),
            "values": items,
        }
        if entity == "ATTRIBUTE":
            name = _text(values, f"{prefix}c{j}_attribute")
            if not name:
                raise BuilderError(f"{prefix}c{j}_attribute", "Name the attribute the values are of.")
            criterion["attributeName"] = name
        criteria.append(criterion)
    return criteria


def _group(values: Mapping[str, Any], prefix: str, where: str) -> dict | None:
    """One product condition, or None when its group has no values."""
    criteria = _criteria(values, prefix)
    if not criteria:
        return None
    kpi = _text(values, f"{prefix}kpi", "NONE")
    if kpi == "NONE":
        return {"criteriaList": criteria, "kpi": "NONE"}
    what = "the number of units" if kpi == "QUANTITY" else "the amount"
    return {
        "criteriaList": criteria,
        "kpi": kpi,
        "operator": _text(values, f"{prefix}operator", "GREATER_THAN_OR_EQUAL"),
        "value": _number(values, f"{prefix}value", f"{what} for {where}"),
    }


def _one_group(values: Mapping[str, Any], prefix: str, where: str) -> dict:
    group = _group(values, prefix + "0_", where)
    if group is None:
        raise BuilderError(
            f"{prefix}0_c0_values", f"Pick at least one SKU, category, brand or attribute value for {where}."
        )
    return group


def _groups(values: Mapping[str, Any], prefix: str, where: str) -> list[dict]:
    groups = [
        group
        for i in indexes(values, rf"{prefix}(\d+)_c\d+_values")
        if (group := _group(values, f"{prefix}{i}_", f"part {i + 1} of {where}")) is not None
    ]
    if not groups:
        raise BuilderError(f"{prefix}0_c0_values", f"Fill in at least one part of {where}.")
    return groups


def _cart(values: Mapping[str, Any], prefix: str) -> dict:
    kpi = _text(values, f"{prefix}_kpi", "SUBTOTAL")
    what = "the subtotal" if kpi == "SUBTOTAL" else "the number of products"
    return {
        "kpi": kpi,
        "operator": _text(values, f"{prefix}_operator", "GREATER_THAN_OR_EQUAL"),
        "value": _number(values, f"{prefix}_value", what),
    }


def _payment(values: Mapping[str, Any]) -> dict:
    items = split_values(values.get("pay_values"))
    if not items:
        raise BuilderError("pay_values", "Name at least one payment mode (e.g. POINTS), one a line.")
    return {"operator": _text(values, "pay_operator", "IN"), "values": items}


def compose_condition(values: Mapping[str, Any]) -> dict:
    kind = _text(values, "cond_type")
    if kind == "CART":
        return {"type": "CART", "cartCondition": _cart(values, "cart")}
    if kind == "PRODUCT":
        return {"type": "PRODUCT", "productCondition": _one_group(values, "cg", "the products")}
    if kind == "COMBO_PRODUCT":
        return {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": _groups(values, "cg", "the bundle")}}  # fmt: skip
    if kind == "TENDER":
        modes = []
        for k in indexes(values, r"tm(\d+)_ids"):
            ids = split_values(values.get(f"tm{k}_ids"))
            if ids:
                modes.append({"type": _text(values, f"tm{k}_type", "CARD"), "identifiers": ids})
        if not modes:
            raise BuilderError("tm0_ids", "Name at least one tender (e.g. CreditCard), one a line.")
        tender: dict = {"tenderModes": modes}
        nested = _text(values, "tender_nested", "NONE")
        if nested == "CART":
            tender["condition"] = {"type": "CART", "cartCondition": _cart(values, "cart")}
        elif nested == "PRODUCT":
            tender["condition"] = {
                "type": "PRODUCT",
                "productCondition": _one_group(values, "cg", "the products"),
            }
        return {"type": "TENDER", "tenderCondition": tender}
    if kind == "PAYMENT_MODE":
        return {"type": kind, "paymentModeCondition": _payment(values)}
    if kind == "PAYMENT_MODE_SCOPE":
        return {
            "type": kind,
            "paymentModeCondition": _payment(values),
            "productCondition": _one_group(values, "cg", "the products"),
        }
    if kind == "PAYMENT_MODE_COMBO_PRODUCT":
        return {
            "type": kind,
            "paymentModeCondition": _payment(values),
            "comboProductCondition": {"productConditions": _groups(values, "cg", "the bundle")},
        }
    raise BuilderError("cond_type", "Pick what the customer must do.")


def _target(values: Mapping[str, Any]) -> dict:
    if _text(values, "target", "CONDITION") == "CONDITION":
        return {"includeItemsFromConditionSet": True}
    kind = _text(values, "target_type", "PRODUCT")
    if kind == "CART":
        condition = {"type": "CART", "cartCondition": _cart(values, "tcart")}
    elif kind == "COMBO_PRODUCT":
        condition = {
            "type": "COMBO_PRODUCT",
            "comboProductCondition": {"productConditions": _groups(values, "tg", "the reward's bundle")},
        }
    else:
        condition = {"type": "PRODUCT", "productCondition": _one_group(values, "tg", "the reward's items")}
    return {"includeItemsFromConditionSet": False, "productBasedCondition": condition}


PARTS = {
    "CART_BASED": "cartBasedAction", "PRODUCT_BASED": "productBasedAction", "FREE_PRODUCT": "freeProductAction",
    "FIXED_PRICE": "fixedPriceAction", "PER_UNIT": "perUnitAction", "TENDER": "tenderBasedAction",
}  # fmt: skip


def _discount_value(values: Mapping[str, Any], kind: str) -> str:
    what = {"PERCENTAGE": "the percentage", "ABSOLUTE": "the amount off", "FIXED_PRICE": "the price"}[kind]
    return _number(values, "act_value", what)


def _targeted(values: Mapping[str, Any], reward: str) -> dict:
    """A PRODUCT_BASED, FREE_PRODUCT or FIXED_PRICE action (alone or as a per-unit reward)."""
    kind, _, discount = reward.partition(":")
    if kind == "PRODUCT_BASED":
        body = {"type": discount, "value": _discount_value(values, discount), **_target(values)}
    elif kind == "FREE_PRODUCT":
        body = _target(values)
        if _text(values, "free_qty"):
            body["quantity"] = _number(values, "free_qty", "how many items are free")
    else:
        body = {"value": _discount_value(values, "FIXED_PRICE"), **_target(values)}
    return {"type": kind, PARTS[kind]: body}


def compose_action(values: Mapping[str, Any]) -> dict:
    reward = _text(values, "reward")
    kind, _, discount = reward.partition(":")
    if kind in ("CART_BASED", "TENDER") and discount in ("PERCENTAGE", "ABSOLUTE"):
        if kind == "TENDER" and _text(values, "cond_type") != "TENDER":
            raise BuilderError(
                "reward", "A discount on what is paid with a tender needs the condition “Pay with a tender”."
            )
        return {"type": kind, PARTS[kind]: {"type": discount, "value": _discount_value(values, discount)}}
    if reward in ("PRODUCT_BASED:PERCENTAGE", "PRODUCT_BASED:ABSOLUTE", "PRODUCT_BASED:FIXED_PRICE", "FREE_PRODUCT", "FIXED_PRICE"):  # fmt: skip
        return _targeted(values, reward)
    if reward == "PER_UNIT":
        inner = _text(values, "pu_reward")
        if inner not in dict(PER_UNIT_REWARDS):
            raise BuilderError("pu_reward", "Pick what each group of units gets.")
        return {
            "type": "PER_UNIT",
            "perUnitAction": {
                "rewardAction": _targeted(values, inner),
                "perUnitKPI": _text(values, "pu_kpi", "QUANTITY"),
                "perUnitDivider": _number(values, "pu_divider", "how many units (or how much) make a group"),
                "includeItemsFromConditionSet": _text(values, "pu_count", "CONDITION") == "CONDITION",
            },
        }
    raise BuilderError("reward", "Pick the reward.")


def compose(values: Mapping[str, Any]) -> tuple[dict, dict]:
    """(condition, action) in the create API's shape; BuilderError for what is missing or unreadable."""
    return compose_condition(values), compose_action(values)


# --- Stored JSON to flat values -------------------------------------------------------------------


def _plain(value: Any) -> str:
    """'500.000000' -> '500', '12.500000' -> '12.5'; anything unreadable as it is."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "" if value is None else str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), "f")
    return text


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _put_group(out: dict, prefix: str, condition: Any) -> None:
    condition = _dict(condition)
    out[f"{prefix}kpi"] = condition.get("kpi") or "NONE"
    if out[f"{prefix}kpi"] != "NONE":
        out[f"{prefix}operator"] = condition.get("operator") or "GREATER_THAN_OR_EQUAL"
        out[f"{prefix}value"] = _plain(condition.get("value"))
    for j, criterion in enumerate(_list(condition.get("criteriaList"))):
        criterion = _dict(criterion)
        out[f"{prefix}c{j}_entity"] = criterion.get("entity") or "SKU"
        out[f"{prefix}c{j}_operator"] = criterion.get("operator") or "IN"
        out[f"{prefix}c{j}_values"] = "\n".join(str(v) for v in _list(criterion.get("values")))
        if criterion.get("attributeName"):
            out[f"{prefix}c{j}_attribute"] = str(criterion["attributeName"])


def _put_cart(out: dict, prefix: str, condition: Any) -> None:
    condition = _dict(condition)
    out[f"{prefix}_kpi"] = condition.get("kpi") or "SUBTOTAL"
    out[f"{prefix}_operator"] = condition.get("operator") or "GREATER_THAN_OR_EQUAL"
    out[f"{prefix}_value"] = _plain(condition.get("value"))


def _put_groups(out: dict, prefix: str, combo: Any) -> None:
    for i, part in enumerate(_list(_dict(combo).get("productConditions"))):
        _put_group(out, f"{prefix}{i}_", part)


def _put_target(out: dict, body: dict) -> None:
    if body.get("includeItemsFromConditionSet", True) is not False:
        out["target"] = "CONDITION"
        return
    out["target"] = "OTHER"
    condition = _dict(body.get("productBasedCondition"))
    kind = condition.get("type") or "PRODUCT"
    out["target_type"] = kind
    if kind == "CART":
        _put_cart(out, "tcart", condition.get("cartCondition"))
    elif kind == "COMBO_PRODUCT":
        _put_groups(out, "tg", condition.get("comboProductCondition"))
    else:
        _put_group(out, "tg0_", condition.get("productCondition"))


def _put_targeted(out: dict, action: dict, key: str) -> None:
    kind = action.get("type")
    body = _dict(action.get(PARTS.get(kind, "")))
    if kind == "PRODUCT_BASED":
        out[key] = f"PRODUCT_BASED:{body.get('type') or 'PERCENTAGE'}"
        out["act_value"] = _plain(body.get("value"))
    elif kind == "FREE_PRODUCT":
        out[key] = "FREE_PRODUCT"
        if body.get("quantity") is not None:
            out["free_qty"] = _plain(body["quantity"])
    elif kind == "FIXED_PRICE":
        out[key] = "FIXED_PRICE"
        out["act_value"] = _plain(body.get("value"))
    _put_target(out, body)


def decompose(condition: Any, action: Any) -> dict[str, str]:
    """The flat values of a stored condition and action (unknown or broken parts are left blank)."""
    out: dict[str, str] = {}
    condition, action = _dict(condition), _dict(action)
    kind = condition.get("type")
    if kind in dict(CONDITION_KINDS):
        out["cond_type"] = kind
    if kind == "CART":
        _put_cart(out, "cart", condition.get("cartCondition"))
    elif kind == "PRODUCT":
        _put_group(out, "cg0_", condition.get("productCondition"))
    elif kind == "COMBO_PRODUCT":
        _put_groups(out, "cg", condition.get("comboProductCondition"))
    elif kind == "TENDER":
        tender = _dict(condition.get("tenderCondition"))
        for k, mode in enumerate(_list(tender.get("tenderModes"))):
            mode = _dict(mode)
            out[f"tm{k}_type"] = mode.get("type") or "CARD"
            out[f"tm{k}_ids"] = "\n".join(str(v) for v in _list(mode.get("identifiers")))
        nested = _dict(tender.get("condition"))
        out["tender_nested"] = nested.get("type") if nested.get("type") in ("CART", "PRODUCT") else "NONE"
        if nested.get("type") == "CART":
            _put_cart(out, "cart", nested.get("cartCondition"))
        elif nested.get("type") == "PRODUCT":
            _put_group(out, "cg0_", nested.get("productCondition"))
    elif kind in ("PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"):
        selection = _dict(condition.get("paymentModeCondition"))
        out["pay_operator"] = selection.get("operator") or "IN"
        out["pay_values"] = "\n".join(str(v) for v in _list(selection.get("values")))
        if kind == "PAYMENT_MODE_SCOPE":
            _put_group(out, "cg0_", condition.get("productCondition"))
        elif kind == "PAYMENT_MODE_COMBO_PRODUCT":
            _put_groups(out, "cg", condition.get("comboProductCondition"))

    kind = action.get("type")
    body = _dict(action.get(PARTS.get(kind, "")))
    if kind in ("CART_BASED", "TENDER"):
        out["reward"] = f"{kind}:{body.get('type') or 'PERCENTAGE'}"
        out["act_value"] = _plain(body.get("value"))
    elif kind in ("PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE"):
        _put_targeted(out, action, "reward")
    elif kind == "PER_UNIT":
        out["reward"] = "PER_UNIT"
        out["pu_kpi"] = body.get("perUnitKPI") or "QUANTITY"
        out["pu_divider"] = _plain(body.get("perUnitDivider", "1"))
        out["pu_count"] = (
            "CONDITION" if body.get("includeItemsFromConditionSet", True) is not False else "TARGET"
        )
        _put_targeted(out, _dict(body.get("rewardAction")), "pu_reward")
    return out


def slot_counts(values: Mapping[str, Any]) -> dict[str, int]:
    """How many product groups (condition and target), criteria per group and tender modes a form needs
    for `values`: at least the minimum, and one spare beyond the last one used, at most MAX_SLOTS."""

    def count(pattern: str, minimum: int) -> int:
        found = indexes(values, pattern)
        return min(MAX_SLOTS, max(minimum, (found[-1] + 2) if found else 0))

    return {
        "cg": count(r"cg(\d+)_c\d+_values", MIN_GROUPS),
        "tg": count(r"tg(\d+)_c\d+_values", MIN_GROUPS),
        "criteria": count(r"[ct]g\d+_c(\d+)_values", MIN_CRITERIA),
        "tm": count(r"tm(\d+)_ids", MIN_MODES),
    }


# --- The sentence -----------------------------------------------------------------------------------


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def _count(value: Any) -> str:
    try:
        return f"{Decimal(str(value)).normalize():,f}"
    except (InvalidOperation, ValueError):
        return str(value)


def _units(value: Any, unit: str = "unit") -> str:
    """'1 unit', '2 units', '1.5 units'."""
    text = _count(value)
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"


def _percent(value: Any) -> str:
    return f"{_count(value)}%"


OPERATOR_WORDS = {"GREATER_THAN_OR_EQUAL": "at least", "GREATER_THAN": "more than", "EQUALS": "exactly"}
ENTITY_WORDS = {
    "SKU": "SKU", "CATEGORY": "category", "BRAND": "brand", "PRODUCT_ID": "product id", "STYLE": "style",
    "COLOR": "color", "SIZE": "size",
}  # fmt: skip


def _or_list(items: list) -> str:
    items = [str(v) for v in items]
    if len(items) > 4:
        items = [*items[:3], f"{len(items) - 3} more"]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} or {items[-1]}"


def _criterion_words(criterion: Any) -> str:
    criterion = _dict(criterion)
    entity = criterion.get("entity")
    name = ENTITY_WORDS.get(entity, str(entity))
    if entity == "ATTRIBUTE":
        name = f"items with {criterion.get('attributeName')}"
    values = _or_list(_list(criterion.get("values")))
    if criterion.get("operator") == "NOT_IN":
        return f"{name} other than {values}"
    return f"{name} {values}"


def _products_words(condition: Any) -> str:
    """'SKU A or B' / 'category X and brand Y'."""
    criteria = [_criterion_words(c) for c in _list(_dict(condition).get("criteriaList"))]
    return " and ".join(criteria) if criteria else "items"


def _group_words(condition: Any) -> str:
    """What a product condition asks for: '2 or more units of items of SKU A'."""
    condition = _dict(condition)
    products = _products_words(condition)
    kpi, op = condition.get("kpi"), OPERATOR_WORDS.get(condition.get("operator"), "at least")
    if kpi == "QUANTITY":
        return f"{op} {_units(condition.get('value'))} of {products}"
    if kpi == "AMOUNT":
        return f"{op} {_money(condition.get('value'))} worth of {products}"
    return products


def _cart_words(condition: Any) -> str:
    condition = _dict(condition)
    op = OPERATOR_WORDS.get(condition.get("operator"), "at least")
    if condition.get("kpi") == "ITEMCOUNT":
        return f"the cart has {op} {_units(condition.get('value'), 'different product')}"
    return f"the subtotal is {op} {_money(condition.get('value'))}"


def _bundle_words(combo: Any) -> str:
    parts = [_group_words(p) for p in _list(_dict(combo).get("productConditions"))]
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _payment_words(selection: Any) -> str:
    selection = _dict(selection)
    values = _or_list(_list(selection.get("values")))
    return (
        f"paid with anything but {values}" if selection.get("operator") == "NOT_IN" else f"paid with {values}"
    )


def condition_words(condition: Any) -> str:
    condition = _dict(condition)
    kind = condition.get("type")
    if kind == "CART":
        return _cart_words(condition.get("cartCondition"))
    if kind == "PRODUCT":
        return f"the cart has {_group_words(condition.get('productCondition'))}"
    if kind == "COMBO_PRODUCT":
        return f"the cart has the bundle of {_bundle_words(condition.get('comboProductCondition'))}"
    if kind == "TENDER":
        tender = _dict(condition.get("tenderCondition"))
        ids = [i for mode in _list(tender.get("tenderModes")) for i in _list(_dict(mode).get("identifiers"))]
        words = f"paid with {_or_list(ids)}"
        nested = _dict(tender.get("condition"))
        if nested.get("type") in ("CART", "PRODUCT"):
            words += f" and {condition_words(nested)}"
        return words
    words = _payment_words(condition.get("paymentModeCondition"))
    if kind == "PAYMENT_MODE_SCOPE":
        return f"{words} and the cart has {_group_words(condition.get('productCondition'))}"
    if kind == "PAYMENT_MODE_COMBO_PRODUCT":
        return (
            f"{words} and the cart has the bundle of {_bundle_words(condition.get('comboProductCondition'))}"
        )
    return words if kind == "PAYMENT_MODE" else "(no condition yet)"


def _target_words(body: dict, units: str | None = None) -> str:
    if body.get("includeItemsFromConditionSet", True) is not False:
        return "the qualifying items"
    condition = _dict(body.get("productBasedCondition"))
    kind = condition.get("type")
    if kind == "CART":
        return f"the whole cart (when {_cart_words(condition.get('cartCondition'))})"
    if kind == "COMBO_PRODUCT":
        return f"the bundle of {_bundle_words(condition.get('comboProductCondition'))}"
    product = _dict(condition.get("productCondition"))
    if product.get("kpi") == "QUANTITY" and product.get("operator") == "EQUALS":
        return f"{_units(product.get('value'))} of {_products_words(product)}"
    return _group_words(product)


def _targeted_words(action: dict) -> str:
    kind = action.get("type")
    body = _dict(action.get(PARTS.get(kind, "")))
    target = _target_words(body)
    if kind == "PRODUCT_BASED":
        discount = body.get("type")
        if discount == "PERCENTAGE":
            return f"{_percent(body.get('value'))} off {target}"
        if discount == "ABSOLUTE":
            return f"{_money(body.get('value'))} off {target}"
        return f"{target} for {_money(body.get('value'))} together"
    if kind == "FREE_PRODUCT":
        quantity = body.get("quantity")
        return f"{_units(quantity if quantity is not None else 1, 'free unit')} of {target}"
    if kind == "FIXED_PRICE":
        return f"{target} for {_money(body.get('value'))} together"
    return "(no reward yet)"


def action_words(action: Any) -> str:
    action = _dict(action)
    kind = action.get("type")
    body = _dict(action.get(PARTS.get(kind, "")))
    if kind == "CART_BASED":
        value = _percent(body.get("value")) if body.get("type") == "PERCENTAGE" else _money(body.get("value"))
        return f"{value} off the whole cart"
    if kind == "TENDER":
        value = _percent(body.get("value")) if body.get("type") == "PERCENTAGE" else _money(body.get("value"))
        return f"{value} off what is paid with that tender"
    if kind == "PER_UNIT":
        counted = (
            "the qualifying items"
            if body.get("includeItemsFromConditionSet", True) is not False
            else "the reward's items"
        )
        divider = body.get("perUnitDivider", "1")
        if body.get("perUnitKPI") == "AMOUNT":
            group = f"every {_money(divider)} spent on {counted}"
        else:
            group = f"every {_units(divider)} of {counted}"
        return f"for {group}: {_targeted_words(_dict(body.get('rewardAction')))}"
    return _targeted_words(action)


def summary(condition: Any, action: Any) -> str:
    """One sentence: '10% off the whole cart when the subtotal is at least 1,000.00.'"""
    sentence = f"{action_words(action)} when {condition_words(condition)}."
    return sentence[0].upper() + sentence[1:]


# --- Store scope, time scope and custom fields --------------------------------------------------------

STORE_TYPES = [("", "Every store"), ("STORE", "Stores"), ("ZONE", "Zones"), ("CONCEPT", "Concepts")]
TIME_REPEATS = [
    ("", "At any time"),
    ("DAYS", "Every day"),
    ("WEEKS", "On these days of the week"),
    ("DOES_NOT_REPEAT", "Only on the promotion's first day"),
]
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def compose_store(values: Mapping[str, Any]) -> dict | None:
    kind = _text(values, "store_type")
    if not kind:
        return None
    ids = []
    for line in split_values(values.get("store_values")):
        text = line.strip().split(" ", 1)[0]  # "75175598 West" as the picker adds it
        if not text.isdigit():
            raise BuilderError(
                "store_values", f"“{line.strip()}” is not an id: one id (a whole number) a line."
            )
        ids.append(int(text))
    if not ids:
        raise BuilderError("store_values", "Pick at least one store, zone or concept (one id a line).")
    return {"type": kind, "operator": _text(values, "store_operator", "IN"), "values": ids}


def compose_time(values: Mapping[str, Any]) -> dict | None:
    repeat = _text(values, "time_repeat")
    if not repeat:
        return None
    start = _text(values, "time_start")
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", start):
        raise BuilderError("time_start", "Enter the opening time as HH:MM, 00:00 to 23:59.")
    hours = _text(values, "time_hours")
    if not hours.isdigit() or not 1 <= int(hours) <= 24:
        raise BuilderError("time_hours", "Enter how long the window lasts: whole hours, 1 to 24.")
    criteria: dict = {"startTime": start, "durationInHours": int(hours), "repeatFrequency": repeat}
    if repeat == "WEEKS":
        days = values.get("time_days") or []
        days = [days] if isinstance(days, str) else list(days)
        if not days:
            raise BuilderError("time_days", "Tick at least one day of the week.")
        criteria["weeklyValues"] = [day for day in WEEKDAYS if day in days]
    return criteria


def compose_custom_fields(values: Mapping[str, Any]) -> dict:
    fields: dict[str, str] = {}
    for line in split_values(values.get("custom_fields")):
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BuilderError("custom_fields", f"“{line.strip()}”: write one field a line, as Name: value.")
        fields[name.strip()] = value.strip()
    return fields


def decompose_scope(store: Any, time: Any, custom: Any) -> dict:
    out: dict = {}
    store, time = _dict(store), _dict(time)
    if store:
        out["store_type"] = store.get("type") or ""
        out["store_operator"] = store.get("operator") or "IN"
        out["store_values"] = "\n".join(str(v) for v in _list(store.get("values")))
    if time:
        out["time_repeat"] = time.get("repeatFrequency") or ""
        out["time_start"] = str(time.get("startTime") or "")
        out["time_hours"] = str(time.get("durationInHours") or "")
        out["time_days"] = [d for d in _list(time.get("weeklyValues")) if d in WEEKDAYS]
    custom = _dict(custom)
    if custom:
        out["custom_fields"] = "\n".join(f"{name}: {value}" for name, value in custom.items())
    return out


# --- Earning criteria (an EARNING promotion: what earns it) -------------------------------------------

EARNED_FROM = [
    ("", "Not by criteria (earned through the earn APIs and bulk earn only)"),
    ("ACTIVITY", "By an activity of the customer (an event)"),
    ("MILESTONE", "By reaching a loyalty milestone"),
]
EVENT_TYPES = [
    ("", "—"),
    ("TransactionAdd", "a transaction (a purchase)"),
    ("CustomerRegistration", "registering as a customer"),
    ("CustomerUpdate", "updating their profile"),
]
EVENT_FILTERS = [
    ("", "—"),
    ("ALL", "every such event"),
    ("SKU", "a transaction with an item of this SKU"),
]
YES_NO = [("", "—"), ("true", "yes"), ("false", "no")]

# Capillary's expression of each filter (criteriaDsl) and the parse tree it stores beside it
# (criteriaDslJson), as its published objects spell them: generated here, so a stored filter reads
# back as one of ours only when both are exactly what we would write.
_DSL_ALL = "true"
_DSL_JSON_ALL = '\n{\n  "arity":"literal",\n  "value":"true",\n  "type":"boolean:primitive"\n}'
_DSL_SKU = 'currentLineItem.doesItemMatch("sku_code","{sku}")'
_DSL_JSON_SKU = (
    '\n{\n  "arity":"method_call",\n  "type":"boolean:primitive",\n  "operands":[\n'
    '    {\n      "arity":"name",\n      "value":"currentLineItem",\n      "type":"tx.item:object:primitive"\n    },\n'
    '    {\n      "arity":"name",\n      "value":"doesItemMatch",\n      "type":"anonymous:function:primitive"\n    },\n'
    '    {\n      "arity":"literal",\n      "value":"sku_code",\n      "type":"EEnum__InvAttr:enum:string:object:primitive"\n    },\n'
    '    {\n      "arity":"literal",\n      "value":"{sku}",\n'
    '      "type":"EEnum__InvAttr__EDepEnum__InvAttrVal__sku_code:string:object:primitive"\n    }\n  ]\n}'
)
# The keys the controls set; any other key of a stored criteria is kept as it is (`ec_kept`).
EARNING_KEYS = (
    "criteriaName", "earnedFromType", "milestoneId", "groupId", "eventType", "criteriaDsl", "criteriaDslJson",
    "active", "earningValidTillDays",
)  # fmt: skip
EARNING_VALID_DAYS_MAX = 3650


def _dsl(kind: str, sku: str = "") -> tuple[str, str]:
    if kind == "ALL":
        return _DSL_ALL, _DSL_JSON_ALL
    return _DSL_SKU.replace("{sku}", sku), _DSL_JSON_SKU.replace("{sku}", sku)


def _dsl_kind(dsl: Any, dsl_json: Any) -> tuple[str, str] | None:
    """("ALL", "") or ("SKU", sku) when the stored filter is exactly one we write, else None."""
    if (dsl, dsl_json) == _dsl("ALL"):
        return "ALL", ""
    match = re.fullmatch(r'currentLineItem\.doesItemMatch\("sku_code","([^"\\]+)"\)', str(dsl))
    if match and (dsl, dsl_json) == _dsl("SKU", match[1]):
        return "SKU", match[1]
    return None


def _whole(values: Mapping[str, Any], key: str, what: str, low: int, high: int = 2**31 - 1) -> int | None:
    raw = _text(values, key)
    if not raw:
        return None
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
        raise BuilderError(key, f"Enter {what} as a whole number from {low} to {high}.")
    return int(raw)


def _kept(values: Mapping[str, Any]) -> dict:
    """The stored criteria's keys no control sets, carried by the page as they were read."""
    raw = _text(values, "ec_kept")
    if not raw:
        return {}
    try:
        kept = json.loads(raw)
    except (ValueError, RecursionError):
        kept = None
    if not isinstance(kept, dict) or json_depth_exceeds(kept) or holds_nul(kept):
        raise BuilderError(
            "ec_from", "The stored criteria's other settings could not be read: reload the page."
        )
    return kept


def compose_earning(values: Mapping[str, Any]) -> dict | None:
    """The promotion's `earningCriteria` from the controls (None: not earned by criteria); the keys of a
    stored criteria that no control sets are kept. BuilderError for a missing or inconsistent part."""
    kept = _kept(values)
    source = _text(values, "ec_from")
    if not source:
        return kept or None
    criteria: dict = dict(kept)
    name = _text(values, "ec_name")
    if name:
        criteria["criteriaName"] = name
    criteria["earnedFromType"] = source
    milestone = _whole(values, "ec_milestone", "the milestone's id", 0)
    group = _whole(values, "ec_group", "the group's id", 0)
    if source == "MILESTONE" and not milestone:
        raise BuilderError(
            "ec_milestone", "A milestone earns it: enter the milestone's id (a whole number from 1)."
        )
    for key, number in (("milestoneId", milestone), ("groupId", group)):
        if number is not None:
            criteria[key] = number
    event = _text(values, "ec_event")
    if event:
        criteria["eventType"] = event
    elif source == "ACTIVITY" and "eventType" not in criteria:
        raise BuilderError(
            "ec_event", "An activity earns it: pick the event (a transaction, registering, ...)."
        )
    events = _text(values, "ec_events")
    if events == "SKU":
        if criteria.get("eventType") != "TransactionAdd":
            raise BuilderError(
                "ec_events",
                "Only a transaction has items: pick “a transaction” as the event, or “every such event”.",
            )
        sku = _text(values, "ec_sku")
        if not sku:
            raise BuilderError("ec_sku", "Enter the SKU whose purchase earns it.")
        if '"' in sku or "\\" in sku:
            raise BuilderError("ec_sku", "A SKU here cannot contain a double quote or a backslash.")
        criteria["criteriaDsl"], criteria["criteriaDslJson"] = _dsl("SKU", sku)
    elif events == "ALL":
        criteria["criteriaDsl"], criteria["criteriaDslJson"] = _dsl("ALL")
    active = _text(values, "ec_active")
    if active:
        criteria["active"] = active == "true"
    days = _whole(values, "ec_valid_days", "the days to earn it in", 1, EARNING_VALID_DAYS_MAX)
    if days is not None:
        criteria["earningValidTillDays"] = days
    return criteria


def decompose_earning(criteria: Any) -> dict[str, str]:
    """The controls' values of a stored `earningCriteria`; what they cannot show goes to `ec_kept`."""
    if not isinstance(criteria, dict) or not criteria:
        return {}
    out: dict[str, str] = {}
    kept = {key: value for key, value in criteria.items() if key not in EARNING_KEYS}
    source = criteria.get("earnedFromType")
    if source not in ("ACTIVITY", "MILESTONE"):
        kept = dict(criteria)  # not ours to read: kept whole, shown in the JSON
    else:
        out["ec_from"] = source
        for key, name in (
            ("criteriaName", "ec_name"),
            ("milestoneId", "ec_milestone"),
            ("groupId", "ec_group"),
        ):
            value = criteria.get(key)
            if isinstance(value, str) and key == "criteriaName" and value:
                out[name] = value
            elif (
                isinstance(value, int)
                and not isinstance(value, bool)
                and key != "criteriaName"
                and value >= 0
            ):
                out[name] = str(value)
            elif key in criteria:
                kept[key] = value
        event = criteria.get("eventType")
        if event in dict(EVENT_TYPES) and event:
            out["ec_event"] = event
        elif "eventType" in criteria:
            kept["eventType"] = event
        read = _dsl_kind(criteria.get("criteriaDsl"), criteria.get("criteriaDslJson"))
        if read is not None:
            out["ec_events"] = read[0]
            if read[1]:
                out["ec_sku"] = read[1]
        else:
            kept.update({key: criteria[key] for key in ("criteriaDsl", "criteriaDslJson") if key in criteria})
        active = criteria.get("active")
        if isinstance(active, bool):
            out["ec_active"] = "true" if active else "false"
        elif "active" in criteria:
            kept["active"] = active
        days = criteria.get("earningValidTillDays")
        if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= EARNING_VALID_DAYS_MAX:
            out["ec_valid_days"] = str(days)
        elif "earningValidTillDays" in criteria:
            kept["earningValidTillDays"] = days
    if kept:
        out["ec_kept"] = json.dumps(kept, ensure_ascii=False)
    return out


def earning_words(criteria: Any) -> str:
    """One sentence: 'Earned when the customer makes a transaction with an item of SKU 221900, within 30
    days of being issued it (criteria “TransactionAdd_Criteria”).'"""
    if not isinstance(criteria, dict) or not criteria:
        return "Not earned by criteria: earned through the earn APIs and bulk earn only."
    source = criteria.get("earnedFromType")
    if source == "MILESTONE":
        words = f"Earned when the customer reaches milestone {criteria.get('milestoneId')}"
        if criteria.get("groupId"):
            words += f" of group {criteria.get('groupId')}"
    elif source == "ACTIVITY":
        action = {
            "TransactionAdd": "makes a transaction",
            "CustomerRegistration": "registers",
            "CustomerUpdate": "updates their profile",
        }.get(criteria.get("eventType"), f"sends the event {criteria.get('eventType')}")
        words = f"Earned when the customer {action}"
    else:
        return "Earning criteria set through the API, kept as they are (see the JSON)."
    read = _dsl_kind(criteria.get("criteriaDsl"), criteria.get("criteriaDslJson"))
    if read is not None and read[0] == "SKU":
        words += f" with an item of SKU {read[1]}"
    elif read is None and criteria.get("criteriaDsl"):
        words += f" matching the expression {criteria.get('criteriaDsl')}"
    if criteria.get("earningValidTillDays"):
        words += f", within {_units(criteria['earningValidTillDays'], 'day')} of being issued it"
    if criteria.get("criteriaName"):
        words += f" (criteria “{criteria['criteriaName']}”)"
    if criteria.get("active") is False:
        words += "; the criteria are switched off"
    return words + "."
