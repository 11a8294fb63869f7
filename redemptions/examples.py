"""Example bodies of the redemption APIs (field names and shapes from Capillary's redeem page, seed 003)."""

REDEEM_REQUEST_EXAMPLE = {
    "customerId": "564332013",
    "transactionIdentifier": "TXN-2025-05-13-000123",
    "transactionNumber": "BILL-000123",
    "transactionDate": 1747126842954,
    "amount": 1000,
    "lineItems": [
        {
            "sku": "COFFEE-REG",
            "promotionId": "67f3832ab206f929966adf81",
            "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
            "redemptionCount": 1,
            "discount": 100,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
    ],
    "redemptions": [
        {
            "sku": "",
            "promotionId": "6912ced9d39e256f754a83f8",
            "redemptionCount": 1,
            "discount": 50,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
    ],
}

REDEEM_RESPONSE_EXAMPLE = {
    "data": {
        "orgId": 100737,
        "customerIdentifierValue": None,
        "customerIdentifierType": None,
        "customerId": 564332013,
        "transactionIdentifier": "TXN-2025-05-13-000123",
        "transactionNumber": "BILL-000123",
        "transactionDate": 1747126842954,
        "transactionDateISO": "2025-05-13T09:00:42Z",
        "amount": 1000.0,
        "redemptions": [
            {
                "promotionId": "6912ced9d39e256f754a83f8",
                "redemptionCount": 1,
                "discount": "50.000000",
                "discountAppliedOnQuantity": "1.000000",
                "promotionAppliedOnQuantity": "1.000000",
            }
        ],
        "lineItems": [
            {
                "sku": "COFFEE-REG",
                "promotionId": "67f3832ab206f929966adf81",
                "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
                "redemptionCount": 1,
                "discount": "100.000000",
                "discountAppliedOnQuantity": "1.000000",
                "promotionAppliedOnQuantity": "1.000000",
            }
        ],
    },
    "errors": [],
}

REVERSE_REQUEST_EXAMPLE = {
    "transactionIdentifier": "TXN-2025-05-13-000123",
    "reason": "Returned at the store",
}

# One record of the redemption list (GET /redemptions); its keys, in order, are the admin export's columns.
REDEMPTION_RECORD_EXAMPLE = {
    "id": "81",
    "orgId": 100737,
    "promotionId": "6912ced9d39e256f754a83f8",
    "promoCode": None,
    "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
    "customerId": 564332013,
    "redemptionDate": 1765875645000,
    "redemptionDateISO": "2025-12-16T09:00:45Z",
    "transactionIdentifier": "TXN-2025-12-16-0042",
    "transactionNumber": "BILL-0042",
    "promotionName": "Flat 500 off",
    "promotionMessageLabel": "Flat 500 off on 2000",
    "transactionEntityIdentifier": "REGULAR_l_81",
    "cartEvaluationId": None,
    "redemptionTill": "store.server",
    "discount": "500.000000",
    "redemptionCount": 1,
    "amount": "2000.000000",
    "redemptionType": "LINEITEM",
    "discountAppliedQuantity": "1.000000",
    "promotionAppliedQuantity": "1.000000",
    "sku": "SKU-1001",
    "productId": None,
    "reversed": False,
}
