from __future__ import annotations

from decimal import Decimal

OPERATORS = ("EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL")


def compare(operator: str, measure: Decimal, value: Decimal) -> bool:
    if operator == "GREATER_THAN_OR_EQUAL":
        return measure >= value
    if operator == "GREATER_THAN":
        return measure > value
    return measure == value  # EQUALS


def needs_something(operator: str, value: Decimal) -> bool:
    """Whether `measure <operator> value` is false for a measure of 0 (no matching line)."""
    return not compare(operator, Decimal(0), value)
