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
