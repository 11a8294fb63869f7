"""Reads of promotions and loyalty programs, scoped to the caller's org."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from promotions.engine import UnsupportedRule, compile_rule
from promotions.models import (
    TILL_CODE_MAX_LENGTH,
    ApiClient,
    Concept,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    Till,
    Zone,
)
from promotions.rules import promotions_rule_inputs, unsupported_text
from promotions_site.errors import ErrorCode, PromotionError

if TYPE_CHECKING:
    from promotions.engine.types import Settings, StoreScope

TILL_CODE_HEADER = "X-CAP-API-ATTRIBUTION-TILL-CODE"


def promotion_get(*, org: Organization, promotion_id: str) -> Promotion:
    """The org's promotion with this id; another org's promotion is 404, exactly like a missing one."""
    # No id holds a NUL (PostgreSQL text cannot): an unknown promotion, not a database error.
    promotion = None
    if "\x00" not in promotion_id:
        promotion = Promotion.objects.for_org(org).filter(pk=promotion_id).first()
    if promotion is None:
        raise Http404("Passed promotion is not found")
    return promotion


def promotion_list(*, org: Organization, params, limit: int) -> list[Promotion]:
    """The org's promotions matching the list API's filters, newest first, restrictions prefetched.

    Raises ValidationError (400) for malformed filter values.
    """
    from promotions.filters import PromotionFilter

    queryset = Promotion.objects.for_org(org).prefetch_related("restrictions").order_by("-created_on", "id")
    filterset = PromotionFilter(params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return list(filterset.qs[:limit])


def promotion_config_list(*, org: Organization, params, limit: int) -> list[Promotion]:
    """The org's promotion summaries for the config API: active, unending ones unless
    `includeExpired` / `includeInactive` say otherwise, `promotionIds` narrowing; newest first, at
    most `limit`, restrictions prefetched. Raises ValidationError (400) for malformed values."""
    from promotions.filters import PromotionConfigFilter

    queryset = (
        Promotion.objects.for_org(org)
        .prefetch_related("restrictions")
        .defer("condition", "earning_criteria", "time_criteria")
        .order_by("-created_on", "id")
    )
    filterset = PromotionConfigFilter(params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return list(filterset.qs[:limit])


def till_get(*, org: Organization, till_id: str) -> Till:
    """The org's till named by its id (digits) or its code; another org's till is 404, as a missing one."""
    tills = Till.objects.for_org(org).select_related("store")
    till = None
    if till_id.isascii() and till_id.isdigit():
        if int(till_id) <= 2**63 - 1:
            till = tills.filter(pk=int(till_id)).first()
    elif len(till_id) <= TILL_CODE_MAX_LENGTH and "\x00" not in till_id:
        till = tills.filter(code=till_id).first()
    if till is None:
        raise Http404("Passed till is not found")
    return till


def promotions_for_till(*, org: Organization, till: Till, now: dt.datetime | None = None) -> list[Promotion]:
    """The org's promotions evaluable at `till` now: active, started, not ended, and whose
    `storeCriteria` holds for the till's store, its zones and concepts (with their ancestors), as
    evaluate decides it. The time-of-day window (`timeCriteria`) is not applied: the list is what
    the till may be offered today. Newest first, restrictions prefetched."""
    from promotions.engine.compile import compile_store_criteria
    from promotions.engine.scope import store_holds

    def evaluable(promotion: Promotion) -> bool:
        try:
            return store_holds(compile_store_criteria(promotion.store_criteria), scope)
        except UnsupportedRule:  # a rule that does not compile is skipped by evaluate too
            return False

    now = now or timezone.now()
    scope = store_scope_for_till(till)
    promotions = (
        Promotion.objects.for_org(org)
        .filter(active=True, start_date__lte=now, end_date__gt=now)
        .prefetch_related("restrictions")
        .order_by("-created_on", "id")
    )
    return [promotion for promotion in promotions if evaluable(promotion)]


def loyalty_program_get(*, org: Organization, program_id: int | None) -> LoyaltyProgram:
    """The org's loyalty program with this id; missing, unparsable (None) or another org's: 1101."""
    program = (
        None if program_id is None else LoyaltyProgram.objects.for_org(org).filter(pk=program_id).first()
    )
    if program is None:
        raise PromotionError(ErrorCode.INVALID_PROGRAM_ID)
    return program


def loyalty_promotion_get(*, program: LoyaltyProgram, promotion_id: int | None) -> LoyaltyPromotion:
    """The program's loyalty promotion with this id; missing, unparsable (None) or in another program
    (or org): 8874. Whether it can be issued now is the issuing service's question (8890)."""
    promotion = (
        None
        if promotion_id is None
        else LoyaltyPromotion.objects.for_org(program.org_id).filter(program=program, pk=promotion_id).first()
    )
    if promotion is None:
        raise PromotionError(ErrorCode.INVALID_LOYALTY_PROMOTION_ID)
    return promotion


# --- The engine's inputs -----------------------------------------------------------------------------


