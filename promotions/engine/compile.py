"""From a promotion as the API echoes it (Capillary's camelCase JSON) to a `Rule` the engine evaluates.

Everything the engine cannot evaluate exactly as docs/engine.md says is refused with `UnsupportedRule`,
naming the part (`path`) and saying why in words a marketer can act on: the API answers it as a 400 at
create and update, so no promotion is stored that would be silently ignored."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .actions import (
    CartBasedAction,
    FixedPriceAction,
    FreeProductAction,
    PerUnitAction,
    ProductBasedAction,
    Target,
    TenderAction,
)
from .conditions import (
    CartCondition,
    ComboCondition,
    Criterion,
    PaymentModeCondition,
    PaymentModeSelection,
    ProductCondition,
    TenderCondition,
)
from .conditions.product import ATTRIBUTE_ENTITIES
from .scope import WEEKDAYS
from .types import Rule, StoreCriteria, TimeCriteria

PROMOTION_TYPES = ("POS", "CODE", "CUSTOMER", "EARNING", "REWARD")
MODES = ("DISCOUNT", "PAYMENT_VOUCHER")
COMPARISONS = ("EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL")
ENTITIES = ("SKU", "CATEGORY", "BRAND", "ATTRIBUTE", *ATTRIBUTE_ENTITIES)
TENDER_MODE_TYPES = ("CARD", "CASH", "PAYMENT_VOUCHER")
HUNDRED = Decimal(100)
TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class UnsupportedRule(Exception):
    """A promotion the engine cannot evaluate: `path` names the part, `message` says why."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


# --- Reading the JSON -----------------------------------------------------------------------------


