"""The org the fuzzer works in: fixed ids, so generated requests can name things that exist."""

from __future__ import annotations

import base64
import datetime as dt
from decimal import Decimal

from django.utils import timezone

from promotions.models import PromoCode, PromotionRestriction, PromotionType
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    TillFactory,
)

ORG_ID = 109001
USERNAME, SECRET = "fuzz.till", "fuzz-secret"
BASIC_AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{SECRET}".encode()).decode()

# One promotion of each type, running; plus one that has ended and one that is inactive.
PROMOTION_IDS = {
    "CUSTOMER": "f0220000000000000000c001",
    "EARNING": "f0220000000000000000e001",
    "REWARD": "f0220000000000000000a001",
    "POS": "f02200000000000000000b01",
    "CODE": "f02200000000000000000c0d",
    "ENDED": "f0220000000000000000d0ed",
    "INACTIVE": "f02200000000000000001dae",
}
CUSTOMER_IDS = (910001, 910002)
CUSTOMER_IDENTIFIERS = {"mobile": "919800910001", "email": "fuzz1@example.com", "externalId": "FUZZ-1"}
EARNED_IDS = ("f022e0000000000000000001", "f022e0000000000000000002", "f022e0000000000000000003")
PROGRAM_ID, LOYALTY_PROMOTION_ID = 9101, 9201
TRANSACTION_IDS = ("FUZZ-TXN-1",)
TILL_ID, TILL_CODE = 9301, "fuzz.till.1"
# Promo codes of the CODE promotion: the schema's example code (unlinked) and one linked to the first customer.
PROMO_CODES = ("WELCOME2025", "FUZZLINKED1")


def seed() -> None:
    """An org with a write API client, promotions of every type, two customers with wallets, a
    redemption and a loyalty program, every id fixed (see the constants above)."""
    now = timezone.now()
    org = OrganizationFactory(id=ORG_ID)
    ApiClientFactory(org=org, username=USERNAME, secret=SECRET)
    promotions = {}
    for key, promotion_id in PROMOTION_IDS.items():
        kind = key if key not in ("ENDED", "INACTIVE") else "CUSTOMER"
        changes = {}
        if key == "ENDED":
            changes = {"start_date": now - dt.timedelta(days=30), "end_date": now - dt.timedelta(days=1)}
        promotions[key] = PromotionFactory(
            id=promotion_id, org=org, type=kind, active=key != "INACTIVE", **changes
        )
    PromotionRestrictionFactory(
        promotion=promotions["CUSTOMER"],
        level=PromotionRestriction.Level.CUSTOMER,
        kpi=PromotionRestriction.Kpi.REDEMPTION,
        limit=Decimal(3),
    )
    first = CustomerFactory(
        id=CUSTOMER_IDS[0],
        org=org,
        mobile=CUSTOMER_IDENTIFIERS["mobile"],
        email=CUSTOMER_IDENTIFIERS["email"],
        external_id=CUSTOMER_IDENTIFIERS["externalId"],
    )
    CustomerFactory(id=CUSTOMER_IDS[1], org=org)
    for earned_id, key in zip(EARNED_IDS, PromotionType.WALLET_TYPES, strict=True):
        EarnedPromotionFactory(id=earned_id, org=org, customer=first, promotion=promotions[key])
    redemption = RedemptionFactory(org=org, customer=first, transaction_identifier=TRANSACTION_IDS[0])
    RedemptionLineFactory(redemption=redemption, promotion=promotions["POS"])
    program = LoyaltyProgramFactory(id=PROGRAM_ID, org=org)
    LoyaltyPromotionFactory(id=LOYALTY_PROMOTION_ID, org=org, program=program)
    TillFactory(id=TILL_ID, org=org, code=TILL_CODE)
    PromotionRestrictionFactory(
        promotion=promotions["CODE"],
        level=PromotionRestriction.Level.CODE,
        kpi="REDEMPTION",
        limit=Decimal(1),
    )
    PromoCode.objects.create(org=org, promotion=promotions["CODE"], code=PROMO_CODES[0])
    PromoCode.objects.create(
        org=org, promotion=promotions["CODE"], code=PROMO_CODES[1], customer=first, linked_on=now
    )
