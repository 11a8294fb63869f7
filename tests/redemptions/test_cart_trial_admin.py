"""A promotion's "Try it on a cart" panel in the admin: the engine's figures with the org's live rules,
why this promotion did or did not apply in words, what it would give alone; bad input as form errors,
org isolation, permissions, and nothing recorded."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from promotions.engine.evaluate import MESSAGES
from promotions.engine.types import Skipped
from promotions.models import Promotion
from promotions.rules import org_rules_forget
from redemptions.cart_trial import REASONS, skip_sentence
from redemptions.models import Evaluation, RedemptionCounter
from tests.admin_support import admin_url, staff_login
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    StoreFactory,
    TillFactory,
)

CART_500 = {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": "500"}}  # fmt: skip
FIFTEEN_PERCENT = {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": "15"}}
FLAT_300 = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "300"}}
# 1000 + 234.50 = 1234.50; 15% = 185.175, rounded once (HALF_UP, 2 places): 185.18
CART = {
    "amount": "1234.50",
    "cartItems": [
        {"sku": "SHIRT", "amount": "1000.00", "qty": "2", "categoryList": ["Apparel"], "brandList": ["Acme"]},
        {"sku": "SOCKS", "amount": "234.50", "qty": "1"},
    ],
}


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    # Factories do not bump rules_version: each test starts without cached rules.
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def staff(client, org):
    staff_login(client, org)
    return client


@pytest.fixture
def promotion(org):
    return PromotionFactory(
        org=org,
        type="POS",
        name="Fifteen off 500",
        condition=CART_500,
        action=FIFTEEN_PERCENT,
        is_stackable=True,
    )


def url(promotion) -> str:
    return reverse("admin-promotion-try", args=[promotion.pk])


def pasted(client, promotion, cart=CART, **fields):
    return client.post(url(promotion), {"cart": json.dumps(cart), **fields})


def built(client, promotion, rows, **fields):
    data = {
        "lines-TOTAL_FORMS": str(len(rows)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "500",
        **fields,
    }
    for index, row in enumerate(rows):
        data.update({f"lines-{index}-{name}": value for name, value in row.items()})
    return client.post(url(promotion), data)


def text(response) -> str:
    """The page's text, tags and runs of spaces dropped."""
    assert response.status_code == 200, response.status_code
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def verdict(response, element_id: str) -> str:
    html = response.content.decode()
    found = re.search(rf'id="{element_id}">(.*?)</p>', html, re.S)
    assert found, f"no #{element_id} on the page"
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", "", found.group(1)))).strip()


# --- The page ---------------------------------------------------------------------------------------


def test_the_promotion_page_links_to_the_panel_and_the_panel_renders(staff, promotion):
    # when
    page = staff.get(admin_url(Promotion, "change", promotion.pk))
    panel = staff.get(url(promotion))

    # then
    assert url(promotion) in page.content.decode()
    assert panel.status_code == 200
    html = panel.content.decode()
    assert 'id="try_cart_form"' in html
    assert "Fifteen off 500" in html
    assert "Moment (Asia/Kolkata)" in html  # the org's zone, labelled
    assert html.count('class="line-row"') == 3  # a few empty rows to build a cart
    assert re.search(r'<textarea name="cart"[^>]*>\s*</textarea>', html)  # an empty box to paste into


def test_add_a_row_posts_back_one_more_row_without_evaluating(staff, promotion):
    # when
    response = built(staff, promotion, [{"sku": "SHIRT", "amount": "10"}] * 3, add_line="Add a row")

    # then
    html = response.content.decode()
    assert html.count('class="line-row"') == 4
    assert 'value="SHIRT"' in html  # what was typed stays
    assert 'id="cart-trial-result"' not in html


# --- The engine's figures ---------------------------------------------------------------------------


def test_a_pasted_cart_shows_the_engine_discount_and_the_line_shares(staff, promotion):
    # when
    response = pasted(staff, promotion)

    # then: 15% of 1234.50, rounded once, spread over both lines by value
    assert verdict(response, "this-verdict") == "It applies: a discount of 185.18 (1 redemption)."
    page = text(response)
    assert "total discount 185.18" in page
    assert "line 1 SHIRT : 150.00 on 2 unit(s)" in page
    assert "line 2 SOCKS : 35.18 on 1 unit(s)" in page


