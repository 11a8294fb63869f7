"""TENDER: ABSOLUTE v or PERCENTAGE p of the amount paid with the condition's tenders, at most that
amount; spread over every line, and over those tenders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..money import HUNDRED, ZERO
from .base import Proposal


@dataclass(frozen=True, eq=False)
class TenderAction:
    type: str  # ABSOLUTE, PERCENTAGE
    value: Decimal

    kind = "TENDER"
    level = "TENDER"

    def propose(self, view, condition_set: int, rule) -> Proposal:
        index = view.index
        tenders = rule.condition.tenders(index)
        paid = sum((view.tender_left[t] for t in tenders), ZERO)
        if self.type == "ABSOLUTE":
            amount = self.value
        else:
            base = sum((index.tender_amounts[t] for t in tenders), ZERO) if view.gross else paid
            amount = base * self.value / HUNDRED
        units = [(position, index.qty[position]) for position in range(index.n)]
        return Proposal(amount, units, cart_wide=True, tenders=tenders, cap=paid)
