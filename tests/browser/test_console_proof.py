"""The marketer's console, proved end to end in a real browser (Debian's Chromium, driven by Playwright)
through the admin's pages alone: a marketer builds ten promotions with the builder, covering every kind
of condition and every kind of reward it offers, tries each on a cart in "Try it on a cart" and reads the
discount computed by hand; issues the Customer one to three customers through the issue screen; the
till's API client redeems it twice; the promotion's performance page shows what was done. Every page
passed is held to tests/browser/checks.py (no overflow at 1280 px, no serious axe-core violation).

Each condition x reward pair the builder allows (the engine's variants of each, 91 pairs) is built in
the browser too, by tests/browser/test_builder_pairs.py, and built, stored and evaluated without a
browser by
tests/promotions/test_promotion_builder.py::test_each_condition_and_action_pair_is_built_stored_as_the_api_stores_it_and_evaluated."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions import builder
from promotions.models import Promotion
from promotions.rules import org_rules_forget
from promotions_site.timefmt import to_epoch_ms
from tests.browser.checks import WIDTH, login, page_problems
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, CustomerFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-strong-pass-123"
# The cart every promotion is tried on: two shirts for 60 together and a hat for 20 (80 in all) ...
LINES = [("SHIRT", "60", "2"), ("HAT", "20", "1")]
# ... and, for the tender and payment mode conditions, the same cart pasted with how it is paid.
PAID_CART = {
    "amount": "80",
    "cartItems": [{"sku": sku, "amount": amount, "qty": qty} for sku, amount, qty in LINES],
    "cartTenders": [{"identifier": "CreditCard", "amount": "50"}, {"identifier": "Cash", "amount": "30"}],
}


@dataclass
class Built:
    """One promotion as a marketer builds it: the builder's fields in the order a marketer sets them
    (`#id` -> a value: a select's option, else typed), and the discount worked out by hand for the
    trial cart, with its redemption count (groups, for a per-unit reward)."""

    name: str
    steps: list[tuple[str, str]]
    discount: str
    redemptions: int = 1
    paid: bool = False  # tried on PAID_CART, pasted
    type: str = "POS"
    condition: str = ""
    reward: str = field(default="", init=False)

    def __post_init__(self):
        self.condition = dict(self.steps)["cond_type"]
        self.reward = dict(self.steps)["reward"]


SHIRT = [("cg0_c0_entity", "SKU"), ("cg0_c0_values", "SHIRT")]
SHIRT_AND_HAT = [*SHIRT, ("cg1_c0_entity", "SKU"), ("cg1_c0_values", "HAT")]
HAT_TARGET = [
    ("target", "OTHER"),
    ("target_type", "PRODUCT"),
    ("tg0_c0_entity", "SKU"),
    ("tg0_c0_values", "HAT"),
]
CARD = [("pay_operator", "IN"), ("pay_values", "CreditCard")]
PROMOTIONS = [
    # 10% of 80
    Built("Birthday: 10% off carts of 50", type="CUSTOMER", discount="8.00", steps=[
        ("cond_type", "CART"), ("cart_kpi", "SUBTOTAL"), ("cart_operator", "GREATER_THAN_OR_EQUAL"),
        ("cart_value", "50"), ("reward", "CART_BASED:PERCENTAGE"), ("act_value", "10")]),
    # 5 off the cart, paid by card
    Built("Card payers: 5 off", paid=True, discount="5.00", steps=[
        ("cond_type", "PAYMENT_MODE"), *CARD, ("reward", "CART_BASED:ABSOLUTE"), ("act_value", "5")]),
    # 20% of the two shirts' 60
    Built("Two shirts: 20% off them", discount="12.00", steps=[
        ("cond_type", "PRODUCT"), *SHIRT, ("cg0_kpi", "QUANTITY"), ("cg0_operator", "GREATER_THAN_OR_EQUAL"),
        ("cg0_value", "2"), ("reward", "PRODUCT_BASED:PERCENTAGE"), ("act_value", "20"), ("target", "CONDITION")]),
    # 3 off the shirts as a whole
    Built("Shirts paid by card: 3 off", paid=True, discount="3.00", steps=[
        ("cond_type", "PAYMENT_MODE_SCOPE"), *CARD, *SHIRT, ("reward", "PRODUCT_BASED:ABSOLUTE"),
        ("act_value", "3"), ("target", "CONDITION")]),
    # the hat (20) for 15
    Built("Two products: the hat for 15", discount="5.00", steps=[
        ("cond_type", "CART"), ("cart_kpi", "ITEMCOUNT"), ("cart_operator", "GREATER_THAN"), ("cart_value", "1"),
        ("reward", "PRODUCT_BASED:FIXED_PRICE"), ("act_value", "15"), *HAT_TARGET]),
    # one hat free: its 20
    Built("Shirt buyers: a free hat", discount="20.00", steps=[
        ("cond_type", "PRODUCT"), *SHIRT, ("reward", "FREE_PRODUCT"), *HAT_TARGET]),
    # shirts and hat (80) for 60
    Built("Shirts and a hat for 60", discount="20.00", steps=[
        ("cond_type", "COMBO_PRODUCT"), *SHIRT_AND_HAT, ("reward", "FIXED_PRICE"), ("act_value", "60"),
        ("target", "CONDITION")]),
    # 3 units, a group each, 2 off each group
    Built("Card bundle: 2 off every unit", paid=True, discount="6.00", redemptions=3, steps=[
        ("cond_type", "PAYMENT_MODE_COMBO_PRODUCT"), *CARD, *SHIRT_AND_HAT, ("reward", "PER_UNIT"),
        ("pu_divider", "1"), ("pu_kpi", "QUANTITY"), ("pu_count", "CONDITION"),
        ("pu_reward", "PRODUCT_BASED:ABSOLUTE"), ("act_value", "2"), ("target", "CONDITION")]),
    # 10% of the 50 paid by card
    Built("10% of what is paid by card", paid=True, discount="5.00", steps=[
        ("cond_type", "TENDER"), ("tm0_type", "CARD"), ("tm0_ids", "CreditCard"), ("tender_nested", "NONE"),
        ("reward", "TENDER:PERCENTAGE"), ("act_value", "10")]),
    # 7 off the 30 paid in cash
    Built("Cash on carts of 50: 7 off", paid=True, discount="7.00", steps=[
        ("cond_type", "TENDER"), ("tm0_type", "CASH"), ("tm0_ids", "Cash"), ("tender_nested", "CART"),
        ("cart_kpi", "SUBTOTAL"), ("cart_operator", "GREATER_THAN_OR_EQUAL"), ("cart_value", "50"),
        ("reward", "TENDER:ABSOLUTE"), ("act_value", "7")]),
]  # fmt: skip
ALONE = re.compile(r"it would give ([\d,.]+) \((\d+) redemptions?")


def _build(page, base_url: str, built: Built, start: dt.datetime, *, another: bool = False) -> str:
    """Fills the add page as a marketer does and saves; returns the new promotion's page's address. With
    `another`, the page is the add page already, and the marketer saves with "Save and add another":
    the answer is the next blank add page (its address returned), one page load fewer per promotion."""
    if not another:
        page.goto(base_url + reverse("admin:promotions_promotion_add"))
    page.fill("#id_name", built.name)
    page.select_option("#id_type", built.type)
    # Only the Customer promotion goes live: the others are tried alone, and none takes from another.
    page.set_checked("#id_active", built.type == "CUSTOMER")
    page.fill("#id_start_date_0", start.strftime("%Y-%m-%d"))
    page.fill("#id_start_date_1", "00:00:00")
    page.fill("#id_end_date_0", (start + dt.timedelta(days=30)).strftime("%Y-%m-%d"))
    page.fill("#id_end_date_1", "00:00:00")
    for name, value in built.steps:
        # One round trip per step: a select is picked, anything else typed (the builder shows each row's
        # controls once the row before it is picked, so the tag is read when the step comes).
        selector = f"#id_{name}"
        if page.eval_on_selector(selector, "el => el.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    with page.expect_navigation():
        page.click("input[name=_addanother]" if another else "input[name=_continue]")
    page.wait_for_selector(".messagelist, .errornote")
    # The builder's own list of what is missing (#builder-problems) is not the save's: on the blank
    # add page that "Save and add another" answers with, it lists the values the next promotion needs.
    errors = page.locator(".errornote, .errorlist:not(#builder-problems) li").all_inner_texts()
    assert errors == [], (built.name, errors)
    assert f"“{built.name} (" in page.locator(".messagelist").inner_text()  # saved: the admin says so
    return page.url


def _try(page, promotion_url: str, built: Built, customer_id: int | None = None) -> str:
    """Opens the promotion's "Try it on a cart" and tries the trial cart; returns the panel's address."""
    page.goto(promotion_url)
    page.click("text=Try it on a cart")
    page.wait_for_selector("#try_cart_form")
    if built.paid:
        page.fill("#id_cart", json.dumps(PAID_CART))
    else:
        for row, (sku, amount, qty) in enumerate(LINES):
            page.fill(f"input[name=lines-{row}-sku]", sku)
            page.fill(f"input[name=lines-{row}-amount]", amount)
            page.fill(f"input[name=lines-{row}-qty]", qty)
    if customer_id is not None:
        page.fill("#id_customer_id", str(customer_id))
    page.click("input[name=try]")
    page.wait_for_selector("#alone-verdict")
    return page.url


def _redeem(api, base_url: str, headers: dict, promotion_id: str, customer_id: int, number: int, amount: str,
            discount: str):  # fmt: skip
    return api.post(
        f"{base_url}/api_gateway/v1/promotions/redemptions",
        headers=headers,
        data={
            "customerId": str(customer_id),
            "transactionIdentifier": f"PROOF-{number}",
            "transactionNumber": f"BILL-{number}",
            "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(minutes=5)),
            "amount": amount,
            "redemptions": [
                {"promotionId": promotion_id, "redemptionCount": 1, "discount": discount,
                 "discountAppliedOnQuantity": 1, "promotionAppliedOnQuantity": 1}
            ],
        },
    )  # fmt: skip


def test_a_marketer_builds_tries_issues_and_reads_the_numbers_of_every_kind_of_promotion(server, page):
    # given an org (in India's zone, money to 2 places), its customers, a till's API client, a marketer
    org_rules_forget()
    org = OrganizationFactory(name="Proof Retail", timezone="Asia/Kolkata")
    customers = [CustomerFactory(org=org) for _ in range(3)]
    till = ApiClientFactory(org=org)
    headers = {
        "Authorization": basic_auth(till.username, till.plain_secret),
        "Content-Type": "application/json",
    }
    marketer = UserFactory(org=org, username="proof", is_staff=True)
    marketer.set_password(PASSWORD)
    marketer.save()
    marketer.user_permissions.set(Permission.objects.all())
    # the promotions began at today's midnight in the org's zone, so they are live now
    start = timezone.localtime(timezone.now(), timezone=ZoneInfo(org.timezone))
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, server.url, "proof", PASSWORD)
    problems = {}

    # when the marketer builds each promotion on the add page, then tries it alone on the trial cart
    # (the Customer one once it is issued)
    urls = {}
    for built in PROMOTIONS:
        urls[built.name] = _build(page, server.url, built, start)
        if built.reward == "PER_UNIT":  # the most involved rule: its page, read back, for the guide
            page.click(".builder-json-box summary")  # the JSON preview open, checked too
            problems["builder"] = page_problems(page, "console-builder-per-unit", "#promotion-builder")
        if built.type == "CUSTOMER":
            continue  # it applies only to a customer holding it: tried once issued, below
        _try(page, urls[built.name], built)
        alone = ALONE.search(page.inner_text("#alone-verdict"))
        # then the engine gives what was worked out by hand
        assert alone is not None, (built.name, page.inner_text("#cart-trial-result"))
        assert (alone[1], int(alone[2])) == (built.discount, built.redemptions), built.name

    # and every kind of condition and every kind of reward the builder offers was built, stored as picked
    stored = {p.name: p for p in Promotion.objects.filter(org=org)}
    assert {built.condition for built in PROMOTIONS} == {kind for kind, _ in builder.CONDITION_KINDS}
    assert {built.reward for built in PROMOTIONS} == {kind for kind, _ in builder.REWARDS}
    for built in PROMOTIONS:
        action = stored[built.name].action
        kind = action["type"] + (
            f":{action[next(k for k in action if k != 'type')]['type']}"
            if action["type"] in ("CART_BASED", "PRODUCT_BASED", "TENDER")
            else ""
        )
        assert (stored[built.name].condition["type"], kind) == (built.condition, built.reward)

    # when the marketer issues the Customer promotion to three customers from its page
    birthday = PROMOTIONS[0]
    page.goto(urls[birthday.name])
    page.click("text=Issue to customers")
    page.fill("#id_identifiers", "\n".join(str(c.pk) for c in customers))
    problems["issue"] = page_problems(page)
    page.click("input[name=_preview]")
    confirm = page.locator("input[type=submit][value^='Yes, issue to']")
    confirm.wait_for()
    problems["issue preview"] = page_problems(page, "console-issue-preview")
    confirm.click()
    page.wait_for_selector("#bulk-job-progress[data-status=DONE]", timeout=60_000)
    problems["issue job"] = page_problems(page)

    # then the first customer's cart gets it in the trial, the only live promotion: 10% of 80
    _try(page, urls[birthday.name], birthday, customer_id=customers[0].pk)
    assert page.inner_text("#this-verdict") == "It applies: a discount of 8.00 (1 redemption)."
    assert page.inner_text("#total-discount") == "8.00"
    problems["trial"] = page_problems(page, "console-try-cart-applies", "#cart-trial-result")

    # when the till redeems it for two of them: 8.00 on the 80 cart, 15.00 on a cart of 150
    promotion_id = urls[birthday.name].rstrip("/").split("/")[-2]
    for number, (customer, amount, discount) in enumerate(
        [(customers[0], "80", "8"), (customers[1], "150", "15")], start=1
    ):
        answer = _redeem(
            page.request, server.url, headers, promotion_id, customer.pk, number, amount, discount
        )
        assert answer.status == 200, answer.text()

    # then its performance page says 3 issued, 2 redeemed (2 of 3 given: 66.7%), 23.00 given
    page.goto(urls[birthday.name])
    page.click("#promotion-performance")
    page.wait_for_selector("#performance-totals")
    heads = page.locator("#performance-totals thead th").all_text_contents()
    cells = page.locator("#performance-totals tbody td").all_inner_texts()
    assert dict(zip(heads, cells, strict=True)) == {
        "Issued": "3", "Earned": "0", "Redeemed": "2", "Reversed": "0", "Discount given": "23.00",
        "Redemption rate": "66.7%",
    }  # fmt: skip
    problems["performance"] = page_problems(page, "console-performance-proof", "#content")

    # and no page passed overflowed at 1280 px or failed axe-core
    assert {name: found for name, found in problems.items() if found} == {}
    org_rules_forget()
