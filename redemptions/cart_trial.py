"""A promotion tried on a cart (the admin's "Try it on a cart" panel): the same engine, the org's live
rules, the customer's wallet and the limits' headroom, as `POST /promotions/evaluate` reads them; and
why the promotion did or did not apply, in words a marketer reads.

A read: no Evaluation row is written, no limit is taken, nothing is locked. The promotion tried is
added to the org's rules when they leave it out (inactive, ended, or stored before the engine could
evaluate it), so its reason is the engine's own; an inactive or ended rule is refused before anything
else, so adding it changes nothing for the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from promotions.engine import RuleSet, UnsupportedRule, evaluate
from promotions.engine.types import Applied, Rule, Skipped, StoreScope
from promotions.models import Organization, Promotion
from promotions.rules import STATEFUL_LEVELS, Limit, OrgRules, org_rules, promotion_compile, unsupported_text
from promotions.selectors import engine_settings_for
from promotions.windows import window_rule_stored
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.evaluation import CartLineInput, evaluation_cart, evaluation_context
from wallets.models import Customer

ZERO = Decimal(0)


@dataclass(frozen=True)
class TrialShare:
    """One applied promotion's part on one cart line."""

    line: int  # 1-based, in the order the cart was given
    sku: str
    discount: Decimal
    discount_qty: Decimal
    promotion_qty: Decimal

    @property
    def units(self) -> str:
        """The units discounted, as typed ("2", not "2.000000")."""
        return _number(self.discount_qty)


@dataclass(frozen=True)
class TrialApplied:
    promotion_id: str
    name: str
    level: str
    discount: Decimal
    redemption_count: int
    earned_promotion_id: str | None
    shares: tuple[TrialShare, ...]
    tenders: tuple[tuple[str, Decimal], ...]
    is_this: bool


@dataclass(frozen=True)
class CartTrial:
    """What the cart gets with the org's live rules, and the promotion tried: on this cart, and alone."""

    promotion: Promotion
    now: dt.datetime
    timezone: str
    customer_id: int | None
    cart_value: Decimal
    applied: tuple[TrialApplied, ...]
    discount: Decimal
    this_applied: TrialApplied | None
    this_reason: str  # why it did not apply (empty when it did)
    this_reason_code: str
    alone: TrialApplied | None  # the promotion as the only rule (active, within its dates, its code sent)
    alone_reason: str  # why it would not apply even alone
    alone_note: str  # what "alone" set aside (inactive, not started, ended)

    @property
    def moment_text(self) -> str:
        return _local(self.now, self.timezone)


def _trial_applied(applied: Applied, skus: dict[str, tuple[int, str]], this_id: str) -> TrialApplied:
    return TrialApplied(
        promotion_id=applied.promotion_id,
        name=applied.name,
        level=applied.level,
        discount=applied.discount,
        redemption_count=applied.redemption_count,
        earned_promotion_id=applied.earned_promotion_id,
        shares=tuple(
            TrialShare(
                line=skus[share.line_key][0],
                sku=skus[share.line_key][1],
                discount=share.discount,
                discount_qty=share.discount_qty,
                promotion_qty=share.promotion_qty,
            )
            for share in sorted(applied.lines, key=lambda share: skus[share.line_key][0])
        ),
        tenders=tuple((share.identifier, share.discount) for share in applied.tenders),
        is_this=applied.promotion_id == this_id,
    )


def _with_promotion(rules: OrgRules, promotion: Promotion, rule: Rule) -> OrgRules:
    """The org's rules with `promotion` among them (its wallet instances and limits read like the others')."""
    if promotion.pk in rules.rules:
        return rules
    limits = tuple(
        Limit(row.pk, row.level, row.kpi, row.limit, window_rule_stored(row), promotion.start_date)
        for row in promotion.restrictions.all()
        if row.level in STATEFUL_LEVELS
    )
    return OrgRules(
        version=rules.version,
        ruleset=RuleSet([*rules.ruleset.rules, rule]),
        rules={**rules.rules, promotion.pk: rule},
        types={**rules.types, promotion.pk: promotion.type},
        limits={**rules.limits, promotion.pk: limits} if limits else rules.limits,
        failed=rules.failed,
    )