def test_a_cart_built_from_rows_gives_the_same_figure(staff, promotion):
    # when: the same cart in the line rows, one row left blank
    rows = [
        {"sku": "SHIRT", "amount": "1000.00", "qty": "2", "categories": "Apparel, Sale", "brands": "Acme"},
        {"sku": "", "amount": "", "qty": "", "categories": "", "brands": ""},
        {"sku": "SOCKS", "amount": "234.50", "qty": "", "categories": "", "brands": ""},
    ]
    response = built(staff, promotion, rows)

    # then
    assert verdict(response, "this-verdict") == "It applies: a discount of 185.18 (1 redemption)."
    assert "line 3 SOCKS : 35.18 on 1 unit(s)" in text(response)  # rows numbered as typed, qty 1 by default


def test_every_applied_promotion_is_listed_with_its_redemption_count(staff, org, promotion):
    # given a second stackable promotion: 300 off, applied after the 15% (priority 1)
    PromotionFactory(org=org, type="POS", name="Flat 300", condition=CART_500, action=FLAT_300, is_stackable=True, priority=1)  # fmt: skip

    # when
    response = pasted(staff, promotion)

    # then: 185.18, then 300 off what is left: 485.18 in all
    page = text(response)
    assert "total discount 485.18" in page
    assert re.search(r"Fifteen off 500 CART 185\.18 1 ", page)
    assert re.search(r"Flat 300 CART 300\.00 1 ", page)


# --- Why it did not apply ---------------------------------------------------------------------------


def test_a_condition_not_met_is_said_with_the_condition(staff, promotion):
    # when the cart is worth 400
    response = pasted(
        staff, promotion, {"amount": "400", "cartItems": [{"sku": "A", "amount": "400", "qty": "1"}]}
    )

    # then
    assert verdict(response, "this-verdict") == (
        "It does not apply. The cart does not meet the condition: a cart value of at least 500."
    )
    assert verdict(response, "alone-verdict").startswith(
        "Alone, it would not apply either. The cart does not"
    )


def test_a_promotion_blocked_by_an_exclusive_one_names_the_winner(staff, org, promotion):
    # given an exclusive promotion the cart meets
    PromotionFactory(org=org, type="POS", name="Big exclusive", condition=CART_500, action=FLAT_300, is_stackable=False)  # fmt: skip

    # when
    response = pasted(staff, promotion)

    # then: it does not apply, yet alone it would give its 185.18
    assert verdict(response, "this-verdict") == (
        "It does not apply. An exclusive promotion (Big exclusive) won: an exclusive promotion applies alone."
    )
    assert verdict(response, "alone-verdict").startswith(
        "Alone, on this cart, it would give 185.18 (1 redemption"
    )
    assert "total discount 300.00" in text(response)


def test_a_customer_promotion_the_customer_does_not_hold(staff, org):
    # given a CUSTOMER promotion, a customer without it and one holding it
    promotion = PromotionFactory(
        org=org, type="CUSTOMER", name="Welcome", condition=CART_500, action=FLAT_300
    )
    without = CustomerFactory(org=org)
    holder = CustomerFactory(org=org)
    instance = EarnedPromotionFactory(org=org, customer=holder, promotion=promotion)

    # when
    anonymous = pasted(staff, promotion)
    not_held = pasted(staff, promotion, customer_id=str(without.pk))
    held = pasted(staff, promotion, customer_id=str(holder.pk))

    # then
    assert verdict(anonymous, "this-verdict") == (
        "It does not apply. It is a CUSTOMER promotion: it applies only to a customer who holds it, "
        "and no customer was given."
    )
    assert verdict(not_held, "this-verdict") == (
        "It does not apply. This customer does not hold it: no active, unexpired instance is in their wallet."
    )
    assert verdict(held, "this-verdict") == "It applies: a discount of 300.00 (1 redemption)."
    assert f"wallet instance {instance.pk}" in text(held)


def test_an_inactive_promotion_says_so_and_what_it_would_give_alone(staff, org):
    # given an inactive promotion (left out of the org's live rules)
    promotion = PromotionFactory(
        org=org, type="POS", active=False, condition=CART_500, action=FIFTEEN_PERCENT
    )

    # when
    response = pasted(staff, promotion)

    # then
    assert verdict(response, "this-verdict").startswith("It does not apply. It is not active")
    assert verdict(response, "alone-verdict") == (
        "Alone (setting aside that it is inactive), on this cart, it would give 185.18 "
        "(1 redemption: line 1 SHIRT 150.00, line 2 SOCKS 35.18)."
    )
    assert "No promotion applies to this cart." in text(response)


