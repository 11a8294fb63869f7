"""Stored conditions and actions in Capillary's documented shape (docs/api.md, "Promotion objects").

Before this, the create API took and stored two shapes of its own: `productBasedCondition` as a bare
product condition (`{"criteriaList": ...}`) where Capillary has a condition (`{"type": "PRODUCT",
"productCondition": {...}}`), and `perUnitAction` as `{type, value, unit, ...}` where Capillary has
`{rewardAction, perUnitKPI, perUnitDivider, includeItemsFromConditionSet}`. Both are now refused on
input; this rewrites the stored ones, and writes every value as the API now stores and echoes it (a
string with six decimals, kpi NONE with operator NONE and value 0), so a promotion read and sent back
compares equal to what is stored.

The rewrite is frozen here (it does not import the app's serializers, which refuse the old shapes).
Backwards, the wrapped PRODUCT conditions and PER_UNIT actions with a PRODUCT_BASED reward go back to
the old shapes; the six-decimal strings stay (the old code stored and echoed values as sent).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import migrations

VALUE_KEYS = ("value", "perUnitDivider", "quantity")
TARGETED_ACTIONS = ("productBasedAction", "freeProductAction", "fixedPriceAction")


def six_decimals(value):
    """A number or decimal string as a string with six decimals; anything else unchanged."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value
    return f"{number:.6f}" if number.is_finite() else value


def product_condition_forward(condition: dict) -> dict:
    condition = {**condition}
    if condition.get("kpi", "NONE") == "NONE":
        condition.update(kpi="NONE", operator="NONE", value="0.000000")
    return condition


def values_forward(node):
    """Every value of a condition or action tree as six decimals, product conditions completed."""
    if isinstance(node, list):
        return [values_forward(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: six_decimals(item) if key in VALUE_KEYS else values_forward(item) for key, item in node.items()}
    for key in ("productCondition",):
        if isinstance(result.get(key), dict):
            result[key] = product_condition_forward(result[key])
    if isinstance(result.get("productConditions"), list):
        result["productConditions"] = [
            product_condition_forward(item) if isinstance(item, dict) else item
            for item in result["productConditions"]
        ]
    return result


def wrap_target(action: dict) -> dict:
    """A targeted action whose productBasedCondition is the bare product condition, wrapped."""
    target = action.get("productBasedCondition")
    if isinstance(target, dict) and "type" not in target and "criteriaList" in target:
        return {**action, "productBasedCondition": {"type": "PRODUCT", "productCondition": target}}
    return action


def per_unit_forward(per_unit: dict) -> dict:
    """The old `{type, value, unit, includeItemsFromConditionSet, productBasedCondition}`: a
    PRODUCT_BASED reward of `type`/`value` for every `unit` units (1 when not set)."""
    if "rewardAction" in per_unit or "value" not in per_unit:
        return per_unit
    include = per_unit.get("includeItemsFromConditionSet", True)
    reward = {
        "type": per_unit.get("type", "ABSOLUTE"),
        "value": per_unit["value"],
        "includeItemsFromConditionSet": include,
    }
    if "productBasedCondition" in per_unit:
        reward["productBasedCondition"] = per_unit["productBasedCondition"]
    return {
        "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": wrap_target(reward)},
        "perUnitKPI": "QUANTITY",
        "perUnitDivider": per_unit.get("unit") or 1,
        "includeItemsFromConditionSet": include,
    }


def action_forward(action: dict) -> dict:
    if not isinstance(action, dict):
        return action
    action = {key: wrap_target(item) if key in TARGETED_ACTIONS and isinstance(item, dict) else item
              for key, item in action.items()}  # fmt: skip
    if isinstance(action.get("perUnitAction"), dict):
        action["perUnitAction"] = per_unit_forward(action["perUnitAction"])
    return values_forward(action)


def unwrap_target(action: dict) -> dict:
    target = action.get("productBasedCondition")
    if isinstance(target, dict) and target.get("type") == "PRODUCT" and "productCondition" in target:
        return {**action, "productBasedCondition": target["productCondition"]}
    return action


def action_backward(action: dict) -> dict:
    if not isinstance(action, dict):
        return action
    action = {key: unwrap_target(item) if key in TARGETED_ACTIONS and isinstance(item, dict) else item
              for key, item in action.items()}  # fmt: skip
    per_unit = action.get("perUnitAction")
    reward = per_unit.get("rewardAction") if isinstance(per_unit, dict) else None
    if isinstance(reward, dict) and reward.get("type") == "PRODUCT_BASED":
        benefit = unwrap_target(reward.get("productBasedAction", {}))
        old = {key: benefit[key] for key in ("type", "value", "productBasedCondition") if key in benefit}
        old["unit"] = per_unit.get("perUnitDivider", "1.000000")
        old["includeItemsFromConditionSet"] = per_unit.get("includeItemsFromConditionSet", True)
        action["perUnitAction"] = old
    return action


def rewrite(apps, condition_rewrite, action_rewrite):
    Promotion = apps.get_model("promotions", "Promotion")
    for promotion in Promotion.objects.only("id", "condition", "action").order_by("pk").iterator(chunk_size=500):
        condition, action = condition_rewrite(promotion.condition), action_rewrite(promotion.action)
        if (condition, action) != (promotion.condition, promotion.action):
            Promotion.objects.filter(pk=promotion.pk).update(condition=condition, action=action)


def forward(apps, schema_editor):
    rewrite(apps, values_forward, action_forward)


def backward(apps, schema_editor):
    rewrite(apps, lambda condition: condition, action_backward)


class Migration(migrations.Migration):
    dependencies = [("promotions", "0004_audit_event_append_only")]

    operations = [migrations.RunPython(forward, backward)]