def _opened(rule: Rule, now: dt.datetime) -> tuple[Rule, list[str]]:
    """`rule` active, within its dates at `now` and (a CODE promotion) as if its code were sent; and
    what that set aside."""
    notes = []
    changes: dict = {}
    if not rule.active:
        notes.append("that it is inactive")
        changes["active"] = True
    if now < rule.start:
        notes.append("that it has not started yet")
        changes["start"] = now
    if now >= rule.end:
        notes.append("that it has ended")
        changes["end"] = now + dt.timedelta(seconds=1)
    if rule.type == "CODE":  # the panel sends no code: alone, it is tried as if its code were sent
        notes.append("that it needs its code")
        changes["type"] = "POS"
    return dataclasses.replace(rule, **changes), notes


def cart_trial(
    *,
    org: Organization,
    promotion: Promotion,
    lines: list[CartLineInput],
    tenders: list[tuple[str, Decimal | None]],
    customer_id: int | None,
    store: StoreScope | None = None,
    now: dt.datetime | None = None,
    line_numbers: list[int] | None = None,
) -> CartTrial:
    """Evaluate the cart with the org's live rules (explained: every rule applied or skipped with its
    reason), then the promotion alone. `line_numbers` name the lines as the marketer sees them (the
    rows of the form; default 1, 2, ...). Errors: 404 the org has no such customer; 400 the promotion
    cannot be evaluated by the engine (it never could have been stored so by the admin or the API)."""
    now = now or timezone.now()
    org = Organization.objects.get(pk=org.pk)  # its current rules_version and settings
    if customer_id is not None and not Customer.objects.for_org(org).filter(pk=customer_id).exists():
        raise PromotionError(ErrorCode.NOT_FOUND, "No customer of this organization has this id.")
    promotion = (
        Promotion.objects.select_related("org").prefetch_related("restrictions").get(pk=promotion.pk, org=org)
    )
    live = org_rules(org.pk, org.rules_version)
    rule = live.rules.get(promotion.pk)
    if rule is None:
        try:
            rule = promotion_compile(promotion)
        except UnsupportedRule as error:
            raise PromotionError(
                ErrorCode.BAD_REQUEST,
                f"The engine cannot evaluate this promotion: {unsupported_text(error)}",
            ) from error
    rules = _with_promotion(live, promotion, rule)
    settings = engine_settings_for(org)
    context = evaluation_context(
        org=org, customer_id=customer_id, rules=rules, store=store, settings=settings, now=now
    )
    cart, keys = evaluation_cart(lines, tenders)
    numbers = line_numbers or range(1, len(lines) + 1)
    skus = {key: (number, line.sku) for number, key, line in zip(numbers, keys, lines, strict=True)}
    result = evaluate(cart, rules.ruleset, context, explain=True)
    applied = tuple(_trial_applied(entry, skus, promotion.pk) for entry in result.applied)
    this_applied = next((entry for entry in applied if entry.is_this), None)
    skipped = next((entry for entry in result.skipped if entry.promotion_id == promotion.pk), None)
    reason = ""
    code = ""
    if this_applied is None and skipped is not None:
        code = skipped.reason
        reason = skip_sentence(
            skipped, promotion=promotion, rule=rule, applied=applied, customer_id=customer_id, store=store
        )
    alone_rule, notes = _opened(rule, now)
    alone_result = evaluate(cart, RuleSet([alone_rule]), context, explain=True)
    alone = next(
        (_trial_applied(entry, skus, promotion.pk) for entry in alone_result.applied),
        None,
    )
    alone_reason = ""
    if alone is None and alone_result.skipped:
        alone_reason = skip_sentence(
            alone_result.skipped[0],
            promotion=promotion,
            rule=alone_rule,
            applied=(),
            customer_id=customer_id,
            store=store,
        )
    return CartTrial(
        promotion=promotion,
        now=now,
        timezone=org.timezone,
        customer_id=customer_id,
        cart_value=sum((line.amount - line.discount for line in lines), ZERO),
        applied=applied,
        discount=result.discount,
        this_applied=this_applied,
        this_reason=reason,
        this_reason_code=code,
        alone=alone,
        alone_reason=alone_reason,
        alone_note=" and ".join(notes),
    )


# --- Reasons in words -------------------------------------------------------------------------------

