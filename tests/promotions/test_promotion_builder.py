"""The promotion builder (promotions/builder.py, the admin's promotion form): every condition and action
type the engine evaluates is built through the form's POST alone, stored exactly as the API stores the
same JSON, and evaluated by the engine; Capillary's 14 published objects load into the builder and
save back unchanged; the summary sentence reads each type; invalid combinations are form errors."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions import builder
from promotions.engine import RuleSet, evaluate
from promotions.models import Promotion, PromotionRestriction
from promotions.rules import promotion_compile
from promotions.serializers import PromotionOutputSerializer
from redemptions.models import Evaluation
from tests import factories
from tests.promotions.engine.builders import cart, context, line
from tests.promotions.test_capillary_promotion_objects import OBJECTS, copied
from tests.promotions.test_promotion_admin import ADD_URL, form_data

API_URL = "/api_gateway/v1/promotions"
PREVIEW_URL = reverse("admin:promotions_promotion_builder_preview")
VALUES_URL = reverse("admin:promotions_promotion_builder_values")
_names = itertools.count(1)


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    client.force_login(user)
    return client


# --- Conditions and actions as a marketer fills them in (no JSON), with the JSON they mean ------------

SHIRT = {"cg0_c0_entity": "SKU", "cg0_c0_operator": "IN", "cg0_c0_values": "SHIRT"}
SHIRT_AND_HAT = {**SHIRT, "cg1_c0_entity": "SKU", "cg1_c0_operator": "IN", "cg1_c0_values": "HAT"}
CARD = {"tm0_type": "CARD", "tm0_ids": "CreditCard"}


def sku(*values, kpi="NONE", operator="NONE", value="0.000000"):
    return {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": list(values)}], "kpi": kpi, "operator": operator, "value": value}  # fmt: skip


CONDITIONS = {
    "cart subtotal": (
        {"cond_type": "CART", "cart_kpi": "SUBTOTAL", "cart_operator": "GREATER_THAN_OR_EQUAL", "cart_value": "50"},
        {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": "50.000000"}},
    ),
    "cart item count": (
        {"cond_type": "CART", "cart_kpi": "ITEMCOUNT", "cart_operator": "GREATER_THAN", "cart_value": "1"},
        {"type": "CART", "cartCondition": {"kpi": "ITEMCOUNT", "operator": "GREATER_THAN", "value": "1.000000"}},
    ),
    "product sku quantity": (
        {"cond_type": "PRODUCT", **SHIRT, "cg0_kpi": "QUANTITY", "cg0_operator": "GREATER_THAN_OR_EQUAL", "cg0_value": "2"},
        {"type": "PRODUCT", "productCondition": sku("SHIRT", kpi="QUANTITY", operator="GREATER_THAN_OR_EQUAL", value="2.000000")},
    ),
    "product category amount": (
        {"cond_type": "PRODUCT", "cg0_c0_entity": "CATEGORY", "cg0_c0_operator": "IN", "cg0_c0_values": "Tops\nShirts",
         "cg0_kpi": "AMOUNT", "cg0_operator": "GREATER_THAN", "cg0_value": "50"},
        {"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "CATEGORY", "operator": "IN", "values": ["Tops", "Shirts"]}],
                                                 "kpi": "AMOUNT", "operator": "GREATER_THAN", "value": "50.000000"}},
    ),
    "product brand not in": (
        {"cond_type": "PRODUCT", "cg0_c0_entity": "BRAND", "cg0_c0_operator": "NOT_IN", "cg0_c0_values": "Generic", "cg0_kpi": "NONE"},
        {"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "BRAND", "operator": "NOT_IN", "values": ["Generic"]}],
                                                 "kpi": "NONE", "operator": "NONE", "value": "0.000000"}},
    ),
    "combo": (
        {"cond_type": "COMBO_PRODUCT", **SHIRT_AND_HAT},
        {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [sku("SHIRT"), sku("HAT")]}},
    ),
    "tender": (
        {"cond_type": "TENDER", **CARD, "tender_nested": "CART", "cart_kpi": "SUBTOTAL", "cart_operator": "GREATER_THAN_OR_EQUAL", "cart_value": "50"},
        {"type": "TENDER", "tenderCondition": {"tenderModes": [{"type": "CARD", "identifiers": ["CreditCard"]}],
         "condition": {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": "50.000000"}}}},
    ),
    "payment mode": (
        {"cond_type": "PAYMENT_MODE", "pay_operator": "IN", "pay_values": "CreditCard"},
        {"type": "PAYMENT_MODE", "paymentModeCondition": {"operator": "IN", "values": ["CreditCard"]}},
    ),
    "payment mode scope": (
        {"cond_type": "PAYMENT_MODE_SCOPE", "pay_operator": "IN", "pay_values": "CreditCard", **SHIRT},
        {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": {"operator": "IN", "values": ["CreditCard"]}, "productCondition": sku("SHIRT")},
    ),
    "payment mode combo": (
        {"cond_type": "PAYMENT_MODE_COMBO_PRODUCT", "pay_operator": "IN", "pay_values": "CreditCard", **SHIRT_AND_HAT},
        {"type": "PAYMENT_MODE_COMBO_PRODUCT", "paymentModeCondition": {"operator": "IN", "values": ["CreditCard"]},
         "comboProductCondition": {"productConditions": [sku("SHIRT"), sku("HAT")]}},
    ),
}  # fmt: skip

HAT_TARGET = {"target": "OTHER", "target_type": "PRODUCT", "tg0_c0_entity": "SKU", "tg0_c0_operator": "IN", "tg0_c0_values": "HAT"}  # fmt: skip
HAT_PRODUCT = {"type": "PRODUCT", "productCondition": sku("HAT")}
ACTIONS = {
    "% off the cart": (
        {"reward": "CART_BASED:PERCENTAGE", "act_value": "10"},
        {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": "10.000000"}},
    ),
    "amount off the cart": (
        {"reward": "CART_BASED:ABSOLUTE", "act_value": "5"},
        {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "5.000000"}},
    ),
    "% off the qualifying items": (
        {"reward": "PRODUCT_BASED:PERCENTAGE", "act_value": "20", "target": "CONDITION"},
        {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": "20.000000", "includeItemsFromConditionSet": True}},
    ),
    "amount off other items": (
        {"reward": "PRODUCT_BASED:ABSOLUTE", "act_value": "3", **HAT_TARGET},
        {"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": "3.000000",
         "includeItemsFromConditionSet": False, "productBasedCondition": HAT_PRODUCT}},
    ),
    "product-based fixed price": (
        {"reward": "PRODUCT_BASED:FIXED_PRICE", "act_value": "15", **HAT_TARGET},
        {"type": "PRODUCT_BASED", "productBasedAction": {"type": "FIXED_PRICE", "value": "15.000000",
         "includeItemsFromConditionSet": False, "productBasedCondition": HAT_PRODUCT}},
    ),
    "free item": (
        {"reward": "FREE_PRODUCT", "free_qty": "1", **HAT_TARGET},
        {"type": "FREE_PRODUCT", "freeProductAction": {"quantity": "1.000000", "includeItemsFromConditionSet": False,
                                                      "productBasedCondition": HAT_PRODUCT}},
    ),
    "fixed bundle price": (
        {"reward": "FIXED_PRICE", "act_value": "60", "target": "OTHER", "target_type": "COMBO_PRODUCT",
         "tg0_c0_values": "SHIRT", "tg1_c0_values": "HAT"},
        {"type": "FIXED_PRICE", "fixedPriceAction": {"value": "60.000000", "includeItemsFromConditionSet": False,
         "productBasedCondition": {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [sku("SHIRT"), sku("HAT")]}}}},
    ),
    "per every unit": (
        {"reward": "PER_UNIT", "pu_kpi": "QUANTITY", "pu_divider": "1", "pu_count": "TARGET",
         "pu_reward": "PRODUCT_BASED:ABSOLUTE", "act_value": "2", **HAT_TARGET},
        {"type": "PER_UNIT", "perUnitAction": {"perUnitKPI": "QUANTITY", "perUnitDivider": "1.000000", "includeItemsFromConditionSet": False,
         "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": "2.000000",
                          "includeItemsFromConditionSet": False, "productBasedCondition": HAT_PRODUCT}}}},
    ),
    "per every unit, from the condition set": (
        {"reward": "PER_UNIT", "pu_kpi": "QUANTITY", "pu_divider": "1", "pu_count": "CONDITION",
         "pu_reward": "PRODUCT_BASED:PERCENTAGE", "act_value": "10", "target": "CONDITION"},
        {"type": "PER_UNIT", "perUnitAction": {"perUnitKPI": "QUANTITY", "perUnitDivider": "1.000000", "includeItemsFromConditionSet": True,
         "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": "10.000000",
                          "includeItemsFromConditionSet": True}}}},
    ),
    "tender": (
        {"reward": "TENDER:PERCENTAGE", "act_value": "10"},
        {"type": "TENDER", "tenderBasedAction": {"type": "PERCENTAGE", "value": "10.000000"}},
    ),
}  # fmt: skip


def supported(condition: str, action: str) -> bool:
    """The pairs the engine takes: a tender reward only with a tender condition."""
    return action != "tender" or condition == "tender"


PAIRS = [
    pytest.param(c, a, id=f"{c} x {a}") for c in CONDITIONS for a in ACTIONS if supported(c, a)
]  # fmt: skip

# Every condition above holds on this cart, and every reward gives something.
CART = cart(
    line("SHIRT", "60", 2, categories=["Tops"], brands=["Acme"]),
    line("HAT", "20", 1, categories=["Hats"], brands=["Acme"]),
    tenders={"CreditCard": "80"},
)


def builder_post(**fields) -> dict:
    """The admin form's POST: the promotion's fields and the builder's, no JSON (limits: none)."""
    data = form_data(name=f"Built {next(_names)}", type="POS", **fields)
    data.pop("cart_value"), data.pop("cond_type"), data.pop("reward"), data.pop("act_value")
    data.pop("cart_kpi"), data.pop("cart_operator")
    data.update({"restrictions-TOTAL_FORMS": 0, **fields})
    return data


