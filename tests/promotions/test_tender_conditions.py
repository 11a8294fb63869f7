"""TENDER and the PAYMENT_MODE family of conditions: the strict shapes of docs/engine.md ("Conditions"),
stored as the API echoes them; anything else is 400."""

import pytest

from promotions.models import Promotion
from tests.promotions.test_promotion_create import URL, body

CARDS = {"type": "CARD", "identifiers": ["CreditCard", "DebitCard"]}
PRODUCT = {
    "criteriaList": [{"entity": "CATEGORY", "operator": "IN", "values": ["Snacks"]}],
    "kpi": "QUANTITY",
    "operator": "GREATER_THAN_OR_EQUAL",
    "value": 2,
}
ECHOED_PRODUCT = {**PRODUCT, "value": "2.000000"}
CART = {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 500}
ECHOED_CART = {**CART, "value": "500.000000"}
POINTS = {"operator": "IN", "values": ["POINTS"]}
TENDER_ACTION = {"type": "TENDER", "tenderBasedAction": {"type": "PERCENTAGE", "value": 5}}
CART_ACTION = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 10}}


@pytest.mark.parametrize(
    ("condition", "action", "echoed"),
    [
        (
            {"type": "TENDER", "tenderCondition": {"tenderModes": [CARDS]}},
            TENDER_ACTION,
            {"type": "TENDER", "tenderCondition": {"tenderModes": [CARDS]}},
        ),
        (
            {"type": "TENDER", "tenderCondition": {
                "tenderModes": [CARDS, {"type": "CASH", "identifiers": ["CASH"]}],
                "condition": {"type": "CART", "cartCondition": CART}}},
            TENDER_ACTION,
            {"type": "TENDER", "tenderCondition": {
                "tenderModes": [CARDS, {"type": "CASH", "identifiers": ["CASH"]}],
                "condition": {"type": "CART", "cartCondition": ECHOED_CART}}},
        ),
        (
            {"type": "TENDER", "tenderCondition": {
                "tenderModes": [{"type": "PAYMENT_VOUCHER", "identifiers": ["GiftVoucher"]}],
                "condition": {"type": "PRODUCT", "productCondition": PRODUCT}}},
            TENDER_ACTION,
            {"type": "TENDER", "tenderCondition": {
                "tenderModes": [{"type": "PAYMENT_VOUCHER", "identifiers": ["GiftVoucher"]}],
                "condition": {"type": "PRODUCT", "productCondition": ECHOED_PRODUCT}}},
        ),
        (
            {"type": "PAYMENT_MODE", "paymentModeCondition": POINTS},
            CART_ACTION,
            {"type": "PAYMENT_MODE", "paymentModeCondition": POINTS},
        ),
        (
            {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": {"operator": "NOT_IN", "values": ["CASH"]},
             "productCondition": PRODUCT},
            CART_ACTION,
            {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": {"operator": "NOT_IN", "values": ["CASH"]},
             "productCondition": ECHOED_PRODUCT},
        ),
        (
            {"type": "PAYMENT_MODE_COMBO_PRODUCT", "paymentModeCondition": POINTS,
             "comboProductCondition": {"productConditions": [PRODUCT]}},
            CART_ACTION,
            {"type": "PAYMENT_MODE_COMBO_PRODUCT", "paymentModeCondition": POINTS,
             "comboProductCondition": {"productConditions": [ECHOED_PRODUCT]}},
        ),
    ],
    ids=["tender", "tender with cart", "tender with product", "payment mode", "scope", "combo"],
)  # fmt: skip
def test_the_documented_shapes_are_stored_and_echoed(api, condition, action, echoed):
    response = api.post(URL, body(condition=condition, action=action), format="json")

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["condition"] == echoed
    assert Promotion.objects.get(pk=data["id"]).condition == echoed
    # read and sent back, it is the same promotion
    again = api.put(f"{URL}/{data['id']}", {"condition": data["condition"]}, format="json")
    assert again.json()["data"]["condition"] == echoed


def tender(**tender_condition):
    return {"type": "TENDER", "tenderCondition": tender_condition}