def engine_settings_for(org: Organization) -> Settings:
    """The org's evaluation settings as the engine takes them (docs/engine.md, "Settings"). The
    redemption strategy is not the engine's business: the redemption service reads it from the org."""
    from promotions.engine.types import Settings

    return Settings(
        rounding_mode=org.rounding_mode,
        precision=org.rounding_precision,
        mechanism=org.evaluation_mechanism,
        percentage_base=org.percentage_base,
        several_line_promotions_per_unit=org.several_line_promotions_per_unit,
    )


def _ancestors_sql(table: str, name: str) -> str:
    # UNION (not UNION ALL) drops a row met again, so a cycle in the parent links ends the recursion.
    return (
        f"{name}(id, parent_id, external_id) AS ("
        f"SELECT id, parent_id, external_id FROM {table} WHERE id = %s AND org_id = %s "
        f"UNION SELECT p.id, p.parent_id, p.external_id FROM {table} p JOIN {name} ON p.id = {name}.parent_id "
        f"WHERE p.org_id = %s)"
    )


def store_scope_for_till(till: Till | None) -> StoreScope | None:
    """The till's store with every zone and concept above it, by the ids `storeCriteria` names
    (`external_id`); None for no till. One query: a recursive walk up both trees that stops at a
    cycle and never leaves the till's org."""
    from promotions.engine.types import StoreScope

    if till is None:
        return None
    store = till.store
    if store.zone_id is None and store.concept_id is None:
        return StoreScope(store_id=store.external_id)
    org_id = store.org_id
    sql = (
        f"WITH RECURSIVE {_ancestors_sql(Zone._meta.db_table, 'zones')}, "
        f"{_ancestors_sql(Concept._meta.db_table, 'concepts')} "
        "SELECT 'Z', external_id FROM zones UNION ALL SELECT 'C', external_id FROM concepts"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [store.zone_id, org_id, org_id, store.concept_id, org_id, org_id])
        rows = cursor.fetchall()
    return StoreScope(
        store_id=store.external_id,
        zone_ids=frozenset(external_id for kind, external_id in rows if kind == "Z"),
        concept_ids=frozenset(external_id for kind, external_id in rows if kind == "C"),
    )


def till_resolve(*, client: ApiClient, till_code: str | None) -> Till | None:
    """The till an API client's request runs at: the till of the client's org named by `till_code`
    (the X-CAP-API-ATTRIBUTION-TILL-CODE header; blank counts as absent), else the client's default
    till, else None. Raises PromotionError 4001 (400) when `till_code` names no till of the org."""
    till_code = (till_code or "").strip()
    if not till_code and client.default_till_id is None:
        return None  # the usual case of a client without a till: no query to build
    tills = Till.objects.for_org(client.org_id).select_related("store")
    if till_code:
        till = None
        # A code longer than any, or holding a NUL (PostgreSQL text cannot), names no till.
        if till_code_usable(till_code):
            till = tills.filter(code=till_code).first()
        if till is None:
            raise till_unknown(till_code)
        return till
    if client.default_till_id is None:
        return None
    # Filtered by org: a default till of another org (the admin refuses one) counts as none.
    return tills.filter(pk=client.default_till_id).first()


def till_code_usable(till_code: str) -> bool:
    """Whether a stripped till code could name a till: one longer than any, or holding a NUL (PostgreSQL
    text cannot), names none."""
    return len(till_code) <= TILL_CODE_MAX_LENGTH and "\x00" not in till_code


def till_unknown(till_code: str) -> PromotionError:
    """The 4001 refusal of a till code that names no till of the org."""
    return PromotionError(
        ErrorCode.TILL_CODE_UNKNOWN,
        f"{ErrorCode.TILL_CODE_UNKNOWN.message} {TILL_CODE_HEADER}: {till_code[:TILL_CODE_MAX_LENGTH]!r}.",
    )


def till_for_request(request) -> Till | None:
    """`till_resolve` for an API request: its authenticated client and its till-code header."""
    return till_resolve(client=request.user, till_code=request.headers.get(TILL_CODE_HEADER))


def promotions_not_compiling(
    *, org_ids: list[int] | None = None, active_only: bool = False, chunk_size: int = 500
) -> Iterator[tuple[Promotion, str]]:
    """Every stored promotion the engine cannot evaluate, with why (`path: message`), in (org, id)
    order: rows stored before the engine refused them at create, or left behind by a change of the
    engine. Read in chunks by keyset (org, id), each with its limits."""

    promotions = Promotion.objects.all()
    if org_ids:
        promotions = promotions.filter(org_id__in=org_ids)
    if active_only:
        promotions = promotions.filter(active=True)
    last = None
    while True:
        chunk = promotions.order_by("org_id", "pk")
        if last is not None:
            chunk = chunk.filter(Q(org_id__gt=last[0]) | Q(org_id=last[0], pk__gt=last[1]))
        rows = list(chunk.prefetch_related("restrictions")[:chunk_size])
        if not rows:
            return
        for promotion, data in zip(rows, promotions_rule_inputs(rows), strict=True):
            try:
                compile_rule(data)
            except UnsupportedRule as error:
                yield promotion, unsupported_text(error)
        last = (rows[-1].org_id, rows[-1].pk)
