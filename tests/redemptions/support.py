"""Request builders for the redemption tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from promotions_site.timefmt import to_epoch_ms

URL = "/api_gateway/v1/promotions/redemptions"


def line(promotion, earned=None, **changes):
    item = {
        "sku": "SKU-1",
        "promotionId": promotion.pk,
        "redemptionCount": 1,
        "discount": 100,
        "discountAppliedOnQuantity": 1,
        "promotionAppliedOnQuantity": 1,
    }
    if earned is not None:
        item["earnedPromotionId"] = earned.pk
    item.update(changes)
    return item


def body(customer, txn="TXN-1", line_items=None, redemptions=None, **changes):
    data = {
        "customerId": str(customer.pk),
        "transactionIdentifier": txn,
        "transactionNumber": f"BILL-{txn}",
        "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(minutes=5)),
        "amount": 1000,
    }
    if line_items is not None:
        data["lineItems"] = line_items
    if redemptions is not None:
        data["redemptions"] = redemptions
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def redeem(api, data):
    return api.post(URL, data, format="json")


def codes(response):
    return [error["code"] for error in response.json()["errors"]]
