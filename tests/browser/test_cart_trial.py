"""In a real browser: a marketer opens a promotion's "Try it on a cart" panel from its page, fills one
line and sees the engine's discount. A screenshot is saved under test-output/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions.models import PromotionType
from promotions.rules import org_rules_forget
from tests.browser.chromium import OUTPUT
from tests.factories import OrganizationFactory, PromotionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CART_500 = {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": "500"}}  # fmt: skip
FIFTEEN_PERCENT = {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": "15"}}


def test_marketer_tries_a_promotion_on_a_one_line_cart(server, page):
    # given a POS promotion (15% off carts of 500 or more) and a marketer who may view promotions
    org_rules_forget()
    org = OrganizationFactory()
    promotion = PromotionFactory(
        org=org, type=PromotionType.POS, name="Fifteen off 500", condition=CART_500, action=FIFTEEN_PERCENT
    )
    marketer = UserFactory(org=org, username="trier", is_staff=True)
    marketer.set_password("a-strong-pass-123")
    marketer.save()
    marketer.user_permissions.set(Permission.objects.filter(codename="view_promotion"))
    OUTPUT.mkdir(exist_ok=True)

    # when the marketer logs in, opens the promotion and its panel
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "trier")
    page.fill("#id_password", "a-strong-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.goto(server.url + reverse("admin:promotions_promotion_change", args=[promotion.pk]))
    page.click("text=Try it on a cart")
    page.wait_for_selector("#try_cart_form")

    # and fills one line: 2 shirts for 1234.50
    page.fill("input[name=lines-0-sku]", "SHIRT")
    page.fill("input[name=lines-0-amount]", "1234.50")
    page.fill("input[name=lines-0-qty]", "2")
    page.click("input[name=try]")

    # then the engine's discount is shown: 15% of 1234.50 = 185.175, rounded once to 185.18
    page.wait_for_selector("#this-verdict")
    assert page.inner_text("#this-verdict") == "It applies: a discount of 185.18 (1 redemption)."
    assert page.inner_text("#total-discount") == "185.18"
    page.screenshot(path=str(OUTPUT / "e2e-cart-trial.png"), full_page=True)
    org_rules_forget()