@pytest.mark.parametrize(
    ("condition", "action", "message"),
    [
        ({"type": "TENDER"}, TENDER_ACTION, "condition.tenderCondition: Required when condition type is TENDER."),
        (tender(), TENDER_ACTION, "condition.tenderCondition.tenderModes: This field is required."),
        (tender(tenderModes=[]), TENDER_ACTION, "condition.tenderCondition.tenderModes: This list may not be empty."),
        (tender(tenderType="CARD"), TENDER_ACTION, "condition.tenderCondition.tenderType: Unknown field."),
        (tender(tenderModes=[{"type": "CHEQUE", "identifiers": ["X"]}]), TENDER_ACTION,
         'condition.tenderCondition.tenderModes.0.type: "CHEQUE" is not a valid choice.'),
        (tender(tenderModes=[{"type": "CARD", "identifiers": []}]), TENDER_ACTION,
         "condition.tenderCondition.tenderModes.0.identifiers: This list may not be empty."),
        (tender(tenderModes=[{"type": "CARD", "identifiers": [""]}]), TENDER_ACTION,
         "condition.tenderCondition.tenderModes.0.identifiers.0: This field may not be blank."),
        (tender(tenderModes=[{"type": "CARD", "identifiers": ["  "]}]), TENDER_ACTION,
         "condition.tenderCondition.tenderModes.0.identifiers.0: This field may not be blank."),
        (tender(tenderModes=[{"type": "CARD", "identifiers": [7]}]), TENDER_ACTION,
         "condition.tenderCondition.tenderModes.0.identifiers: Item 0: Must be a JSON string."),
        (tender(tenderModes=[{"type": "CARD", "identifiers": ["A"], "bank": "X"}]), TENDER_ACTION,
         "condition.tenderCondition.tenderModes.0.bank: Unknown field."),
        (tender(tenderModes=[CARDS], condition={"type": "COMBO_PRODUCT", "comboProductCondition": {}}),
         TENDER_ACTION, 'condition.tenderCondition.condition.type: "COMBO_PRODUCT" is not a valid choice.'),
        (tender(tenderModes=[CARDS], condition={"type": "CART"}), TENDER_ACTION,
         "condition.tenderCondition.condition.cartCondition: Required when condition type is CART."),
        ({"type": "PAYMENT_MODE"}, CART_ACTION,
         "condition.paymentModeCondition: Required when condition type is PAYMENT_MODE."),
        ({"type": "PAYMENT_MODE", "paymentModeCondition": {"operator": "EQUALS", "values": ["X"]}}, CART_ACTION,
         'condition.paymentModeCondition.operator: "EQUALS" is not a valid choice.'),
        ({"type": "PAYMENT_MODE", "paymentModeCondition": {"operator": "IN", "values": []}}, CART_ACTION,
         "condition.paymentModeCondition.values: This list may not be empty."),
        ({"type": "PAYMENT_MODE", "paymentModeCondition": {"operator": "IN", "values": ["X"] * 101}}, CART_ACTION,
         "condition.paymentModeCondition.values: Ensure this field has no more than 100 elements."),
        ({"type": "PAYMENT_MODE", "paymentModeCondition": {**POINTS, "mode": "X"}}, CART_ACTION,
         "condition.paymentModeCondition.mode: Unknown field."),
        ({"type": "PAYMENT_MODE", "paymentModeCondition": POINTS, "productCondition": PRODUCT}, CART_ACTION,
         "condition.productCondition: Unknown field."),
        ({"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": POINTS}, CART_ACTION,
         "condition.productCondition: Required when condition type is PAYMENT_MODE_SCOPE."),
        ({"type": "PAYMENT_MODE_SCOPE", "productCondition": PRODUCT}, CART_ACTION,
         "condition.paymentModeCondition: Required when condition type is PAYMENT_MODE_SCOPE."),
        ({"type": "PAYMENT_MODE_COMBO_PRODUCT", "comboProductCondition": {"productConditions": [PRODUCT]}},
         CART_ACTION, "condition.paymentModeCondition: Required when condition type is PAYMENT_MODE_COMBO_PRODUCT."),
        ({"type": "PAYMENT_MODE_COMBO_PRODUCT", "paymentModeCondition": POINTS}, CART_ACTION,
         "condition.comboProductCondition: Required when condition type is PAYMENT_MODE_COMBO_PRODUCT."),
    ],
)  # fmt: skip
def test_a_tender_or_payment_condition_outside_its_shape_is_400(api, condition, action, message):
    response = api.post(URL, body(condition=condition, action=action), format="json")

    assert response.status_code == 400, response.content
    messages = [error["message"] for error in response.json()["errors"]]
    assert message in messages, messages
    assert not Promotion.objects.exists()


def test_identifiers_are_kept_exactly_as_sent(api):
    condition = tender(tenderModes=[{"type": "CARD", "identifiers": [" Credit Card "]}])
    response = api.post(URL, body(condition=condition, action=TENDER_ACTION), format="json")
    assert response.json()["data"]["condition"]["tenderCondition"]["tenderModes"][0]["identifiers"] == [
        " Credit Card "
    ]