def _object(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise UnsupportedRule(path, "Required, as an object.")
    return data


def _part(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    return _object(data.get(key), f"{path}.{key}" if path else key)


def _choice(data: Mapping[str, Any], key: str, choices: tuple[str, ...], path: str, default=None) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise UnsupportedRule(f"{path}.{key}", f"Must be one of {', '.join(choices)}.")
    return value


def _decimal(data: Mapping[str, Any], key: str, path: str, default=None) -> Decimal:
    value = data.get(key, default)
    where = f"{path}.{key}"
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise UnsupportedRule(where, "Required, as a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise UnsupportedRule(where, f"{value!r} is not a number.") from None
    if not number.is_finite():
        raise UnsupportedRule(where, f"{value!r} is not a number.")
    return number


def _positive(data: Mapping[str, Any], key: str, path: str, default=None) -> Decimal:
    number = _decimal(data, key, path, default)
    if number <= 0:
        raise UnsupportedRule(f"{path}.{key}", "Must be greater than 0.")
    return number


def _flag(data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise UnsupportedRule(f"{path}.{key}", "Must be true or false.")
    return value


def _strings(data: Mapping[str, Any], key: str, path: str) -> frozenset[str]:
    values = data.get(key)
    if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) for v in values):
        raise UnsupportedRule(f"{path}.{key}", "Required, as a non-empty list of strings.")
    return frozenset(values)


# --- Conditions -------------------------------------------------------------------------------------


def compile_criterion(data: Any, path: str) -> Criterion:
    data = _object(data, path)
    entity = _choice(data, "entity", ENTITIES, path)
    operator = _choice(data, "operator", ("IN", "NOT_IN"), path)
    values = _strings(data, "values", path)
    if entity == "ATTRIBUTE":
        attribute = data.get("attributeName")
        if not isinstance(attribute, str) or not attribute:
            raise UnsupportedRule(f"{path}.attributeName", "Required with entity ATTRIBUTE.")
    else:
        attribute = ATTRIBUTE_ENTITIES.get(entity)
    return Criterion(entity, operator, values, attribute)


def compile_product_condition(data: Any, path: str) -> ProductCondition:
    data = _object(data, path)
    criteria = data.get("criteriaList")
    if not isinstance(criteria, list | tuple) or not criteria:
        raise UnsupportedRule(f"{path}.criteriaList", "Required: at least one criterion.")
    compiled = tuple(compile_criterion(item, f"{path}.criteriaList[{i}]") for i, item in enumerate(criteria))
    kpi = _choice(data, "kpi", ("NONE", "QUANTITY", "AMOUNT"), path, "NONE")
    if kpi == "NONE":
        if data.get("operator", "NONE") not in ("NONE", None):
            raise UnsupportedRule(f"{path}.operator", "With kpi NONE the operator is NONE.")
        return ProductCondition(compiled, "NONE", "NONE", Decimal(0))
    operator = _choice(data, "operator", COMPARISONS, path)
    value = _decimal(data, "value", path)
    if value < 0:
        raise UnsupportedRule(f"{path}.value", "Must not be negative.")
    return ProductCondition(compiled, kpi, operator, value)


def compile_cart_condition(data: Any, path: str) -> CartCondition:
    data = _object(data, path)
    kpi = _choice(data, "kpi", ("SUBTOTAL", "ITEMCOUNT"), path)
    operator = _choice(data, "operator", COMPARISONS, path)
    value = _decimal(data, "value", path)
    if value < 0:
        raise UnsupportedRule(f"{path}.value", "Must not be negative.")
    return CartCondition(kpi, operator, value)


def compile_combo(data: Any, path: str) -> ComboCondition:
    data = _object(data, path)
    parts = data.get("productConditions")
    if not isinstance(parts, list | tuple) or not parts:
        raise UnsupportedRule(f"{path}.productConditions", "Required: at least one product condition.")
    return ComboCondition(
        tuple(
            compile_product_condition(part, f"{path}.productConditions[{i}]") for i, part in enumerate(parts)
        )
    )


def compile_selection(data: Any, path: str) -> PaymentModeSelection:
    data = _object(data, path)
    return PaymentModeSelection(
        _choice(data, "operator", ("IN", "NOT_IN"), path), _strings(data, "values", path)
    )


def compile_tender_condition(data: Any, path: str) -> TenderCondition:
    data = _object(data, path)
    modes = data.get("tenderModes")
    if not isinstance(modes, list | tuple) or not modes:
        raise UnsupportedRule(f"{path}.tenderModes", "Required: at least one tender mode.")
    identifiers: set[str] = set()
    for i, mode in enumerate(modes):
        where = f"{path}.tenderModes[{i}]"
        mode = _object(mode, where)
        _choice(mode, "type", TENDER_MODE_TYPES, where)
        identifiers |= _strings(mode, "identifiers", where)
    nested = data.get("condition")
    if nested is None:
        return TenderCondition(frozenset(identifiers))
    nested = _object(nested, f"{path}.condition")
    kind = _choice(nested, "type", ("CART", "PRODUCT"), f"{path}.condition")
    where = f"{path}.condition"
    inner = (
        compile_cart_condition(nested.get("cartCondition"), f"{where}.cartCondition")
        if kind == "CART"
        else compile_product_condition(nested.get("productCondition"), f"{where}.productCondition")
    )
    return TenderCondition(frozenset(identifiers), inner)


def compile_condition(data: Any, path: str = "condition"):
    data = _object(data, path)
    kind = _choice(
        data,
        "type",
        ("CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE", "PAYMENT_MODE_SCOPE",
         "PAYMENT_MODE_COMBO_PRODUCT"),
        path,
    )  # fmt: skip
    if kind == "CART":
        return compile_cart_condition(data.get("cartCondition"), f"{path}.cartCondition")
    if kind == "PRODUCT":
        return compile_product_condition(data.get("productCondition"), f"{path}.productCondition")
    if kind == "COMBO_PRODUCT":
        return compile_combo(data.get("comboProductCondition"), f"{path}.comboProductCondition")
    if kind == "TENDER":
        return compile_tender_condition(data.get("tenderCondition"), f"{path}.tenderCondition")
    selection = compile_selection(data.get("paymentModeCondition"), f"{path}.paymentModeCondition")
    if kind == "PAYMENT_MODE":
        return PaymentModeCondition(kind, selection)
    if kind == "PAYMENT_MODE_SCOPE":
        inner = compile_product_condition(data.get("productCondition"), f"{path}.productCondition")
        return PaymentModeCondition(kind, selection, inner)
    inner = compile_combo(data.get("comboProductCondition"), f"{path}.comboProductCondition")
    return PaymentModeCondition(kind, selection, inner)


def compile_target_condition(data: Any, path: str):
    data = _object(data, path)
    kind = _choice(data, "type", ("PRODUCT", "CART", "COMBO_PRODUCT"), path)
    if kind == "PRODUCT":
        return compile_product_condition(data.get("productCondition"), f"{path}.productCondition")
    if kind == "CART":
        return compile_cart_condition(data.get("cartCondition"), f"{path}.cartCondition")
    return compile_combo(data.get("comboProductCondition"), f"{path}.comboProductCondition")


# --- Actions ----------------------------------------------------------------------------------------


def _every_line(condition) -> bool:
    """Whether a condition's set is every line of the cart."""
    if isinstance(condition, CartCondition):
        return True
    if isinstance(condition, TenderCondition):
        return condition.condition is None or isinstance(condition.condition, CartCondition)
    if isinstance(condition, PaymentModeCondition):
        return condition.condition is None
    return False


def compile_target(data: Mapping[str, Any], path: str) -> Target:
    include = _flag(data, "includeItemsFromConditionSet", path, True)
    if include:
        return Target(True)
    if data.get("productBasedCondition") is None:
        raise UnsupportedRule(
            f"{path}.productBasedCondition",
            "Required when includeItemsFromConditionSet is false: it names the items the benefit goes to.",
        )
    return Target(
        False, compile_target_condition(data["productBasedCondition"], f"{path}.productBasedCondition")
    )


def _fixed_price_target(target: Target, condition, path: str) -> None:
    """A fixed price prices products: its target must be products, not the whole cart."""
    whole_cart = _every_line(condition) if target.include else isinstance(target.condition, CartCondition)
    if whole_cart:
        where = path + (".includeItemsFromConditionSet" if target.include else ".productBasedCondition")
        raise UnsupportedRule(
            where,
            "A fixed price applies to products: give it a PRODUCT or COMBO_PRODUCT condition (or "
            "productBasedCondition), not the whole cart.",
        )


def _discount(data: Mapping[str, Any], path: str, kinds: tuple[str, ...]) -> tuple[str, Decimal]:
    kind = _choice(data, "type", kinds, path)
    value = _positive(data, "value", path)
    if kind == "PERCENTAGE" and value > HUNDRED:
        raise UnsupportedRule(f"{path}.value", "A percentage is at most 100.")
    return kind, value


def compile_targeted(kind: str, data: Any, path: str, condition):
    """PRODUCT_BASED, FREE_PRODUCT and FIXED_PRICE, alone or as a PER_UNIT reward."""
    if kind == "PRODUCT_BASED":
        body = _part(data, "productBasedAction", path)
        where = f"{path}.productBasedAction"
        kind_, value = _discount(body, where, ("ABSOLUTE", "PERCENTAGE", "FIXED_PRICE"))
        target = compile_target(body, where)
        if kind_ == "FIXED_PRICE":
            _fixed_price_target(target, condition, where)
        return ProductBasedAction(kind_, value, target)
    if kind == "FREE_PRODUCT":
        body = _part(data, "freeProductAction", path)
        where = f"{path}.freeProductAction"
        quantity = _positive(body, "quantity", where) if body.get("quantity") is not None else None
        return FreeProductAction(compile_target(body, where), quantity)
    body = _part(data, "fixedPriceAction", path)
    where = f"{path}.fixedPriceAction"
    value = _decimal(body, "value", where)
    if value < 0:
        raise UnsupportedRule(f"{where}.value", "Must not be negative.")
    target = compile_target(body, where)
    _fixed_price_target(target, condition, where)
    return FixedPriceAction(value, target)


def compile_action(data: Any, condition, path: str = "action"):
    data = _object(data, path)
    kind = _choice(
        data,
        "type",
        ("CART_BASED", "PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE", "PER_UNIT", "TENDER"),
        path,
    )
    if kind == "CART_BASED":
        body = _part(data, "cartBasedAction", path)
        return CartBasedAction(*_discount(body, f"{path}.cartBasedAction", ("ABSOLUTE", "PERCENTAGE")))
    if kind == "TENDER":
        if not isinstance(condition, TenderCondition):
            raise UnsupportedRule(
                f"{path}.type",
                "A TENDER action needs a TENDER condition: it discounts what is paid with the tenders "
                "that condition names.",
            )
        body = _part(data, "tenderBasedAction", path)
        return TenderAction(*_discount(body, f"{path}.tenderBasedAction", ("ABSOLUTE", "PERCENTAGE")))
    if kind == "PER_UNIT":
        return compile_per_unit(_part(data, "perUnitAction", path), condition, f"{path}.perUnitAction")
    return compile_targeted(kind, data, path, condition)


def compile_per_unit(data: Mapping[str, Any], condition, path: str) -> PerUnitAction:
    kpi = _choice(data, "perUnitKPI", ("QUANTITY", "AMOUNT"), path, "QUANTITY")
    divider = _positive(data, "perUnitDivider", path, "1")
    include = _flag(data, "includeItemsFromConditionSet", path, True)
    reward_data = _part(data, "rewardAction", path)
    where = f"{path}.rewardAction"
    kind = _choice(reward_data, "type", ("PRODUCT_BASED", "FREE_PRODUCT", "FIXED_PRICE"), where)
    reward = compile_targeted(kind, reward_data, where, condition)
    if reward.type == "FIXED_PRICE" and kpi == "AMOUNT":
        raise UnsupportedRule(
            f"{where}.type",
            "A fixed price per group needs groups of units: use perUnitKPI QUANTITY with a FIXED_PRICE reward.",
        )
    return PerUnitAction(kpi, divider, reward, include)


# --- Scope and limits -------------------------------------------------------------------------------


def compile_store_criteria(data: Any) -> StoreCriteria | None:
    if data is None:
        return None
    path = "storeCriteria"
    data = _object(data, path)
    kind = _choice(data, "type", ("STORE", "ZONE", "CONCEPT"), path)
    operator = _choice(data, "operator", ("IN", "NOT_IN"), path)
    values = data.get("values")
    if (
        not isinstance(values, list | tuple)
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    ):
        raise UnsupportedRule(f"{path}.values", "Required, as a non-empty list of ids.")
    return StoreCriteria(kind, operator, frozenset(values))


def compile_time_criteria(data: Any) -> TimeCriteria | None:
    if data is None:
        return None
    path = "timeCriteria"
    data = _object(data, path)
    start = data.get("startTime")
    match = TIME.fullmatch(start) if isinstance(start, str) else None
    if not match:
        raise UnsupportedRule(f"{path}.startTime", 'Required, as "HH:mm" (00:00 to 23:59).')
    hours = data.get("durationInHours")
    if isinstance(hours, str) and hours.strip().isdigit():
        hours = int(hours.strip())
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24:
        raise UnsupportedRule(f"{path}.durationInHours", "Required: a whole number of hours, 1 to 24.")
    repeat = _choice(data, "repeatFrequency", ("WEEKS", "DAYS", "DOES_NOT_REPEAT"), path)
    weekdays: frozenset[int] = frozenset()
    if repeat == "WEEKS":
        days = data.get("weeklyValues")
        if not isinstance(days, list | tuple) or not days or not all(day in WEEKDAYS for day in days):
            raise UnsupportedRule(
                f"{path}.weeklyValues", "Required with WEEKS: a list of days, MONDAY to SUNDAY."
            )
        weekdays = frozenset(WEEKDAYS.index(day) for day in days)
    return TimeCriteria(int(match[1]) * 60 + int(match[2]), hours, repeat, weekdays)


def compile_cart_limits(data: Any) -> tuple[Decimal | None, Decimal | None]:
    """(Cart REDEMPTION or TRANSACTION limit, Cart DISCOUNT limit), the smallest of each (Rule's
    `cart_redemption_limit` is both: in one cart, applications)."""
    if not data:
        return None, None
    data = _object(data, "promotionRestrictions")
    rules = data.get("Cart") or []
    if not isinstance(rules, list | tuple):
        raise UnsupportedRule("promotionRestrictions.Cart", "Must be a list of limits.")
    redemptions = discount = None
    for i, rule in enumerate(rules):
        where = f"promotionRestrictions.Cart[{i}]"
        rule = _object(rule, where)
        kpi = _choice(rule, "kpi", ("REDEMPTION", "TRANSACTION", "DISCOUNT"), where)
        limit = _decimal(rule, "limit", where)
        if kpi in ("REDEMPTION", "TRANSACTION"):
            redemptions = limit if redemptions is None else min(redemptions, limit)
        elif kpi == "DISCOUNT":
            discount = limit if discount is None else min(discount, limit)
    return redemptions, discount


def _moment(data: Mapping[str, Any], key: str) -> dt.datetime:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedRule(key, "Required, as epoch milliseconds.")
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)


def compile_rule(promotion: Mapping[str, Any]) -> Rule:
    """One promotion, as the API echoes it, compiled; `UnsupportedRule` for anything the engine
    cannot evaluate exactly as docs/engine.md says."""
    promotion = _object(promotion, "promotion")
    condition = compile_condition(promotion.get("condition"))
    action = compile_action(promotion.get("action"), condition)
    redemptions, discount = compile_cart_limits(promotion.get("promotionRestrictions"))
    kind = _choice(promotion, "type", PROMOTION_TYPES, "promotion").strip()
    priority = promotion.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise UnsupportedRule("priority", "Must be a whole number.")
    start, end = _moment(promotion, "startDate"), _moment(promotion, "endDate")
    return Rule(
        promotion_id=str(promotion.get("id", "")),
        name=str(promotion.get("name") or ""),
        message_label=str(promotion.get("messageLabel") or ""),
        type=kind,
        mode=_choice(promotion, "mode", MODES, "promotion", "DISCOUNT"),
        active=_flag(promotion, "active", "promotion", True),
        priority=priority,
        is_stackable=_flag(promotion, "isStackable", "promotion", False),
        start=start,
        end=end,
        condition=condition,
        action=action,
        loyalty_only=_flag(promotion, "isLoyaltyOnly", "promotion", False),
        store_criteria=compile_store_criteria(promotion.get("storeCriteria")),
        time_criteria=compile_time_criteria(promotion.get("timeCriteria")),
        cart_redemption_limit=redemptions,
        cart_discount_limit=discount,
        level=action.level,
    )