OPERATORS = {
    "EQUALS": "exactly",
    "GREATER_THAN": "more than",
    "GREATER_THAN_OR_EQUAL": "at least",
    "LESS_THAN": "less than",
    "LESS_THAN_OR_EQUAL": "at most",
}
ENTITIES = {
    "SKU": "SKU",
    "CATEGORY": "category",
    "BRAND": "brand",
    "PRODUCT_ID": "product id",
    "STYLE": "style",
    "COLOR": "color",
    "SIZE": "size",
}


def _number(value) -> str:
    """`"500.000000"` -> `500`, `"2.50"` -> `2.5`; anything else as it is."""
    try:
        number = Decimal(str(value))
    except (ArithmeticError, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    text = f"{number.normalize():f}"
    return text


def _values(values) -> str:
    values = [str(value) for value in (values or [])]
    return ", ".join(values) if values else "(none)"


def _criterion_text(criterion: dict) -> str:
    entity = criterion.get("entity", "")
    name = (
        f"attribute {criterion.get('attributeName', '')}"
        if entity == "ATTRIBUTE"
        else ENTITIES.get(entity, str(entity).lower())
    )
    negated = criterion.get("operator") == "NOT_IN"
    return f"{name} {'not in' if negated else 'in'} {_values(criterion.get('values'))}"


def _product_text(condition: dict) -> str:
    criteria = " and ".join(_criterion_text(criterion) for criterion in condition.get("criteriaList") or [])
    items = f"items with {criteria}" if criteria else "items"
    kpi = condition.get("kpi") or "NONE"
    operator = OPERATORS.get(condition.get("operator") or "", "")
    if kpi == "QUANTITY" and operator:
        return f"{operator} {_number(condition.get('value'))} unit(s) of {items}"
    if kpi == "AMOUNT" and operator:
        return f"{items} worth {operator} {_number(condition.get('value'))} together"
    return f"at least one of {items}"


def _cart_text(condition: dict) -> str:
    kpi = condition.get("kpi")
    operator = OPERATORS.get(condition.get("operator") or "", str(condition.get("operator", "")).lower())
    value = _number(condition.get("value"))
    if kpi == "ITEMCOUNT":
        return f"{operator} {value} different SKU(s) in the cart"
    return f"a cart value of {operator} {value}"


def _selection_text(selection: dict) -> str:
    negated = (selection or {}).get("operator") == "NOT_IN"
    values = _values((selection or {}).get("values"))
    return f"paid {'without' if negated else 'with'} {values}"


def condition_text(condition: dict) -> str:
    """A promotion's stored condition in words ("a cart value of at least 500")."""
    try:
        return _condition_text(condition or {})
    except (AttributeError, KeyError, TypeError):
        return json.dumps(condition, separators=(",", ":"))


def _condition_text(condition: dict) -> str:
    kind = condition.get("type")
    if kind == "CART":
        return _cart_text(condition.get("cartCondition") or {})
    if kind == "PRODUCT":
        return _product_text(condition.get("productCondition") or {})
    if kind == "COMBO_PRODUCT":
        parts = [_product_text(part) for part in condition.get("productConditions") or []]
        return "all of: " + "; ".join(parts)
    if kind == "TENDER":
        tender = condition.get("tenderCondition") or {}
        identifiers = [
            identifier
            for mode in tender.get("tenderModes") or []
            for identifier in mode.get("identifiers") or []
        ]
        text = f"paid with {_values(identifiers)}"
        if tender.get("condition"):
            text += f", and {_condition_text(tender['condition'])}"
        return text
    if kind in ("PAYMENT_MODE", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT"):
        text = _selection_text(condition.get("paymentModeCondition") or {})
        if condition.get("productCondition"):
            text += f", and {_product_text(condition['productCondition'])}"
        if condition.get("comboProductCondition"):
            combo = condition["comboProductCondition"]
            parts = combo.get("productConditions") if isinstance(combo, dict) else combo
            text += ", and all of: " + "; ".join(_product_text(part) for part in parts or [])
        return text
    return json.dumps(condition, separators=(",", ":"))


def _target_text(action: dict) -> str:
    """The items an action discounts, when they are not the condition's."""
    for body in action.values():
        if isinstance(body, dict):
            target = body.get("productBasedCondition")
            if target and not body.get("includeItemsFromConditionSet", False):
                return condition_text(target)
            reward = body.get("rewardAction")
            if isinstance(reward, dict):
                found = _target_text(reward)
                if found:
                    return found
    return ""


def _local(moment: dt.datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _time_text(criteria: dict) -> str:
    start = criteria.get("startTime", "")
    hours = criteria.get("durationInHours", "")
    repeat = criteria.get("repeatFrequency", "")
    days = {
        "WEEKS": "on " + _values(criteria.get("weeklyValues")),
        "DAYS": "every day",
        "DOES_NOT_REPEAT": "on its first day only",
    }.get(repeat, str(repeat).lower())
    return f"from {start} for {hours} hour(s), {days}"


def skip_sentence(
    skipped: Skipped,
    *,
    promotion: Promotion,
    rule: Rule,
    applied: tuple[TrialApplied, ...],
    customer_id: int | None,
    store: StoreScope | None,
) -> str:
    """Why the engine skipped the promotion, for a marketer. Every reason the engine gives has its
    sentence (a test holds it); an unknown one falls back to the engine's message."""
    reason = skipped.reason
    zone = promotion.org.timezone
    if reason == "INACTIVE":
        return "It is not active: activate it (the “Activate selected promotions” action) for it to apply."
    if reason == "NOT_STARTED":
        return f"It has not started yet: it starts on {_local(rule.start, zone)} ({zone})."
    if reason == "EXPIRED":
        return f"It has ended: it ended on {_local(rule.end, zone)} ({zone})."
    if reason == "OUTSIDE_TIME_WINDOW":
        return (
            "The moment chosen is outside its time window "
            f"({_time_text(getattr(promotion, 'time_criteria', None) or {})}, {zone} time)."
        )
    if reason == "STORE_NOT_IN_SCOPE":
        if store is None:
            return "It applies only in some stores, and no till was chosen (without a till, a store list never matches)."
        return "The till's store is not among the stores it applies in."
    if reason == "NOT_IN_WALLET":
        if customer_id is None:
            return f"It is a {promotion.type} promotion: it applies only to a customer who holds it, and no customer was given."
        extra = (
            " (an earning promotion counts once earned, not while only issued)"
            if promotion.type == "EARNING"
            else ""
        )
        return f"This customer does not hold it: no active, unexpired instance is in their wallet{extra}."
    if reason == "LOYALTY_ONLY":
        return "It is for loyalty members only, and no customer was given."
    if reason == "CODE_REQUIRED":
        return "It is a code promotion: it applies only through one of its codes (sent with the cart, or linked to the customer)."
    if reason == "LIMIT_REACHED":
        whose = " (for this customer, or in all)" if customer_id is not None else ""
        return f"Its limits are used up{whose}: no redemption or discount is left."
    if reason == "CONDITION_NOT_MET":
        text = f"The cart does not meet the condition: {condition_text(promotion.condition)}."
        target = _target_text(promotion.action or {})
        if target:
            text += f" The items it discounts must be in the cart too: {target}."
        return text
    if reason == "NO_DISCOUNT":
        return (
            "The cart meets the condition, but the action gives nothing on it: the items it discounts "
            "were already fully discounted by promotions applied before it, or are worth nothing."
        )
    if reason == "BLOCKED_BY_EXCLUSIVE":
        winner = next((entry.name for entry in applied if not entry.is_this), "another promotion")
        if rule.is_stackable:
            return f"An exclusive promotion ({winner}) won: an exclusive promotion applies alone."
        return (
            f"It is exclusive, and another exclusive promotion ({winner}) won: of the exclusive promotions "
            "the cart meets, only the one ranked first (priority, then type, earliest end, then the larger "
            "discount) applies."
        )
    if reason == "CART_PROMOTION_APPLIED":
        names = ", ".join(entry.name for entry in applied if entry.level == "CART") or "a cart promotion"
        return (
            "The organization applies cart promotions first, and a cart promotion applied "
            f"({names}): line promotions then do not."
        )
    return skipped.message or reason


# The reasons above, for the test that holds every engine reason to a sentence.
REASONS = (
    "INACTIVE",
    "NOT_STARTED",
    "EXPIRED",
    "OUTSIDE_TIME_WINDOW",
    "STORE_NOT_IN_SCOPE",
    "NOT_IN_WALLET",
    "LOYALTY_ONLY",
    "CODE_REQUIRED",
    "LIMIT_REACHED",
    "CONDITION_NOT_MET",
    "NO_DISCOUNT",
    "BLOCKED_BY_EXCLUSIVE",
    "CART_PROMOTION_APPLIED",
)