def test_a_code_promotion_needs_its_code_and_alone_is_tried_as_if_sent(staff, org):
    # given
    promotion = PromotionFactory(org=org, type="CODE", condition=CART_500, action=FIFTEEN_PERCENT)

    # when
    response = pasted(staff, promotion)

    # then
    assert verdict(response, "this-verdict").startswith("It does not apply. It is a code promotion")
    assert verdict(response, "alone-verdict").startswith(
        "Alone (setting aside that it needs its code), on this cart, it would give 185.18"
    )


def test_a_promotion_not_started_applies_at_a_chosen_moment_in_the_org_zone(staff, org):
    # given a promotion starting on 2030-01-10 at 09:00 in Kolkata (03:30 UTC)
    start = dt.datetime(2030, 1, 10, 3, 30, tzinfo=dt.UTC)
    promotion = PromotionFactory(
        org=org, type="POS", condition=CART_500, action=FIFTEEN_PERCENT,
        start_date=start, end_date=start + dt.timedelta(days=30),
    )  # fmt: skip

    # when: now, then 08:59 and 09:00 Kolkata time that day
    now = pasted(staff, promotion)
    before = pasted(staff, promotion, moment="2030-01-10 08:59")
    at_start = pasted(staff, promotion, moment="2030-01-10 09:00")

    # then
    assert verdict(now, "this-verdict") == (
        "It does not apply. It has not started yet: it starts on 2030-01-10 09:00 (Asia/Kolkata)."
    )
    assert verdict(now, "alone-verdict").startswith(
        "Alone (setting aside that it has not started yet), on this"
    )
    assert verdict(before, "this-verdict").startswith("It does not apply. It has not started yet")
    assert verdict(at_start, "this-verdict") == "It applies: a discount of 185.18 (1 redemption)."
    assert "Evaluated at 2030-01-10 09:00 (Asia/Kolkata)" in text(at_start)


def test_a_store_list_needs_a_till_of_those_stores(staff, org):
    # given a promotion for one store, a till there and a till elsewhere
    store = StoreFactory(org=org)
    there = TillFactory(org=org, store=store)
    elsewhere = TillFactory(org=org)
    promotion = PromotionFactory(
        org=org, type="POS", condition=CART_500, action=FLAT_300,
        store_criteria={"type": "STORE", "operator": "IN", "values": [store.external_id]},
    )  # fmt: skip

    # when
    no_till = pasted(staff, promotion)
    other = pasted(staff, promotion, till=str(elsewhere.pk))
    right = pasted(staff, promotion, till=str(there.pk))

    # then
    assert verdict(no_till, "this-verdict").startswith(
        "It does not apply. It applies only in some stores, and no till"
    )
    assert verdict(other, "this-verdict") == (
        "It does not apply. The till's store is not among the stores it applies in."
    )
    assert verdict(right, "this-verdict") == "It applies: a discount of 300.00 (1 redemption)."


@pytest.mark.parametrize("reason", sorted(MESSAGES))
def test_every_reason_of_the_engine_has_a_sentence(org, reason):
    # given the engine's reasons, each as a skip of a stored promotion
    promotion = PromotionFactory(org=org, type="POS", condition=CART_500, action=FLAT_300)
    from promotions.rules import promotion_compile

    rule = promotion_compile(promotion)

    # when
    sentence = skip_sentence(
        Skipped(promotion.pk, reason, MESSAGES[reason]),
        promotion=promotion,
        rule=rule,
        applied=(),
        customer_id=None,
        store=None,
    )

    # then: a sentence of ours, not the engine's message
    assert reason in REASONS
    assert sentence and sentence != MESSAGES[reason]