@pytest.mark.parametrize(("condition", "action"), PAIRS)
def test_each_condition_and_action_pair_is_built_stored_as_the_api_stores_it_and_evaluated(
    staff_client, api, org, condition, action
):
    # given: the builder's fields and the JSON they mean
    (condition_fields, condition_json), (action_fields, action_json) = CONDITIONS[condition], ACTIONS[action]

    # when: the marketer saves the form, and a client creates the same JSON through the API
    response = staff_client.post(ADD_URL, builder_post(**condition_fields, **action_fields))
    body = copied(0) | {
        "name": f"API {condition} {action}"[:50],
        "type": "POS",
        "condition": condition_json,
        "action": action_json,
    }
    (
        body.pop("customFieldValues"),
        body.pop("earnLimitedToSpecificAudience"),
        body.pop("maxIssuancePerCustomer"),
    )
    created = api.post(API_URL, body, format="json")

    # then: both stored the same condition and action
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert created.status_code == 200, created.content
    built = Promotion.objects.get(org=org, name__startswith="Built")
    via_api = Promotion.objects.get(pk=created.json()["data"]["id"])
    assert (built.condition, built.action) == (via_api.condition, via_api.action)
    assert (built.condition, built.action) == (condition_json, action_json)

    # and the engine applies it to a cart where it holds
    rule = promotion_compile(built)
    result = evaluate(CART, RuleSet([rule]), context(now=built.start_date + dt.timedelta(hours=1)))
    assert [applied.promotion_id for applied in result.applied] == [built.pk], result.skipped
    assert result.applied[0].discount > 0


