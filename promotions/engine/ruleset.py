"""The compiled rules of one org, indexed so a cart meets only the rules that can match it.

A rule whose condition (or, for an action with a target of its own, whose target condition) can only
hold with a line matching an IN criterion on SKU, CATEGORY or BRAND is filed under that criterion's
values; every other rule (CART conditions, NOT_IN, attributes, tender and payment conditions) is an
"always" rule. Built once per org and cached by the caller: it is immutable."""

from __future__ import annotations

from collections.abc import Iterable

from .actions import FixedPriceAction, FreeProductAction, PerUnitAction, ProductBasedAction
from .types import Cart, Rule


def requirement(rule: Rule) -> tuple[str, frozenset[str]] | None:
    found = rule.condition.requirement()
    if found is not None:
        return found
    action = rule.action
    if isinstance(action, PerUnitAction):
        action = action.reward
    if isinstance(action, ProductBasedAction | FreeProductAction | FixedPriceAction):
        target = action.target
        if not target.include and target.condition is not None:
            return target.condition.requirement()
    return None


class RuleSet:
    __slots__ = ("_always", "_by", "_order", "rules")

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._order = {id(rule): position for position, rule in enumerate(self.rules)}
        by: dict[str, dict[str, list[int]]] = {"SKU": {}, "CATEGORY": {}, "BRAND": {}}
        always: list[int] = []
        for position, rule in enumerate(self.rules):
            found = requirement(rule)
            if found is None:
                always.append(position)
                continue
            entity, values = found
            for value in values:
                by[entity].setdefault(value, []).append(position)
        self._by = {entity: {k: tuple(v) for k, v in table.items()} for entity, table in by.items()}
        self._always = tuple(always)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def candidates(self, cart: Cart) -> tuple[Rule, ...]:
        """The rules that can match `cart`, in the rule set's order."""
        found = set(self._always)
        skus, categories, brands = self._by["SKU"], self._by["CATEGORY"], self._by["BRAND"]
        for line in cart.lines:
            hit = skus.get(line.sku)
            if hit:
                found.update(hit)
            for category in line.categories:
                hit = categories.get(category)
                if hit:
                    found.update(hit)
            for brand in line.brands:
                hit = brands.get(brand)
                if hit:
                    found.update(hit)
        rules = self.rules
        return tuple(rules[position] for position in sorted(found))