# --- Bad input, isolation, permissions, nothing recorded --------------------------------------------


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"cart": "{not json"}, "Enter a valid JSON."),
        (
            {"cart": json.dumps({"amount": "1", "cartItems": [{"sku": "A", "amount": "-5", "qty": "1"}]})},
            "cartItems.0.amount: Ensure this value is greater than or equal to 0.",
        ),
        ({"cart": json.dumps({"amount": "1"})}, "cartItems: This field is required."),
        ({"cart": json.dumps([1, 2])}, "Invalid data"),
        (
            {"customer_id": "999999999", "cart": json.dumps(CART)},
            "No customer of this organization has this id.",
        ),
        ({"customer_id": "-3", "cart": json.dumps(CART)}, "Ensure this value is greater than or equal to 1."),
        ({"moment": "tomorrow", "cart": json.dumps(CART)}, "Enter a valid date/time."),
        ({}, "Paste a cart, or fill at least one line"),
    ],
)
def test_bad_input_is_a_form_error(staff, promotion, fields, message):
    # when
    response = staff.post(url(promotion), fields)

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "errorlist" in html or "errornote" in html
    assert message in text(response)
    assert 'id="cart-trial-result"' not in html


def test_a_line_row_with_a_negative_amount_or_no_sku_is_a_form_error(staff, promotion):
    # when
    response = built(staff, promotion, [{"sku": "A", "amount": "-1"}, {"amount": "10"}])

    # then
    page = text(response)
    assert "Ensure this value is greater than or equal to 0." in page
    assert "A line needs its SKU." in page
    assert 'id="cart-trial-result"' not in response.content.decode()


def test_a_customer_of_another_org_is_unknown(staff, promotion, other_org):
    # given
    stranger = CustomerFactory(org=other_org)

    # when
    response = pasted(staff, promotion, customer_id=str(stranger.pk))

    # then
    assert "No customer of this organization has this id." in text(response)


def test_another_orgs_promotion_is_not_found(staff, other_org):
    # given
    theirs = PromotionFactory(org=other_org, type="POS")

    # when / then
    assert staff.get(url(theirs)).status_code == 404
    assert pasted(staff, theirs).status_code == 404


def test_view_permission_suffices_and_none_is_refused(client, org, promotion):
    # given a staff user who may only view promotions
    staff_login(client, org, codenames=["view_promotion"])

    # when / then
    assert pasted(client, promotion).status_code == 200

    # given one who may not
    staff_login(client, org, codenames=["view_customer"])

    # when / then
    assert client.get(url(promotion)).status_code == 403


def test_nothing_is_recorded(staff, org, promotion):
    # given a promotion with a limit and its counter
    limited = PromotionFactory(org=org, type="POS", condition=CART_500, action=FLAT_300, is_stackable=True)
    from tests.factories import PromotionRestrictionFactory, RedemptionCounterFactory

    counter = RedemptionCounterFactory(restriction=PromotionRestrictionFactory(promotion=limited))
    evaluations = Evaluation.objects.count()

    # when
    response = pasted(staff, promotion)

    # then: both applied, and no evaluation stored, no limit taken
    assert "total discount 485.18" in text(response)
    assert Evaluation.objects.count() == evaluations
    counter.refresh_from_db()
    assert counter.used == 0
    assert RedemptionCounter.objects.count() == 1


def test_the_moment_defaults_to_now(staff, promotion):
    # when
    before = timezone.now()
    response = pasted(staff, promotion)

    # then: the moment shown is now, in the org's zone (minutes: a test may straddle one)
    shown = re.search(r"Evaluated at (\S+ \S+) \(Asia/Kolkata\)", text(response)).group(1)
    local = dt.datetime.strptime(shown, "%Y-%m-%d %H:%M")
    kolkata = before.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).replace(tzinfo=None)
    assert abs(local - kolkata) < dt.timedelta(minutes=2)


@pytest.mark.parametrize("moment", ["0001-01-01 00:00", "9999-12-31 23:59"])
def test_a_moment_at_the_ends_of_the_calendar_is_a_form_error(staff, promotion, moment):
    # when
    response = pasted(staff, promotion, moment=moment)

    # then
    assert "Choose a moment between the years 1970 and 2999." in text(response)
    assert 'id="cart-trial-result"' not in response.content.decode()


def test_a_stored_promotion_the_engine_cannot_evaluate_is_a_form_error(staff, org):
    # given a row stored before the engine refused its condition
    promotion = PromotionFactory(org=org, type="POS", condition={"type": "UNKNOWN_KIND"}, action=FLAT_300)

    # when
    response = pasted(staff, promotion)

    # then
    assert response.status_code == 200
    assert "The engine cannot evaluate this promotion" in text(response)
