"""In a real browser (Debian's Chromium, driven by Playwright): a marketer builds a promotion on the add
page without typing JSON: picks the condition and the reward from lists, finds a SKU the org has sold
through the value search and clicks it, and watches the plain-words summary follow each step."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions.models import Promotion
from redemptions.models import Evaluation
from tests.browser.chromium import OUTPUT
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_marketer_builds_a_promotion_by_picking_and_sees_the_summary_follow(server, page):
    # given: an org whose carts had shirts, and a marketer
    org = OrganizationFactory()
    Evaluation.objects.create(
        org=org, amount=Decimal(60), request={"cartItems": [{"sku": "SHIRT", "categoryList": ["Tops"]}]}
    )
    marketer = UserFactory(org=org, username="builder", is_staff=True)
    marketer.set_password("a-strong-pass-123")
    marketer.save()
    marketer.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    OUTPUT.mkdir(exist_ok=True)
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "a-strong-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    # when: the add page, the promotion's name and dates
    page.goto(server.url + reverse("admin:promotions_promotion_add"))
    start = timezone.localtime(timezone.now() + dt.timedelta(days=1))
    page.fill("#id_name", "Shirts 20% off")
    page.select_option("#id_type", "POS")
    page.fill("#id_start_date_0", start.strftime("%Y-%m-%d"))
    page.fill("#id_start_date_1", "00:00:00")
    page.fill("#id_end_date_0", (start + dt.timedelta(days=30)).strftime("%Y-%m-%d"))
    page.fill("#id_end_date_1", "00:00:00")
    summary = page.locator("#builder-summary")

    # and the default rule is read out; then the reward's percentage
    page.fill("#id_cart_value", "1000")
    page.fill("#id_act_value", "10")
    page.wait_for_function(
        "document.getElementById('builder-summary').textContent.includes('at least 1,000.00')"
    )
    assert summary.inner_text() == "10% off the whole cart when the subtotal is at least 1,000.00."

    # and "buy products from": the SKU found by search and clicked, at least 2 units
    page.select_option("#id_cond_type", "PRODUCT")
    assert page.locator("#id_cart_value").is_hidden()
    page.fill("input[data-for=id_cg0_c0_values]", "shi")
    page.click(".builder-suggestion:has-text('SHIRT')")
    assert page.input_value("#id_cg0_c0_values") == "SHIRT"
    page.fill("input[data-for=id_cg0_c0_values]", "HAT-42")  # a value never seen: typed, then Enter
    page.press("input[data-for=id_cg0_c0_values]", "Enter")
    assert page.input_value("#id_cg0_c0_values") == "SHIRT\nHAT-42"
    page.select_option("#id_cg0_kpi", "QUANTITY")
    page.fill("#id_cg0_value", "2")
    # a tender reward cannot be picked without a tender condition
    assert page.locator("#id_reward option[value='TENDER:PERCENTAGE']").is_disabled()
    page.select_option("#id_reward", "PRODUCT_BASED:PERCENTAGE")
    page.fill("#id_act_value", "20")
    expected = "20% off the qualifying items when the cart has at least 2 units of SKU SHIRT or HAT-42."
    page.wait_for_function(f"document.getElementById('builder-summary').textContent === {expected!r}")
    # and how it is earned: only an Earning promotion is, and only a transaction has items
    assert page.locator("#earning-not-earning").is_visible()
    page.select_option("#id_type", "EARNING")
    assert page.locator("#earning-not-earning").is_hidden()
    page.select_option("#id_ec_from", "ACTIVITY")
    page.select_option("#id_ec_event", "CustomerRegistration")
    assert page.locator("#id_ec_events option[value='SKU']").is_disabled()
    page.select_option("#id_ec_event", "TransactionAdd")
    page.select_option("#id_ec_events", "SKU")
    page.fill("#id_ec_sku", "SHIRT")
    page.fill("#id_ec_valid_days", "30")
    earned = "Earned when the customer makes a transaction with an item of SKU SHIRT, within 30 days of being issued it."
    page.wait_for_function(f"document.getElementById('earning-summary').textContent === {earned!r}")
    page.screenshot(path=str(OUTPUT / "builder-1-summary.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")

    # then: stored as the API stores it
    promotion = Promotion.objects.get(org=org, name="Shirts 20% off")
    assert promotion.earning_criteria["criteriaDsl"] == 'currentLineItem.doesItemMatch("sku_code","SHIRT")'
    assert promotion.earning_criteria["earningValidTillDays"] == 30
    assert promotion.condition == {
        "type": "PRODUCT",
        "productCondition": {
            "criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["SHIRT", "HAT-42"]}],
            "kpi": "QUANTITY",
            "operator": "GREATER_THAN_OR_EQUAL",
            "value": "2.000000",
        },
    }
    assert promotion.action == {
        "type": "PRODUCT_BASED",
        "productBasedAction": {
            "type": "PERCENTAGE",
            "value": "20.000000",
            "includeItemsFromConditionSet": True,
        },
    }
