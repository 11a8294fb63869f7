"""One evaluation (docs/engine.md): who may get what, exclusives alone, then the stackable promotions in
phases and in ranking order, each on the cart as the earlier ones left it; every discount rounded once,
capped and spread over the lines it touches."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from itertools import groupby

from .money import ENGINE_CONTEXT, ZERO, Rounding, allocate
from .ranking import rank, static_key
from .ruleset import RuleSet
from .scope import store_holds, time_holds
from .types import AdjustedTender, Applied, Cart, Context, LineShare, Result, Rule, Skipped, TenderShare
from .view import CartIndex, CartView

WALLET_TYPES = frozenset({"CUSTOMER", "EARNING", "REWARD"})

MESSAGES = {
    "INACTIVE": "The promotion is not active.",
    "NOT_STARTED": "The promotion has not started yet.",
    "EXPIRED": "The promotion has ended.",
    "OUTSIDE_TIME_WINDOW": "Outside the promotion's time window.",
    "STORE_NOT_IN_SCOPE": "The till's store is not in the promotion's stores.",
    "NOT_IN_WALLET": "The customer holds no active instance of this promotion.",
    "LOYALTY_ONLY": "A loyalty-only promotion needs a known customer.",
    "CODE_REQUIRED": "A code promotion applies only through one of its codes (sent or linked).",
    "LIMIT_REACHED": "The promotion's limits are reached.",
    "CONDITION_NOT_MET": "The cart does not meet the promotion's condition.",
    "NO_DISCOUNT": "The promotion gives no discount on this cart.",
    "BLOCKED_BY_EXCLUSIVE": "An exclusive promotion applies alone.",
    "CART_PROMOTION_APPLIED": "Cart first: a cart promotion applied, so line promotions do not.",
}


@dataclass
class _Outcome:
    rule: Rule
    discount: Decimal
    groups: int
    # per application: its discount and (line position, what the line gave, its current value)
    parts: list[tuple[Decimal, list[tuple[int, Decimal, Decimal]]]]
    discounted: dict[int, Decimal]  # line position -> units discounted
    condition_set: int
    tenders: list[int]  # the tenders a TENDER action reduces
    shares: dict[int, Decimal] | None = None  # line position -> discount, once spread
    tender_shares: dict[int, Decimal] | None = None
    # per application (several: PER_UNIT groups), the units it discounts: line position -> units
    part_units: list[dict[int, Decimal]] | None = None


def evaluate(
    cart: Cart, rules: RuleSet, context: Context, *, explain: bool = False, reasons: bool = True
) -> Result:
    """What applies to `cart`. With `explain`, every rule of `rules` is listed (applied or skipped with
    its reason), not only those the index finds for the cart. Without `reasons`, `Result.skipped` is
    empty: a caller that does not show why a rule did not apply (the evaluate API) saves recording it."""
    with localcontext(ENGINE_CONTEXT):
        evaluation = _Evaluation(cart, context, reasons=reasons or explain)
        return evaluation.run(rules.rules if explain else rules.candidates(cart))


class _Evaluation:
    def __init__(self, cart: Cart, context: Context, *, reasons: bool = True):
        settings = context.settings
        self.reasons = reasons
        self.context = context
        self.index = CartIndex(cart, settings)
        self.fresh = CartView(self.index)
        self.rounding = Rounding(settings.rounding_mode, settings.precision)
        self.skipped: dict[int, Skipped] = {}
        self._solo: dict[int, Decimal] = {}

    # Who may get what ------------------------------------------------------------------------------

    def gate(self, rule: Rule) -> str | None:
        """The reason `rule` may not be considered (steps 1 to 4 of "Who may get what"), else None."""
        context = self.context
        if not rule.active:
            return "INACTIVE"
        if context.now < rule.start:
            return "NOT_STARTED"
        if context.now >= rule.end:
            return "EXPIRED"
        # Most rules have neither criterion: not called for those (this runs for every candidate rule).
        if rule.time_criteria is not None and not time_holds(
            rule.time_criteria, context.now, context.timezone, rule.start
        ):
            return "OUTSIDE_TIME_WINDOW"
        if rule.store_criteria is not None and not store_holds(rule.store_criteria, context.store):
            return "STORE_NOT_IN_SCOPE"
        if rule.type in WALLET_TYPES:
            if rule.promotion_id not in context.wallet:
                return "NOT_IN_WALLET"
        elif rule.type == "CODE" and rule.promotion_id not in context.codes:
            return "CODE_REQUIRED"
        if rule.loyalty_only and not context.customer_known:
            return "LOYALTY_ONLY"
        headroom = context.headroom.get(rule.promotion_id)
        if headroom is not None and (
            (headroom.redemptions is not None and headroom.redemptions <= 0)
            or (headroom.discount is not None and headroom.discount <= 0)
        ):
            return "LIMIT_REACHED"
        if rule.cart_redemption_limit is not None and rule.cart_redemption_limit < 1:
            return "LIMIT_REACHED"
        return None

    # One application --------------------------------------------------------------------------------

    def attempt(self, rule: Rule, view: CartView) -> _Outcome | str:
        """`rule` applied on the cart as `view` has it (`view` unchanged), or the reason it does not."""
        condition_set = rule.condition.holds(view)
        if condition_set is None:
            return "CONDITION_NOT_MET"
        proposal = rule.action.propose(view, condition_set, rule)
        if proposal is None:
            return "CONDITION_NOT_MET"
        rounding = self.rounding
        cur = view.cur
        cart_wide = proposal.cart_wide
        parts = []  # (rounded discount, weights) per application
        parts_units = []  # the units of each application in `parts` (not for cart-wide actions)
        total = ZERO
        discounted: dict[int, Decimal] = {}
        for amount, part_units in proposal.parts or ((proposal.amount, proposal.units),):
            if amount <= 0 or not part_units:
                continue
            if cart_wide:
                # every line by its current value: the same for every cart-wide action on this view
                weights, value = view.every_line_weights()
            else:
                units: dict[int, Decimal] = {}
                for position, qty in part_units:
                    units[position] = units.get(position, ZERO) + qty
                weights = [
                    (position, view.part_value(position, units[position]), cur[position])
                    for position in sorted(units)
                ]
                value = sum((w for _, w, _ in weights), ZERO)
            # rounded once, then at most the target's current value rounded down
            discount = min(rounding.round(amount), rounding.floor(value))
            if discount <= 0:
                continue
            parts.append((discount, weights))
            total += discount
            if not cart_wide:
                parts_units.append(units)
                for position, qty in units.items():
                    discounted[position] = discounted.get(position, ZERO) + qty
        if total <= 0:
            return "NO_DISCOUNT"
        capped = total
        if proposal.cap is not None:
            capped = min(capped, rounding.floor(proposal.cap))
        if rule.cart_discount_limit is not None:
            capped = min(capped, rounding.floor(rule.cart_discount_limit))
        headroom = self.context.headroom.get(rule.promotion_id)
        if headroom is not None and headroom.discount is not None:
            capped = min(capped, rounding.floor(headroom.discount))
        if capped <= 0:
            return "NO_DISCOUNT"
        if capped < total:
            # A cap takes the whole promotion down: the capped discount is spread over every line the
            # applications touched, by what each gave.
            merged: dict[int, list] = {}
            for _, weights in parts:
                for position, weight, cap in weights:
                    if position in merged:
                        merged[position][1] += weight
                    else:
                        merged[position] = [position, weight, cap]
            parts = [(capped, [tuple(merged[position]) for position in sorted(merged)])]
        outcome = _Outcome(rule, capped, proposal.groups, parts, discounted, condition_set, proposal.tenders)
        if len(parts) > 1 and not cart_wide:
            outcome.part_units = parts_units
        if not self.index.on_grid:
            # Amounts finer than the precision: a leftover unit may find no line to take it, so the
            # spreading decides the discount, before it is compared with others.
            self.spread(outcome, view)
            if outcome.discount <= 0:
                return "NO_DISCOUNT"
        return outcome

    def spread(self, outcome: _Outcome, view: CartView) -> None:
        """Each application's discount over the lines (and tenders) it touches: largest remainder."""
        if outcome.shares is not None:
            return
        if len(outcome.parts) == 1:
            discount, weights = outcome.parts[0]
            outcome.shares, outcome.discount = allocate(discount, weights, self.rounding)
        else:
            shares: dict[int, Decimal] = {}
            given = ZERO
            # The units each application discounted: those of the lines its share reached (a line
            # whose share of a group rounds to zero keeps that group's units).
            discounted: dict[int, Decimal] = {}
            for number, (discount, weights) in enumerate(outcome.parts):
                # a line's shares together never pass its current value
                room = [
                    (position, weight, cap - shares.get(position, ZERO)) for position, weight, cap in weights
                ]
                part, part_given = allocate(discount, room, self.rounding)
                for position, share in part.items():
                    shares[position] = shares.get(position, ZERO) + share
                given += part_given
                if outcome.part_units is not None:
                    for position, units in outcome.part_units[number].items():
                        if part.get(position, ZERO) > ZERO:
                            discounted[position] = discounted.get(position, ZERO) + units
            outcome.shares, outcome.discount = shares, given
            if outcome.part_units is not None:
                outcome.discounted = discounted
        outcome.tender_shares = {}
        if outcome.tenders and outcome.discount > 0:
            left = view.tender_left
            outcome.tender_shares, _ = allocate(
                outcome.discount, [(t, left[t], left[t]) for t in outcome.tenders], self.rounding
            )

    def commit(self, outcome: _Outcome, view: CartView) -> Applied:
        self.spread(outcome, view)
        rule = outcome.rule
        index = self.index
        mark = rule.level == "LINE" and not view.several
        for position, share in outcome.shares.items():
            view.take_off(position, share)
            if mark and share > ZERO:
                view.used[position] += outcome.discounted.get(position, ZERO)
        for tender, share in outcome.tender_shares.items():
            view.tender_left[tender] -= share
        lines = []
        in_set = outcome.condition_set
        shares, discounted, qty = outcome.shares, outcome.discounted, index.qty
        touched = in_set
        for position in shares:
            touched |= 1 << position
        for position in discounted:
            touched |= 1 << position
        for position in index.positions(touched):
            share = shares.get(position, ZERO)
            discount_qty = discounted.get(position, qty[position]) if share > ZERO else ZERO
            promotion_qty = qty[position] if in_set >> position & 1 else discounted.get(position, ZERO)
            if share > ZERO or promotion_qty > ZERO:
                lines.append(LineShare(index.lines[position].key, share, discount_qty, promotion_qty))
        tenders = tuple(
            TenderShare(index.tender_ids[tender], share, tender)
            for tender, share in sorted(outcome.tender_shares.items())
            if share > 0
        )
        return Applied(
            promotion_id=rule.promotion_id,
            name=rule.name,
            message_label=rule.message_label,
            mode=rule.mode,
            level=rule.level,
            discount=outcome.discount,
            redemption_count=outcome.groups,
            earned_promotion_id=self.context.wallet.get(rule.promotion_id)
            if rule.type in WALLET_TYPES
            else None,
            lines=tuple(lines),
            tenders=tenders,
            promo_code=self.context.codes.get(rule.promotion_id) if rule.type == "CODE" else None,
        )

    def solo(self, rule: Rule) -> Decimal:
        """The discount `rule` gives alone on the cart as sent (ranking)."""
        key = id(rule)
        found = self._solo.get(key)
        if found is None:
            outcome = self.attempt(rule, self.fresh)
            found = self._solo[key] = outcome.discount if isinstance(outcome, _Outcome) else ZERO
        return found

    def skip(self, rule: Rule, reason: str, message: str = "") -> None:
        if self.reasons:
            self.skipped[id(rule)] = Skipped(rule.promotion_id, reason, message or MESSAGES[reason])

    # The whole evaluation ---------------------------------------------------------------------------

    def run(self, rules: tuple[Rule, ...]) -> Result:
        eligible = []
        for rule in rules:
            reason = self.gate(rule)
            if reason:
                self.skip(rule, reason)
            else:
                eligible.append(rule)
        applied: list[Applied] = []
        exclusives = [rule for rule in eligible if not rule.is_stackable]
        stackables = [rule for rule in eligible if rule.is_stackable]
        winners: dict[int, _Outcome] = {}
        if self.reasons:
            for rule in exclusives:
                self.try_exclusive(rule, winners)
            ranked = rank([outcome.rule for outcome in winners.values()], self.solo) if winners else []
            best = ranked[0] if ranked else None
        else:
            best = self.best_exclusive(exclusives, winners)
        if best is not None:
            applied.append(self.commit(winners[id(best)], self.fresh.copy()))
            if self.reasons:
                message = f"The exclusive promotion {best.promotion_id} applies alone."
                for rule in ranked[1:] + stackables:
                    self.skip(rule, "BLOCKED_BY_EXCLUSIVE", message)
        else:
            view = self.fresh.copy()
            phases = {"LINE": [], "CART": [], "TENDER": []}
            for rule in stackables:
                phases[rule.level].append(rule)
            if self.context.settings.mechanism == "CART_FIRST":
                cart_applied = self.apply_phase(phases["CART"], view, applied)
                if cart_applied:
                    for rule in phases["LINE"]:
                        self.skip(rule, "CART_PROMOTION_APPLIED")
                else:
                    self.apply_phase(phases["LINE"], view, applied)
            else:
                self.apply_phase(phases["LINE"], view, applied)
                self.apply_phase(phases["CART"], view, applied)
            self.apply_phase(phases["TENDER"], view, applied)
        if not self.skipped:  # no reasons asked for, or none to give
            return Result(tuple(applied), ())
        order = {id(rule): position for position, rule in enumerate(rules)}
        skipped = sorted(self.skipped.items(), key=lambda item: order[item[0]])
        return Result(tuple(applied), tuple(entry for _, entry in skipped))

    def try_exclusive(self, rule: Rule, winners: dict[int, _Outcome]) -> bool:
        """Whether the exclusive `rule` applies on the cart as sent (its outcome kept in `winners`)."""
        outcome = self.attempt(rule, self.fresh)
        if isinstance(outcome, str):
            self.skip(rule, outcome)
            return False
        winners[id(rule)] = outcome
        self._solo[id(rule)] = outcome.discount
        return True

    def best_exclusive(self, exclusives: list[Rule], winners: dict[int, _Outcome]) -> Rule | None:
        """The exclusive that ranks first among those that apply, trying them in ranking order: the
        rules of the best static rank (priority, type tier, end) that has one applying, and no
        further (the ranking's later keys only break ties inside a static rank). The same winner as
        trying every exclusive and ranking those that apply, for a fraction of the attempts."""
        ordered = sorted(exclusives, key=lambda rule: (static_key(rule), rule.promotion_id))
        for _, group in groupby(ordered, key=static_key):
            applying = [rule for rule in group if self.try_exclusive(rule, winners)]
            if applying:
                return rank(applying, self.solo)[0]
        return None

    def apply_phase(self, rules: list[Rule], view: CartView, applied: list[Applied]) -> int:
        count = 0
        for rule in rank(rules, self.solo):
            outcome = self.attempt(rule, view)
            if isinstance(outcome, str):
                self.skip(rule, outcome)
            else:
                applied.append(self.commit(outcome, view))
                count += 1
        return count


def adjusted_tenders(cart: Cart, result: Result) -> tuple[AdjustedTender, ...]:
    """`cartTenders` of the response: each tender less the tender promotions' discounts on it, and a CASH
    tender for the rest when the tenders do not cover the cart's net total (its value less every
    discount), as Capillary's example shows (2000 - 100 - 500 paid by card = 1400 CASH)."""
    taken: dict[int, Decimal] = {}
    for applied in result.applied:
        for share in applied.tenders:
            if share.tender_index is not None:
                taken[share.tender_index] = taken.get(share.tender_index, ZERO) + share.discount
    tenders = [
        AdjustedTender(tender.identifier, tender.amount, tender.amount - taken.get(position, ZERO))
        for position, tender in enumerate(cart.tenders)
    ]
    net = sum((line.amount for line in cart.lines), ZERO) - result.discount
    rest = net - sum((tender.adjusted_amount for tender in tenders), ZERO)
    if rest > 0:
        tenders.append(AdjustedTender("CASH", rest, rest, added=True))
    return tuple(tenders)
