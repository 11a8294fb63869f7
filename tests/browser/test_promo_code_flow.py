"""End to end in a real browser (Debian's Chromium, driven by Playwright): a marketer generates promo codes
for a single-use CODE promotion in the admin and watches the batch finish; the till's integration links
one of them to a customer, the customer's cart gets the promotion through it in evaluate without typing
it, the sale redeems it once, and a second sale with the same code is refused. Screenshots go under
test-output/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions.models import PromoCode, PromoCodeBatch
from promotions_site.timefmt import to_epoch_ms
from redemptions.models import RedemptionCounter, RedemptionLine, code_scope
from tests.browser.chromium import OUTPUT
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

CART_OVER_1500 = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1500},
}
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}


def test_a_code_generated_in_the_admin_is_linked_applied_in_evaluate_and_redeemed_once(server, page):
    # given a single-use CODE promotion, a customer, an API client of the till, and a marketer
    org = OrganizationFactory()
    promotion = PromotionFactory(
        org=org, type="CODE", name="Welcome code", condition=CART_OVER_1500, action=CART_100_OFF
    )
    PromotionRestrictionFactory(promotion=promotion, level="Code", kpi="REDEMPTION", limit=1)
    customer = CustomerFactory(org=org)
    till = ApiClientFactory(org=org)
    headers = {
        "Authorization": basic_auth(till.username, till.plain_secret),
        "Content-Type": "application/json",
    }
    marketer = UserFactory(org=org, username="marketer", is_staff=True)
    marketer.set_password("a-strong-pass-123")
    marketer.save()
    marketer.user_permissions.set(Permission.objects.all())
    OUTPUT.mkdir(exist_ok=True)

    # when the marketer generates 25 codes from the promotion's page
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "a-strong-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.goto(server.url + reverse("admin:promotions_promotion_change", args=[promotion.pk]))
    page.click(f"a[href$='/promocodebatch/generate/{promotion.pk}/']")
    page.fill("input[name=count]", "25")
    page.fill("input[name=length]", "10")
    page.click("input[type=submit]")

    # then the batch's page follows it to the end
    page.wait_for_selector("#bulk-job-progress[data-status=DONE]", timeout=60_000)
    page.screenshot(path=str(OUTPUT / "codes-1-batch-done.png"), full_page=True)
    batch = PromoCodeBatch.objects.get(promotion=promotion)
    assert (batch.status, batch.done) == ("DONE", 25)

    # and the promotion's codes are listed in the admin: the marketer hands the first one out
    page.goto(
        server.url
        + reverse("admin:promotions_promocode_changelist")
        + f"?promotion__id__exact={promotion.pk}"
    )
    listed = page.locator("#result_list tbody tr").count()
    assert listed == 25
    code = page.locator("#result_list tbody tr th a").first.inner_text().strip()
    assert PromoCode.objects.filter(promotion=promotion, code=code).exists()

    # when the till links the code to the customer (typed in lower case: codes are case-insensitive)
    api = page.request
    linked = api.post(
        f"{server.url}/api_gateway/v1/promotions/code/link",
        headers=headers,
        data={"customerId": customer.pk, "code": code.lower(), "mode": "DISCOUNT"},
    )
    assert linked.status == 200, linked.text()
    assert linked.json()["data"]["customerId"] == customer.pk

    # then the customer's cart gets the promotion through the linked code without typing it
    cart = {"amount": "2000.00", "customerId": customer.pk, "cartItems": [{"sku": "A", "amount": "2000.00", "qty": "1"}]}  # fmt: skip
    evaluated = api.post(f"{server.url}/api_gateway/v1/promotions/evaluate", headers=headers, data=cart)
    assert evaluated.status == 200, evaluated.text()
    applied = evaluated.json()["data"]["appliedPromotions"]
    assert [(entry["promotionId"], entry["promoCode"], entry["discount"]) for entry in applied] == [
        (promotion.pk, code, "100.000000")
    ]

    # and the sale redeems it once; a second sale with the same code is refused (1004)
    def sale(txn):
        return api.post(
            f"{server.url}/api_gateway/v1/promotions/redemptions",
            headers=headers,
            data={
                "customerId": str(customer.pk),
                "transactionIdentifier": txn,
                "transactionNumber": f"BILL-{txn}",
                "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(minutes=1)),
                "amount": 2000,
                "redemptions": [
                    {"sku": "A", "promotionId": promotion.pk, "promoCode": code, "redemptionCount": 1, "discount": 100,
                     "discountAppliedOnQuantity": 1, "promotionAppliedOnQuantity": 1}
                ],
            },
        )  # fmt: skip

    first, second = sale("E2E-CODE-1"), sale("E2E-CODE-2")
    assert first.status == 200, first.text()
    assert second.status == 409 and [error["code"] for error in second.json()["errors"]] == [1004]
    assert RedemptionLine.objects.get(promotion=promotion).promo_code.code == code
    assert RedemptionCounter.objects.get(scope=code_scope(PromoCode.objects.get(code=code).pk)).used == 1

    # and the code's page in the admin shows it linked to the customer
    page.goto(server.url + reverse("admin:promotions_promocode_changelist") + f"?q={code}")
    page.screenshot(path=str(OUTPUT / "codes-2-linked.png"), full_page=True)
    assert page.locator("#result_list tbody tr").count() == 1
