"""The documented request and response examples, for the OpenAPI schema and the tests."""

EARN_BULK_REQUEST_EXAMPLE = {
    "orgId": 100737,
    "customerId": 566881933,
    "eventTime": 1761750000000,
    "earnedFromType": "BULK_ISSUE",
    "eventDetails": {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"},
    "earnedPromotions": [
        {
            "promotionId": "6912ced9d39e256f754a83f8",
            "earnCount": 1,
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
        },
        {
            "promotionId": "6912cfff6629ee07040e15ef",
            "earnCount": 1,
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
        },
    ],
}
EARN_BULK_RESPONSE_EXAMPLE = {
    "data": [
        {
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
            "promotionId": "6912ced9d39e256f754a83f8",
            "successfulEarnCount": 1,
            "failedEarnCount": 0,
            "customerEarnedPromotions": [
                {
                    "id": "6912d0256629ee07040e15f1",
                    "customerId": 566881933,
                    "promotionId": "6912ced9d39e256f754a83f8",
                    "earnedFromType": "BULK_ISSUE",
                    "earnedFromId": "68fb1c9731d91c625a8d9e80",
                    "eventTime": 1761750000000,
                    "eventTimeISO": "2025-10-29T15:00:00Z",
                    "eventDetails": {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"},
                    "validTill": 1767205799999,
                    "validTillISO": "2025-12-31T18:29:59Z",
                }
            ],
        }
    ],
    "errors": [],
}
EARN_REQUEST_EXAMPLE = {
    "customerId": 566881933,
    "earnedFromType": "ACTIVITY",
    "earnedFromId": "BILL-2025-10-29-0042",
    "eventTimeISO": "2025-10-29T20:30:00+05:30",
    "eventDetails": {"id": "BILL-2025-10-29-0042", "type": "TransactionAdd"},
}
EARN_RESPONSE_EXAMPLE = {
    "data": {
        "id": "6912d0256629ee07040e15f1",
        "customerId": 566881933,
        "promotionId": "6912ced9d39e256f754a83f8",
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "BILL-2025-10-29-0042",
        "eventTime": 1761750000000,
        "eventTimeISO": "2025-10-29T15:00:00Z",
        "eventDetails": {"id": "BILL-2025-10-29-0042", "type": "TransactionAdd"},
        "validTill": 1767205799999,
        "validTillISO": "2025-12-31T18:29:59Z",
    },
    "errors": [],
}
WALLET_RESPONSE_EXAMPLE = {
    "data": [
        {
            "earnedPromotionId": "6912d0256629ee07040e15f1",
            "promotionId": "6912ced9d39e256f754a83f8",
            "promotionName": "Flat 10 on 100",
            "validTill": 1767205799999,
            "validTillISO": "2025-12-31T18:29:59Z",
            "unlockedDate": 1761750000000,
            "unlockedDateISO": "2025-10-29T15:00:00Z",
            "customerId": 566881933,
            "earnedType": "EARNED",
            "earnedStatus": "UNLOCKED",
            "promotionStatus": "ACTIVE",
            "applicationMode": "DISCOUNT",
            "redeemableFrom": 1761750000000,
            "redeemableFromISO": "2025-10-29T15:00:00Z",
            "customFieldValues": {},
            "eventTime": 1761750000000,
            "eventTimeISO": "2025-10-29T15:00:00Z",
            "supplementaryCriteria": None,
            "earnedFromType": "ACTIVITY",
            "earnedFromId": "BILL-2025-10-29-0042",
            "status": "ACTIVE",
            "restrictions": {
                "Cart": [
                    {
                        "kpi": "REDEMPTION",
                        "maxLimit": "1.000000",
                        "remainingRedemption": 1,
                        "windowType": "OVERALL",
                        "fixedWindowConfig": None,
                    }
                ],
                "Customer": [
                    {
                        "kpi": "REDEMPTION",
                        "maxLimit": "2.000000",
                        "remainingRedemption": 1,
                        "windowType": "OVERALL",
                        "fixedWindowConfig": None,
                    }
                ],
                "Promotion": [
                    {
                        "kpi": "DISCOUNT",
                        "maxLimit": "5000.000000",
                        "remainingRedemption": 4890.5,
                        "windowType": "OVERALL",
                        "fixedWindowConfig": None,
                    }
                ],
                "Earn": [],
            },
        }
    ],
    "errors": [],
}
REVOKE_EARN_REQUEST_EXAMPLE = {
    "customerId": 566881933,
    "earnRevokeDetails": [
        {"promotionId": "6912ced9d39e256f754a83f8", "earnIds": ["6912d0256629ee07040e15f1"]},
        {"promotionId": "6912cfff6629ee07040e15ef", "earnIds": ["6912d0256629ee07040e15f2"]},
    ],
}
REVOKE_EARN_RESPONSE_EXAMPLE = {
    "data": {
        "customerId": 566881933,
        "revokedDetails": [
            {
                "promotionId": "6912ced9d39e256f754a83f8",
                "revokedEarnIds": ["6912d0256629ee07040e15f1"],
                "status": "SUCCESS",
            }
        ],
    },
    "errors": [
        {
            "promotionId": "6912cfff6629ee07040e15ef",
            "code": 729,
            "message": "Earn already redeemed: 6912d0256629ee07040e15f2",
        }
    ],
}

# --- Customers (our API: Capillary's customer API is not among the seeds) -----------------------------
CUSTOMER_CREATE_REQUEST_EXAMPLE = {
    "mobile": "+18767431754",
    "email": "asha.rao@example.com",
    "externalId": "LOY-000123",
    "firstName": "Asha",
    "lastName": "Rao",
    "source": "INSTORE",
}
CUSTOMER_RESPONSE_EXAMPLE = {
    "data": {
        "customerId": 564332013,
        "mobile": "18767431754",
        "email": "asha.rao@example.com",
        "externalId": "LOY-000123",
        "firstName": "Asha",
        "lastName": "Rao",
        "source": "INSTORE",
        "createdOn": 1747126842954,
        "createdOnISO": "2025-05-13T09:00:42Z",
    },
    "errors": [],
}

# --- POST /v2/promotion/issue (seed 004), the documented bodies as they are ---------------------------
LOYALTY_ISSUE_REQUEST_EXAMPLE = {"programId": 469, "promotionId": 65777}
LOYALTY_ISSUE_RESPONSE_EXAMPLE = {
    "warnings": [],
    "errors": [],
    "sideEffects": [
        {
            "programId": 2750,
            "issualId": 809,
            "earnedId": 764,
            "promotionId": 201436,
            "type": "Points promotion",
        }
    ],
}
LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE = {
    "warnings": [
        {
            "status": False,
            "code": 8890,
            "message": "promotion not issued due to config issues or customer exhausted limits",
        }
    ],
    "errors": [],
    "sideEffects": [],
}
LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "message": "invalid programId passed", "code": 1101}],
}
LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "message": "promotion id passed is invalid", "code": 8874}],
}
LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE = {
    "warnings": [],
    "errors": [
        {
            "message": "identifierName, identifierValue, source can not be empty",
            "code": 11013,
            "status": False,
        }
    ],
}
LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "code": 8015, "message": "Customer not found for the given identifiers"}],
}
