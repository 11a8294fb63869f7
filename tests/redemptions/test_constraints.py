"""What must never be duplicated or out of range in redemptions is refused by the database itself."""

from __future__ import annotations

from tests import factories
from tests.refusals import refused


def test_transaction_identifier_unique_per_org(org, other_org):
    factories.RedemptionFactory(org=org, transaction_identifier="T-1")
    assert refused(lambda: factories.RedemptionFactory(org=org, transaction_identifier="T-1"))
    assert not refused(lambda: factories.RedemptionFactory(org=other_org, transaction_identifier="T-1"))


def test_one_reversal_per_redemption(org):
    redemption = factories.RedemptionFactory(org=org)
    factories.RedemptionReversalFactory(redemption=redemption)
    assert refused(lambda: factories.RedemptionReversalFactory(redemption=redemption))


def test_redemption_line_rules(org):
    line = factories.RedemptionLineFactory(redemption__org=org, position=0)
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, position=0))
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, redemption_count=0))
    assert refused(lambda: factories.RedemptionLineFactory(redemption=line.redemption, discount=-1))
