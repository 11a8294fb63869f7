from tests.factories import (
    AuditEventFactory,
    EarnedPromotionFactory,
    LoyaltyEarnedPromotionFactory,
    PromotionRestrictionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)


def test_factories_build_consistent_rows(db):
    for factory in (
        AuditEventFactory, EarnedPromotionFactory, LoyaltyEarnedPromotionFactory, PromotionRestrictionFactory,
        RedemptionLineFactory, RedemptionReversalFactory,
    ):  # fmt: skip
        obj = factory()
        assert obj.pk is not None
    line = RedemptionLineFactory()
    assert line.promotion.org_id == line.redemption.org_id