@pytest.mark.parametrize("index", range(len(OBJECTS)), ids=[obj["name"] for obj in OBJECTS])
def test_each_published_object_loads_into_the_builder_and_saves_back_unchanged(staff_client, api, org, index):
    # given: Capillary's object, created through the API
    created = api.post(API_URL, copied(index), format="json").json()["data"]
    before = api.get(f"{API_URL}/{created['id']}").json()["data"]
    url = reverse("admin:promotions_promotion_change", args=[created["id"]])

    # when: its page is opened and submitted as the browser would, nothing changed
    page = staff_client.get(url)
    assert page.status_code == 200
    fields = form_fields(page.content.decode())
    saved = staff_client.post(url, fields)

    # then: the same promotion, as the API reads it
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    after = api.get(f"{API_URL}/{created['id']}").json()["data"]
    assert {k: v for k, v in after.items() if not k.startswith("lastUpdated")} == {
        k: v for k, v in before.items() if not k.startswith("lastUpdated")
    }


class FormFields(HTMLParser):
    """The fields a browser submits for the page's change form (inputs, checked boxes, selects with their
    selected option or the first, textareas)."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.in_form = False
        self.select: str | None = None
        self.select_options: list[tuple[str, bool, bool]] = []
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "promotion_form":
            self.in_form = True
        if not self.in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name and "disabled" not in attrs:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields.append((name, attrs.get("value", "on")))
            elif kind not in ("submit", "button", "file", "search"):
                self.fields.append((name, attrs.get("value", "")))
        elif tag == "select" and name:
            self.select, self.select_options = name, []
        elif tag == "option" and self.select is not None:
            self.select_options.append((attrs.get("value", ""), "selected" in attrs, "disabled" in attrs))
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_data(self, data):
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.in_form = False
        elif tag == "select" and self.select is not None:
            chosen = [value for value, selected, _ in self.select_options if selected]
            if not chosen and self.select_options:
                chosen = [self.select_options[0][0]]
            self.fields.extend((self.select, value) for value in chosen)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = self.text[1:] if self.text.startswith("\n") else self.text  # as browsers read it
            self.fields.append((self.textarea, text))
            self.textarea = None


def form_fields(html: str) -> dict:
    parser = FormFields()
    parser.feed(html)
    data: dict = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    return {name: values if len(values) > 1 else values[0] for name, values in data.items()}


# --- The sentence --------------------------------------------------------------------------------------

SENTENCES = {
    ("cart subtotal", "% off the cart"): "10% off the whole cart when the subtotal is at least 50.00.",
    ("cart item count", "amount off the cart"): "5.00 off the whole cart when the cart has more than 1 different product.",
    ("product sku quantity", "% off the qualifying items"): "20% off the qualifying items when the cart has at least 2 units of SKU SHIRT.",
    ("product category amount", "amount off other items"): "3.00 off SKU HAT when the cart has more than 50.00 worth of category Tops or Shirts.",
    ("product brand not in", "free item"): "1 free unit of SKU HAT when the cart has brand other than Generic.",
    ("combo", "fixed bundle price"): "The bundle of SKU SHIRT and SKU HAT for 60.00 together when the cart has the bundle of SKU SHIRT and SKU HAT.",
    ("payment mode", "product-based fixed price"): "SKU HAT for 15.00 together when paid with CreditCard.",
    ("payment mode scope", "per every unit"): "For every 1 unit of the reward's items: 2.00 off SKU HAT when paid with CreditCard and the cart has SKU SHIRT.",
    ("payment mode combo", "per every unit, from the condition set"): "For every 1 unit of the qualifying items: 10% off the qualifying items when paid with CreditCard and the cart has the bundle of SKU SHIRT and SKU HAT.",
    ("tender", "tender"): "10% off what is paid with that tender when paid with CreditCard and the subtotal is at least 50.00.",
}  # fmt: skip


@pytest.mark.parametrize(("condition", "action"), list(SENTENCES), ids=[f"{c} x {a}" for c, a in SENTENCES])
def test_the_summary_reads_each_type(condition, action):
    assert builder.summary(CONDITIONS[condition][1], ACTIONS[action][1]) == SENTENCES[condition, action]


def test_the_summary_of_the_example_in_words():
    condition, action = builder.compose(
        {
            "cond_type": "CART",
            "cart_kpi": "SUBTOTAL",
            "cart_value": "1000",
            "reward": "CART_BASED:PERCENTAGE",
            "act_value": "10",
        }
    )
    assert (
        builder.summary(condition, action) == "10% off the whole cart when the subtotal is at least 1,000.00."
    )


def test_every_condition_and_action_summary_is_a_sentence():
    for (_, condition), (_, action) in itertools.product(CONDITIONS.values(), ACTIONS.values()):
        sentence = builder.summary(condition, action)
        assert sentence.endswith(".") and "None" not in sentence and "{" not in sentence, sentence


# --- Invalid combinations: form errors in words, nothing stored -----------------------------------------

INVALID = {
    "tender reward without a tender condition": (
        {**CONDITIONS["cart subtotal"][0], "reward": "TENDER:PERCENTAGE", "act_value": "10"},
        "needs the condition “Pay with a tender”",
    ),
    "fixed price on the whole cart": (
        {**CONDITIONS["cart subtotal"][0], "reward": "FIXED_PRICE", "act_value": "10", "target": "CONDITION"},
        "A fixed price applies to products",
    ),
    "fixed price per amount spent": (
        {
            **CONDITIONS["product sku quantity"][0],
            "reward": "PER_UNIT",
            "pu_kpi": "AMOUNT",
            "pu_divider": "10",
            "pu_reward": "FIXED_PRICE",
            "act_value": "5",
            "target": "CONDITION",
        },
        "A fixed price per group needs groups of units",
    ),
    "percentage above 100": (
        {**CONDITIONS["cart subtotal"][0], "reward": "CART_BASED:PERCENTAGE", "act_value": "150"},
        "A percentage must be at most 100.",
    ),
    "products without values": (
        {"cond_type": "PRODUCT", "reward": "CART_BASED:PERCENTAGE", "act_value": "10"},
        "Pick at least one SKU, category, brand or attribute value for the products.",
    ),
    "a word for a number": (
        {
            **CONDITIONS["cart subtotal"][0],
            "cart_value": "lots",
            "reward": "CART_BASED:PERCENTAGE",
            "act_value": "10",
        },
        "Enter the subtotal as a number, e.g. 1000 or 12.50.",
    ),
    "attribute without a name": (
        {
            "cond_type": "PRODUCT",
            "cg0_c0_entity": "ATTRIBUTE",
            "cg0_c0_values": "red",
            "reward": "CART_BASED:PERCENTAGE",
            "act_value": "10",
        },
        "Name the attribute the values are of.",
    ),
    "weekly window without days": (
        {
            **CONDITIONS["cart subtotal"][0],
            **ACTIONS["% off the cart"][0],
            "time_repeat": "WEEKS",
            "time_start": "18:00",
            "time_hours": "4",
        },
        "Tick at least one day of the week.",
    ),
    "store id not a number": (
        {
            **CONDITIONS["cart subtotal"][0],
            **ACTIONS["% off the cart"][0],
            "store_type": "STORE",
            "store_values": "Main street",
        },
        "“Main street” is not an id",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_combinations_are_form_errors_in_words(staff_client, org, case):
    fields, message = INVALID[case]

    response = staff_client.post(ADD_URL, builder_post(**fields))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Promotion.objects.exists()


# --- Scope, custom fields, the preview and the value search -------------------------------------------


def test_store_time_and_custom_fields_are_built_without_json(staff_client, org):
    fields = {
        **CONDITIONS["cart subtotal"][0], **ACTIONS["% off the cart"][0],
        "store_type": "ZONE", "store_operator": "IN", "store_values": "75175598 West\n12",
        "time_repeat": "WEEKS", "time_start": "18:00", "time_hours": "4", "time_days": ["FRIDAY", "MONDAY"],
        "custom_fields": "Age: 25\nCrazy Deal: TRUE",
    }  # fmt: skip

    response = staff_client.post(ADD_URL, builder_post(**fields))

    assert response.status_code == 302, response.content.decode()[-3000:]
    promotion = Promotion.objects.get(org=org)
    assert promotion.store_criteria == {"type": "ZONE", "values": [75175598, 12], "operator": "IN"}
    assert promotion.time_criteria == {
        "startTime": "18:00", "durationInHours": 4, "repeatFrequency": "WEEKS", "weeklyValues": ["MONDAY", "FRIDAY"],
    }  # fmt: skip
    assert promotion.custom_field_values == {"Age": "25", "Crazy Deal": "TRUE"}


def test_the_preview_answers_the_sentence_the_json_and_the_errors(staff_client, org):
    good = staff_client.post(
        PREVIEW_URL, {**CONDITIONS["combo"][0], **ACTIONS["fixed bundle price"][0]}
    ).json()
    bad = staff_client.post(
        PREVIEW_URL, {**CONDITIONS["combo"][0], "reward": "TENDER:ABSOLUTE", "act_value": "x"}
    ).json()

    assert good["summary"].startswith("The bundle of SKU SHIRT and SKU HAT for 60.00 together")
    assert (good["condition"], good["action"], good["errors"]) == (
        CONDITIONS["combo"][1], ACTIONS["fixed bundle price"][1], []
    )  # fmt: skip
    assert bad["summary"] == "" and bad["action"] is None
    assert [error["field"] for error in bad["errors"]] == ["reward"]


def test_the_value_search_offers_what_the_org_has_seen(staff_client, org, other_org):
    # given: an evaluated cart, a promotion naming a SKU, a zone; and another org's cart
    Evaluation.objects.create(
        org=org, amount=Decimal(10),
        request={"cartItems": [{"sku": "SHIRT-RED", "categoryList": ["Tops"], "brandList": ["Acme"]}],
                 "cartTenders": [{"identifier": "CreditCard"}]},
    )  # fmt: skip
    Evaluation.objects.create(
        org=other_org, amount=Decimal(10), request={"cartItems": [{"sku": "SHIRT-SECRET"}]}
    )
    factories.PromotionFactory(org=org, condition=CONDITIONS["product sku quantity"][1])
    factories.ZoneFactory(org=org, external_id=75175598, name="West")

    def search(entity, q):
        return [v["value"] for v in staff_client.get(VALUES_URL, {"entity": entity, "q": q}).json()["values"]]

    assert search("SKU", "shirt") == ["SHIRT", "SHIRT-RED"]
    assert search("CATEGORY", "to") == ["Tops"]
    assert search("BRAND", "") == ["Acme"]
    assert search("ZONE", "we") == ["75175598"]


def test_the_change_page_shows_the_builder_the_sentence_and_the_stored_json(staff_client, org):
    promotion = factories.PromotionFactory(
        org=org, condition=CONDITIONS["combo"][1], action=ACTIONS["fixed bundle price"][1]
    )

    page = staff_client.get(
        reverse("admin:promotions_promotion_change", args=[promotion.pk])
    ).content.decode()

    assert 'id="promotion-builder"' in page
    assert "The bundle of SKU SHIRT and SKU HAT for 60.00 together" in page
    assert "&quot;fixedPriceAction&quot;" in page  # the stored JSON, read-only
    assert 'name="condition"' not in page and 'name="action"' not in page


def test_restrictions_unchanged_by_the_builder(staff_client, org):
    # the limits stay a formset of labelled rows; the builder adds none
    response = staff_client.post(
        ADD_URL,
        {**builder_post(**CONDITIONS["cart subtotal"][0], **ACTIONS["% off the cart"][0]),
         "restrictions-TOTAL_FORMS": 1, "restrictions-0-level": "Cart", "restrictions-0-kpi": "DISCOUNT",
         "restrictions-0-limit": "100", "restrictions-0-fixed_window_config": "null"},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert list(PromotionRestriction.objects.values_list("level", "kpi")) == [("Cart", "DISCOUNT")]
    assert PromotionOutputSerializer  # the echo is the API's (checked in the round trip above)


def test_a_limits_fixed_window_is_picked_in_words_and_saved_back_unchanged(staff_client, org):
    # given: a Customer limit of 2 redemptions a week starting on Monday, no JSON typed
    limit = {
        "restrictions-TOTAL_FORMS": 1, "restrictions-0-level": "Customer", "restrictions-0-kpi": "REDEMPTION",
        "restrictions-0-limit": "2", "restrictions-0-window_type": "FIXED", "restrictions-0-fw_cycle": "WEEK",
        "restrictions-0-fw_week_start": "MONDAY", "restrictions-0-fw_source": "PROMOTION_CONFIG",
    }  # fmt: skip
    post = {**builder_post(**CONDITIONS["cart subtotal"][0], **ACTIONS["% off the cart"][0]), **limit}
    post["type"] = "CUSTOMER"

    # when: saved, then its page opened and saved as it stands
    created = staff_client.post(ADD_URL, post)
    promotion = Promotion.objects.get(org=org)
    url = reverse("admin:promotions_promotion_change", args=[promotion.pk])
    resaved = staff_client.post(url, form_fields(staff_client.get(url).content.decode()))

    # then
    assert created.status_code == 302, created.content.decode()[-3000:]
    assert resaved.status_code == 302, resaved.content.decode()[-3000:]
    restriction = PromotionRestriction.objects.get(promotion=promotion)
    assert (restriction.window_type, restriction.fixed_window_config) == (
        "FIXED", {"cycleType": "WEEK", "weekStartDay": "MONDAY", "cycleReferenceDateSource": "PROMOTION_CONFIG"}
    )  # fmt: skip


def test_a_fixed_window_setting_without_its_cycle_is_a_form_error(staff_client, org):
    post = {
        **builder_post(**CONDITIONS["cart subtotal"][0], **ACTIONS["% off the cart"][0]),
        "type": "CUSTOMER", "restrictions-TOTAL_FORMS": 1, "restrictions-0-level": "Customer",
        "restrictions-0-kpi": "REDEMPTION", "restrictions-0-limit": "2", "restrictions-0-fw_days": "7",
    }  # fmt: skip

    response = staff_client.post(ADD_URL, post)

    assert response.status_code == 200
    assert "Pick the fixed cycle these settings are for." in response.content.decode()
    assert not Promotion.objects.exists()


def test_a_stored_rule_the_builder_cannot_read_opens_and_is_explained_not_a_500(staff_client, org):
    # given: a row written before the shapes were checked
    promotion = factories.PromotionFactory(org=org)
    Promotion.objects.filter(pk=promotion.pk).update(
        condition={"type": "WEIRD", "x": [1]}, action=["not", "a", "dict"]
    )
    url = reverse("admin:promotions_promotion_change", args=[promotion.pk])

    # when: opened, then saved as it stands
    page = staff_client.get(url)
    saved = staff_client.post(url, form_fields(page.content.decode()))

    # then: the page opens; the save asks for the parts the builder could not read
    assert page.status_code == 200
    assert saved.status_code == 200
    text = saved.content.decode()
    assert "Enter the subtotal." in text and "Enter the percentage." in text
    promotion.refresh_from_db()
    assert promotion.condition == {"type": "WEIRD", "x": [1]}


def test_the_builder_endpoints_need_a_promotion_permission(client, org):
    viewer = factories.UserFactory(org=org)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_promotion"))
    client.force_login(viewer)

    assert client.post(PREVIEW_URL, {"cond_type": "CART"}).status_code == 403
    assert client.get(VALUES_URL, {"entity": "SKU"}).status_code == 403
