"""The engine's rules of an org, compiled from its promotions and cached per process by `rules_version`.

A promotion becomes a rule through `compile_rule` of the API echo of the promotion (the dict
`GET /promotions/{id}` answers, rendered by `PromotionOutputSerializer`), so the engine reads exactly
what a client reads back. The create/update services compile the would-be-stored promotion the same
way and refuse (400) what the engine cannot evaluate; a stored promotion that no longer compiles (an
older row, a change of the engine) is skipped and logged here, never a 500, and listed by the
`check_promotions` command.

The cache: one entry per org, `(rules_version, OrgRules)`. `Organization.rules_version` is bumped in
the same transaction as every change of one of the org's promotions, so the caller reads the version
with one cheap query per request and compiles again only when it moved: no timer, no stale rules.
The version is read before the promotions (READ COMMITTED: the promotions read are at least as new
as the version), so rules cached under a version are never older than it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.utils import timezone

from promotions.engine import RuleSet, UnsupportedRule, compile_rule
from promotions.engine.types import Rule
from promotions.models import Promotion, PromotionRestriction, PromotionType
from promotions.serializers import PromotionOutputSerializer
from promotions.windows import OVERALL, WindowRule, window_rule_stored

logger = logging.getLogger(__name__)

# The levels whose limits are counted across transactions (the evaluation reads their headroom).
STATEFUL_LEVELS = (
    PromotionRestriction.Level.CUSTOMER,
    PromotionRestriction.Level.PROMOTION,
    PromotionRestriction.Level.EARN,
    PromotionRestriction.Level.CODE,
)


@dataclass(frozen=True)
class Limit:
    """One stateful limit of a promotion: its restriction row, level, kpi and limit, and the window it
    is counted in (with the promotion's start, which anchors N_DAY cycles by default)."""

    restriction_id: int
    level: str
    kpi: str
    limit: Decimal
    window: WindowRule = OVERALL
    promotion_start: dt.datetime | None = None


@dataclass(frozen=True)
class OrgRules:
    """An org's compiled rules at one `rules_version`."""

    version: int
    ruleset: RuleSet
    rules: dict[str, Rule]  # by promotion id
    types: dict[str, str]  # promotion id -> type (POS, CODE, CUSTOMER, EARNING, REWARD)
    limits: dict[str, tuple[Limit, ...]]  # promotion id -> its Customer, Promotion, Earn and Code limits
    failed: dict[str, str] = field(default_factory=dict)  # promotion id -> why it does not compile
    # The wallet promotions a customer must activate (customerActivationRequired) before they apply.
    activation_required: frozenset[str] = frozenset()

    @cached_property
    def code_promotion_ids(self) -> tuple[str, ...]:
        """The CODE promotions' ids: read by every evaluation, found once per compile."""
        return tuple(pid for pid, kind in self.types.items() if kind == PromotionType.CODE)

    @property
    def restriction_ids(self) -> list[int]:
        return sorted(
            limit.restriction_id
            for limits in self.limits.values()
            for limit in limits
            if limit.level not in (PromotionRestriction.Level.EARN, PromotionRestriction.Level.CODE)
        )


def promotion_rule_input(promotion: Promotion, restrictions=None) -> dict:
    """The promotion as the API echoes it: what `compile_rule` reads. `restrictions` (RestrictionSpecs)
    stand for the stored limits of a promotion not written yet."""
    context = {} if restrictions is None else {"restriction_specs": restrictions}
    now = timezone.now()
    if promotion.created_on is None:  # not stored yet: the echo still needs its dates
        promotion.created_on = promotion.last_updated_on = now
    return dict(PromotionOutputSerializer(promotion, context=context).data)


def promotions_rule_inputs(promotions: list[Promotion]) -> list[dict]:
    """`promotion_rule_input` of stored promotions (their restrictions prefetched), rendered as one
    list: the serializer's fields are built once, not once per promotion."""
    return [dict(data) for data in PromotionOutputSerializer(promotions, many=True).data]


def promotion_compile(promotion: Promotion, restrictions=None) -> Rule:
    """The promotion's rule; raises `UnsupportedRule(path, message)` for what the engine cannot evaluate."""
    return compile_rule(promotion_rule_input(promotion, restrictions))


def unsupported_text(error: UnsupportedRule) -> str:
    """`path: message`, as the create API's 400 and `check_promotions` name the unsupported part."""
    path = getattr(error, "path", "") or ""
    message = getattr(error, "message", "") or str(error)
    return f"{path}: {message}" if path else message


def org_rules_compile(org_id: int, version: int, *, now: dt.datetime | None = None) -> OrgRules:
    """Compile the org's active, unexpired promotions (one query for the promotions, one for their
    limits). A promotion that does not compile is left out and logged."""
    now = now or timezone.now()
    promotions = list(
        Promotion.objects.filter(org_id=org_id, active=True, end_date__gt=now)
        .prefetch_related("restrictions")
        .order_by("pk")
    )
    rules: dict[str, Rule] = {}
    failed: dict[str, str] = {}
    limits: dict[str, tuple[Limit, ...]] = {}
    for promotion, data in zip(promotions, promotions_rule_inputs(promotions), strict=True):
        try:
            rules[promotion.pk] = compile_rule(data)
        except UnsupportedRule as error:
            failed[promotion.pk] = unsupported_text(error)
            logger.warning(
                "promotion %s of org %s does not compile and is skipped: %s",
                promotion.pk,
                org_id,
                failed[promotion.pk],
            )
            continue
        stateful = tuple(
            Limit(row.pk, row.level, row.kpi, row.limit, window_rule_stored(row), promotion.start_date)
            for row in promotion.restrictions.all()
            if row.level in STATEFUL_LEVELS
        )
        if stateful:
            limits[promotion.pk] = stateful
    return OrgRules(
        version=version,
        ruleset=RuleSet(list(rules.values())),
        rules=rules,
        types={promotion.pk: promotion.type for promotion in promotions if promotion.pk in rules},
        limits=limits,
        failed=failed,
        activation_required=frozenset(
            promotion.pk
            for promotion in promotions
            if promotion.pk in rules and promotion.customer_activation_required
        ),
    )


_cache: dict[int, OrgRules] = {}
_lock = threading.Lock()


def org_rules(org_id: int, version: int) -> OrgRules:
    """The org's rules at `version`, from this process's cache or compiled (and cached) now."""
    cached = _cache.get(org_id)
    if cached is not None and cached.version == version:
        return cached
    with _lock:  # one compile per org and version, even with threads
        cached = _cache.get(org_id)
        if cached is not None and cached.version == version:
            return cached
        compiled = org_rules_compile(org_id, version)
        _cache[org_id] = compiled
        return compiled


def org_rules_forget() -> None:
    """Empty this process's cache (tests; a new engine version deployed is a new process anyway)."""
    with _lock:
        _cache.clear()
