"""Reads of promotions and loyalty programs, scoped to the caller's org."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q
from django.http import Http404
from rest_framework.exceptions import ValidationError

from promotions.models import LoyaltyProgram, LoyaltyPromotion, Organization, Promotion
from promotions_site.errors import ErrorCode, PromotionError


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


def promotions_not_compiling(
    *, org_ids: list[int] | None = None, active_only: bool = False, chunk_size: int = 500
) -> Iterator[tuple[Promotion, str]]:
    """Every stored promotion the engine cannot evaluate, with why (`path: message`), in (org, id)
    order: rows stored before the engine refused them at create, or left behind by a change of the
    engine. Read in chunks by keyset (org, id), each with its limits."""
    from promotions.engine import UnsupportedRule
    from promotions.rules import promotion_compile, unsupported_text

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
        for promotion in rows:
            try:
                promotion_compile(promotion)
            except UnsupportedRule as error:
                yield promotion, unsupported_text(error)
        last = (rows[-1].org_id, rows[-1].pk)
