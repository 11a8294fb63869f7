"""POST /api_gateway/v1/promotions: create, with validated condition/action shapes, 705 and 716."""

import copy
import datetime as dt

import pytest
from django.utils import timezone

from promotions.models import AuditEvent, Promotion, PromotionRestriction
from promotions.schema import PROMOTION_CREATE_EXAMPLE, PROMOTION_RESPONSE_EXAMPLE
from tests.concurrency import run_concurrently
from tests.factories import PromotionFactory

URL = "/api_gateway/v1/promotions"


def body(**changes):
    data = copy.deepcopy(PROMOTION_CREATE_EXAMPLE)
    # Whole seconds: two bodies built a moment apart describe the same promotion.
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    data.pop("startDateISO"), data.pop("endDateISO")
    data["startDateISO"] = start.isoformat()
    data["endDateISO"] = (start + dt.timedelta(days=60)).isoformat()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def error_codes(response):
    return [error["code"] for error in response.json()["errors"]]


def test_documented_example_creates_the_documented_shape(api, org):
    # given the documented request body
    payload = copy.deepcopy(PROMOTION_CREATE_EXAMPLE)
    payload["endDateISO"] = "2099-12-31T23:59:59+05:30"

    # when
    response = api.post(URL, payload, format="json")

    # then the response has exactly the documented keys and echoes the configuration
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert response.json()["errors"] == []
    assert set(data) == set(PROMOTION_RESPONSE_EXAMPLE["data"])
    assert data["orgId"] == org.pk
    # echoed in Capillary's shape: the sent numbers as six-decimal strings
    assert data["condition"] == PROMOTION_RESPONSE_EXAMPLE["data"]["condition"]
    assert data["action"] == PROMOTION_RESPONSE_EXAMPLE["data"]["action"]
    assert data["promotionRestrictions"] == PROMOTION_RESPONSE_EXAMPLE["data"]["promotionRestrictions"]
    assert data["startDate"] == 1767205800000
    assert data["startDateISO"] == "2025-12-31T18:30:00Z"
    promotion = Promotion.objects.get(pk=data["id"])
    assert len(data["id"]) == 24
    assert promotion.org == org
    assert promotion.created_by == data["createdBy"] != ""
    assert sorted(promotion.restrictions.values_list("level", "kpi")) == [
        ("Customer", "REDEMPTION"),
        ("Promotion", "DISCOUNT"),
    ]
    assert AuditEvent.objects.filter(action="promotion.create", object_id=promotion.pk).count() == 1


def test_epoch_millisecond_dates_are_accepted(api):
    # given
    start = 1767205800000
    payload = body(startDateISO=None, endDateISO=None, startDate=start, endDate=4102444800000)

    # when
    response = api.post(URL, payload, format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["data"]["startDate"] == start
    assert response.json()["data"]["endDate"] == 4102444800000


def test_created_promotion_reads_back_the_same(api):
    created = api.post(URL, body(), format="json").json()["data"]

    fetched = api.get(f"{URL}/{created['id']}").json()["data"]

    assert fetched == created


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"type": "BOGUS"}, "type"),
        ({"startDateISO": None}, "startDate"),
        ({"endDateISO": "2030-01-01T00:00:00"}, "offset"),
        ({"condition": {"type": "CART"}}, "cartCondition"),
        ({"condition": {"type": "CART", "cartCondtion": {}}}, "cartCondtion"),
        ({"condition": {"type": "CART", "cartCondition": {"kpi": "WEIGHT", "operator": "EQUALS", "value": 1}}}, "kpi"),
        ({"action": {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": 150}}}, "percentage"),
        ({"action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 0}}}, "greater than 0"),
        ({"action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 1.234}}}, "decimal"),
        ({"action": {"type": "FREE_PRODUCT"}}, "freeProductAction"),
        ({"action": {"type": "TENDER", "tenderBasedAction": {}}}, "TENDER"),
        ({"maxIssuancePerCustomer": 51}, "maxIssuancePerCustomer"),
        ({"maxIssuancePerCustomer": 0}, "maxIssuancePerCustomer"),
        ({"maxEarningPerCustomer": 0}, "maxEarningPerCustomer"),
        ({"priority": -1}, "priority"),
        ({"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 0}]}}, "limit"),
        ({"promotionRestrictions": {"Global": []}}, "Global"),
        ({"promotionRestrictions": {"Code": [{"kpi": "REDEMPTION", "limit": 1}]}}, "Code"),
        ({"promotionRestrictions": {"Earn": [{"kpi": "REDEMPTION", "limit": 1}]}}, "Earn"),
        ({"promotionRestrictions": {"Cart": [{"kpi": "REDEMPTION", "limit": 1, "frequency": "DAYS"}]}}, "Cart"),
        (
            {"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 1}, {"kpi": "REDEMPTION", "limit": 2}]}},
            "once per level",
        ),
        (
            {"promotionRestrictions": {
                "Customer": [{"kpi": "REDEMPTION", "limit": 1, "windowType": "MOVING"}],
                "Promotion": [{"kpi": "REDEMPTION", "limit": 9, "windowType": "FIXED"}],
            }},
            "mixed",
        ),
        (
            {"promotionRestrictions": {
                "Customer": [{"kpi": "REDEMPTION", "limit": 1, "frequency": "DAYS"}],
                "Promotion": [{"kpi": "REDEMPTION", "limit": 9, "windowType": "FIXED",
                               "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"}}],
            }},
            "mixed",
        ),
        ({"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 1, "windowType": "FIXED"}]}},
         "fixedWindowConfig"),
        ({"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 1, "frequency": "DAYS",
                                                  "minTimeBetweenRepeat": 3600000}]}}, "whole number"),
        ({"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 1, "windowType": "FIXED",
                                                  "fixedWindowConfig": {"cycleType": "WEEK"}}]}}, "weekStartDay"),
        (
            {"promotionRestrictions": {"Customer": [
                {"kpi": "REDEMPTION", "limit": 9, "windowType": "FIXED", "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"}},
                {"kpi": "REDEMPTION", "limit": 2, "windowType": "FIXED", "fixedWindowConfig": {"cycleType": "N_DAY", "refreshRate": 7}},
            ]}},
            "once per level",
        ),
        ({"type": "EARNING", "promotionRestrictions": {"Earn": [{"kpi": "REDEMPTION", "limit": 1, "windowType": "FIXED",
                                                               "fixedWindowConfig": {"cycleType": "N_DAY", "refreshRate": 2,
                                                                                     "cycleReferenceDateSource": "ISSUANCE_DATE"}}]}},
         "ISSUANCE_DATE"),
        ({"customerActivationRequired": True, "type": "POS"}, "customerActivationRequired"),
    ],
)  # fmt: skip
def test_invalid_configuration_is_400_and_writes_nothing(api, changes, fragment):
    # when
    response = api.post(URL, body(**changes), format="json")

    # then
    assert response.status_code == 400, response.content
    assert error_codes(response) and set(error_codes(response)) == {400}
    assert fragment.lower() in " ".join(e["message"] for e in response.json()["errors"]).lower()
    assert not Promotion.objects.exists()
    assert not PromotionRestriction.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"earnLimitedToSpecificAudience": 0}, "earnLimitedToSpecificAudience: Must be a JSON boolean."),
        ({"isStackable": "yes"}, "isStackable: Must be a JSON boolean."),
        ({"priority": "1"}, "priority: Must be a JSON integer."),
        ({"maxIssuancePerCustomer": 1.0}, "maxIssuancePerCustomer: Must be a JSON integer."),
        ({"startDateISO": None, "startDate": str(1767205800000)}, "startDate: Must be a JSON integer."),
        ({"name": 12}, "name: Must be a JSON string."),
        (
            {"action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": True}}},
            'action.cartBasedAction.value: Must be a JSON number or a decimal string ("500.000000").',
        ),
        (
            {
                "condition": {
                    "type": "PRODUCT",
                    "productCondition": {
                        "criteriaList": [{"entity": "SKU", "operator": "IN", "values": [0]}]
                    },
                }
            },
            "condition.productCondition.criteriaList.0.values: Item 0: Must be a JSON string.",
        ),
    ],
)
def test_values_of_another_json_type_than_the_schema_says_are_400(api, changes, message):
    # given: values DRF's fields would coerce ("1" for 1, 0 for false) but the schema calls invalid
    # when
    response = api.post(URL, body(**changes), format="json")
    # then
    assert response.status_code == 400, response.content
    assert response.json() == {"errors": [{"code": 400, "message": message}]}
    assert not Promotion.objects.exists()


def test_limits_may_be_sent_as_numbers_or_as_the_echoed_decimal_strings(api):
    restrictions = {
        "Customer": [{"kpi": "REDEMPTION", "limit": "2.000000"}],
        "Promotion": [{"kpi": "DISCOUNT", "limit": 5000}],
    }
    response = api.post(URL, body(promotionRestrictions=restrictions), format="json")
    assert response.status_code == 200, response.content
    assert (
        response.json()["data"]["promotionRestrictions"]
        == PROMOTION_RESPONSE_EXAMPLE["data"]["promotionRestrictions"]
    )


def test_more_than_100_criteria_values_is_the_documented_400(api):
    condition = {
        "type": "PRODUCT",
        "productCondition": {
            "criteriaList": [{"entity": "SKU", "operator": "IN", "values": [f"SKU{i}" for i in range(101)]}],
            "kpi": "NONE",
        },
    }

    response = api.post(URL, body(condition=condition), format="json")

    assert response.status_code == 400
    assert "SKU values exceed 100" in response.json()["errors"][0]["message"]


def test_code_promotion_requires_a_code_limit(api):
    response = api.post(URL, body(type="CODE", promotionRestrictions={}), format="json")
    assert response.status_code == 400
    assert "Code is required" in response.json()["errors"][0]["message"]

    ok = api.post(
        URL,
        body(type="CODE", promotionRestrictions={"Code": [{"kpi": "REDEMPTION", "limit": 1}]}),
        format="json",
    )
    assert ok.status_code == 200, ok.content


def test_a_code_limit_may_reset_like_the_other_levels(api):
    limits = {
        "Code": [
            {"kpi": "REDEMPTION", "limit": 10},
            {
                "kpi": "REDEMPTION",
                "limit": 2,
                "windowType": "FIXED",
                "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
            },
            {
                "kpi": "DISCOUNT",
                "limit": 500,
                "windowType": "FIXED",
                "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
            },
        ]
    }
    response = api.post(URL, body(type="CODE", promotionRestrictions=limits), format="json")
    assert response.status_code == 200, response.content
    kinds = sorted(PromotionRestriction.objects.filter(level="Code").values_list("kpi", "window_kind"))
    assert kinds == [("DISCOUNT", "FIXED"), ("REDEMPTION", "FIXED"), ("REDEMPTION", "OVERALL")]


def test_every_condition_and_action_type_round_trips(api):
    product = {"criteriaList": [{"entity": "CATEGORY", "operator": "NOT_IN", "values": ["TOBACCO"]}], "kpi": "QUANTITY",
               "operator": "GREATER_THAN_OR_EQUAL", "value": 2}  # fmt: skip
    echoed_product = {**product, "value": "2.000000"}
    # (condition, action, the condition echoed, the action echoed): values as six-decimal strings,
    # defaults (includeItemsFromConditionSet) filled in
    cases = [
        ({"type": "PRODUCT", "productCondition": product},
         {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 15,
                                                           "includeItemsFromConditionSet": True}},
         {"type": "PRODUCT", "productCondition": echoed_product},
         {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": "15.000000",
                                                           "includeItemsFromConditionSet": True}}),
        ({"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [product, product]}},
         {"type": "FREE_PRODUCT", "freeProductAction": {
             "includeItemsFromConditionSet": False,
             "productBasedCondition": {"type": "PRODUCT", "productCondition": product}}},
         {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [echoed_product] * 2}},
         {"type": "FREE_PRODUCT", "freeProductAction": {
             "includeItemsFromConditionSet": False,
             "productBasedCondition": {"type": "PRODUCT", "productCondition": echoed_product}}}),
        # A fixed price prices products (the engine refuses one for the whole cart).
        ({"type": "PRODUCT", "productCondition": product},
         {"type": "FIXED_PRICE", "fixedPriceAction": {"value": 99.5}},
         {"type": "PRODUCT", "productCondition": echoed_product},
         {"type": "FIXED_PRICE", "fixedPriceAction": {"value": "99.500000", "includeItemsFromConditionSet": True}}),
        ({"type": "CART", "cartCondition": {"kpi": "ITEMCOUNT", "operator": "EQUALS", "value": 3}},
         {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 99.5}},
         {"type": "CART", "cartCondition": {"kpi": "ITEMCOUNT", "operator": "EQUALS", "value": "3.000000"}},
         {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "99.500000"}}),
        ({"type": "PRODUCT", "productCondition": product},
         {"type": "PER_UNIT", "perUnitAction": {
             "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": 5}},
             "perUnitKPI": "QUANTITY", "perUnitDivider": 2}},
         {"type": "PRODUCT", "productCondition": echoed_product},
         {"type": "PER_UNIT", "perUnitAction": {
             "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {
                 "type": "ABSOLUTE", "value": "5.000000", "includeItemsFromConditionSet": True}},
             "perUnitKPI": "QUANTITY", "perUnitDivider": "2.000000", "includeItemsFromConditionSet": True}}),
        ({"type": "TENDER", "tenderCondition": {"tenderModes": [{"type": "CARD", "identifiers": ["CreditCard"]}]}},
         {"type": "TENDER", "tenderBasedAction": {"type": "ABSOLUTE", "value": 10}},
         {"type": "TENDER", "tenderCondition": {"tenderModes": [{"type": "CARD", "identifiers": ["CreditCard"]}]}},
         {"type": "TENDER", "tenderBasedAction": {"type": "ABSOLUTE", "value": "10.000000"}}),
    ]  # fmt: skip
    for index, (condition, action, echoed_condition, echoed_action) in enumerate(cases):
        response = api.post(
            URL, body(name=f"case {index}", condition=condition, action=action), format="json"
        )
        assert response.status_code == 200, (index, response.content)
        assert response.json()["data"]["condition"] == echoed_condition
        assert response.json()["data"]["action"] == echoed_action


def test_duplicate_name_is_716(api, org):
    # given
    PromotionFactory(org=org, name="Flat 200 off above 1500")

    # when
    response = api.post(URL, body(), format="json")

    # then
    assert response.status_code == 400
    assert error_codes(response) == [716]
    assert Promotion.objects.count() == 1


def test_same_name_in_another_org_is_fine(api, other_org):
    PromotionFactory(org=other_org, name="Flat 200 off above 1500")

    assert api.post(URL, body(), format="json").status_code == 200


def test_ended_promotion_is_706(api):
    start = timezone.now() - dt.timedelta(days=10)
    payload = body(startDateISO=start.isoformat(), endDateISO=(start + dt.timedelta(days=1)).isoformat())

    response = api.post(URL, payload, format="json")

    assert error_codes(response) == [706]
    assert not Promotion.objects.exists()


def test_end_before_start_is_400(api):
    start = timezone.now() + dt.timedelta(days=10)
    payload = body(startDateISO=start.isoformat(), endDateISO=(start - dt.timedelta(days=1)).isoformat())

    response = api.post(URL, payload, format="json")

    assert response.status_code == 400
    assert "endDate must be after startDate" in response.json()["errors"][0]["message"]


def test_active_cap_is_705_but_an_inactive_promotion_may_be_created(api, org):
    # given an org at its cap
    org.max_active_promotions = 2
    org.save()
    PromotionFactory.create_batch(2, org=org, active=True)

    # when
    refused = api.post(URL, body(), format="json")
    inactive = api.post(URL, body(active=False), format="json")

    # then
    assert refused.status_code == 400 and error_codes(refused) == [705]
    assert inactive.status_code == 200
    assert inactive.json()["data"]["active"] is False


def test_read_only_client_cannot_create(read_api):
    response = read_api.post(URL, body(), format="json")

    assert response.status_code == 403
    assert not Promotion.objects.exists()


def test_trailing_slash_also_creates(api):
    assert api.post(URL + "/", body(), format="json").status_code == 200


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_exceed_the_active_cap(org):
    # given an org with one slot left
    org.max_active_promotions = 3
    org.save()
    PromotionFactory.create_batch(2, org=org, active=True)

    # when 10 threads each create a differently named active promotion
    responses = run_concurrently(
        10, lambda api, i: api.post(URL, body(name=f"race {i}"), format="json"), org=org
    )

    # then exactly one took the slot
    assert sorted(r.status_code for r in responses) == [200] + [400] * 9
    assert Promotion.objects.filter(org=org, active=True).count() == 3


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_name_create_one(org):
    responses = run_concurrently(10, lambda api, i: api.post(URL, body(), format="json"), org=org)

    assert sorted(r.status_code for r in responses) == [200] + [400] * 9
    assert {tuple(error_codes(r)) for r in responses if r.status_code == 400} == {(716,)}
    assert Promotion.objects.filter(org=org).count() == 1


# --- Condition and action values and shapes (docs/api.md, "Promotion objects") --------------------


def cart_action(value) -> dict:
    return {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": value}}


def product_condition(**changes) -> dict:
    return {
        "type": "PRODUCT",
        "productCondition": {
            "criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["A"]}],
            **changes,
        },
    }


@pytest.mark.parametrize(
    ("value", "echoed"),
    [("10.000000", "10.000000"), ("10.50", "10.500000"), ("200", "200.000000"), (10, "10.000000"),
     (10.5, "10.500000"), ("0.010000", "0.010000")],
)  # fmt: skip
def test_a_value_is_a_number_or_a_decimal_string_with_two_significant_decimals(api, value, echoed):
    response = api.post(URL, body(action=cart_action(value)), format="json")

    assert response.status_code == 200, response.content
    assert response.json()["data"]["action"] == cart_action(echoed)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.123", "action.cartBasedAction.value: Ensure that there are no more than 2 decimal places."),
        ("10.1230000", "action.cartBasedAction.value: Ensure that there are no more than 2 decimal places."),
        ("1e3", 'action.cartBasedAction.value: Must be a JSON number or a decimal string ("500.000000").'),
        (" 5", 'action.cartBasedAction.value: Must be a JSON number or a decimal string ("500.000000").'),
        ([5], 'action.cartBasedAction.value: Must be a JSON number or a decimal string ("500.000000").'),
    ],
)
def test_a_value_with_more_decimals_or_not_a_decimal_is_400(api, value, message):
    response = api.post(URL, body(action=cart_action(value)), format="json")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": 400, "message": message}]}


def test_kpi_none_is_stored_and_echoed_with_operator_none_and_value_zero(api):
    # given: kpi NONE without operator and value, as the create page allows
    condition = product_condition(kpi="NONE")

    # when
    response = api.post(URL, body(condition=condition), format="json")

    # then: as Capillary echoes it
    assert response.status_code == 200, response.content
    echoed = response.json()["data"]["condition"]["productCondition"]
    assert (echoed["kpi"], echoed["operator"], echoed["value"]) == ("NONE", "NONE", "0.000000")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (product_condition(kpi="NONE", operator="GREATER_THAN", value=1),
         "condition.productCondition: With kpi NONE, operator is NONE and value is 0 (or both are left out)."),
        (product_condition(kpi="QUANTITY", operator="NONE", value=1),
         "condition.productCondition.operator: NONE goes only with kpi NONE."),
        ({"type": "PRODUCT", "productCondition": {
            "criteriaList": [{"entity": "ATTRIBUTE", "operator": "IN", "values": ["SKU456"]}]}},
         "condition.productCondition.criteriaList.0.attributeName: Required with entity ATTRIBUTE, and only with it."),
        ({"type": "PRODUCT", "productCondition": {
            "criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["A"], "attributeName": "sku_code"}]}},
         "condition.productCondition.criteriaList.0.attributeName: Required with entity ATTRIBUTE, and only with it."),
        ({"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "EQUALS", "value": 1},
          "productCondition": {}},
         "condition.productCondition: Unknown field."),
    ],
)  # fmt: skip
def test_condition_rules(api, condition, message):
    response = api.post(URL, body(condition=condition), format="json")

    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": 400, "message": message}]}


BARE = {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["TIE"]}], "kpi": "NONE"}
WRAPPED_SHAPE = 'productBasedCondition is a condition: {"type": "PRODUCT", "productCondition": '


@pytest.mark.parametrize(
    ("action", "message"),
    [
        # the bare product condition this service took before: refused, naming the documented shape
        ({"type": "FREE_PRODUCT", "freeProductAction": {"includeItemsFromConditionSet": False,
                                                        "productBasedCondition": BARE}},
         f"action.freeProductAction.productBasedCondition: {WRAPPED_SHAPE}"),
        ({"type": "PER_UNIT", "perUnitAction": {"rewardAction": {"type": "FIXED_PRICE", "fixedPriceAction": {
            "value": 5, "includeItemsFromConditionSet": False, "productBasedCondition": BARE}}}},
         f"action.perUnitAction.rewardAction.fixedPriceAction.productBasedCondition: {WRAPPED_SHAPE}"),
        # this service's older perUnitAction: refused, naming the documented one
        ({"type": "PER_UNIT", "perUnitAction": {"type": "ABSOLUTE", "value": 5}},
         "action.perUnitAction.type: Not a field of perUnitAction. perUnitAction is {rewardAction, perUnitKPI"),
        # named by the create page's field table, with no values: refused by name
        ({"type": "PER_UNIT", "perUnitAction": {"unitType": "QUANTITY", "rewardAction": {
            "type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": 5}}}},
         "action.perUnitAction.unitType: Not supported: perUnitKPI (QUANTITY or AMOUNT) says what a unit is."),
        ({"type": "PER_UNIT", "perUnitAction": {"rewardAction": {"type": "CART_BASED", "cartBasedAction": {
            "type": "ABSOLUTE", "value": 5}}}},
         'action.perUnitAction.rewardAction.type: "CART_BASED" is not a valid choice.'),
        ({"type": "PER_UNIT", "perUnitAction": {"perUnitDivider": 0, "rewardAction": {
            "type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": 5}}}},
         "action.perUnitAction.perUnitDivider: Must be greater than 0."),
        ({"type": "FIXED_PRICE", "fixedPriceAction": {"value": 5, "includeItemsFromConditionSet": False}},
         "action.fixedPriceAction.productBasedCondition: Required when includeItemsFromConditionSet is false."),
        ({"type": "PRODUCT_BASED", "productBasedAction": {"type": "ABSOLUTE", "value": 5,
                                                          "productBasedCondition": {"type": "TENDER"}}},
         'action.productBasedAction.productBasedCondition.type: "TENDER" is not a valid choice.'),
    ],
)  # fmt: skip
def test_action_rules(api, action, message):
    response = api.post(URL, body(action=action), format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {error["code"] for error in errors} == {400}
    assert any(error["message"].startswith(message) for error in errors), errors


def test_documented_action_variants_are_accepted_and_echoed_with_six_decimals(api):
    cart = {
        "type": "CART",
        "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": 50},
    }
    combo = {
        "type": "COMBO_PRODUCT",
        "comboProductCondition": {
            "productConditions": [
                {
                    "criteriaList": [{"entity": "BRAND", "operator": "IN", "values": ["B"]}],
                    "kpi": "AMOUNT",
                    "operator": "GREATER_THAN",
                    "value": "100.000000",
                }
            ]
        },
    }
    action = {
        "type": "PER_UNIT",
        "perUnitAction": {
            "rewardAction": {
                "type": "FREE_PRODUCT",
                "freeProductAction": {
                    "quantity": 2,
                    "includeItemsFromConditionSet": False,
                    "productBasedCondition": combo,
                },
            },
            "perUnitKPI": "AMOUNT",
            "perUnitDivider": "1000.000000",
            "includeItemsFromConditionSet": False,
        },
    }
    product_based = {"type": "PRODUCT_BASED", "productBasedAction": {
        "type": "PERCENTAGE", "value": "25.000000", "includeItemsFromConditionSet": False,
        "productBasedCondition": cart}}  # fmt: skip

    first = api.post(URL, body(name="per unit", action=action, campaignId=264140), format="json")
    second = api.post(URL, body(name="product based", action=product_based), format="json")

    assert first.status_code == 200, first.content
    reward = first.json()["data"]["action"]["perUnitAction"]["rewardAction"]["freeProductAction"]
    assert reward["quantity"] == "2.000000"
    assert reward["productBasedCondition"] == combo
    assert first.json()["data"]["campaignId"] == "264140"
    assert second.status_code == 200, second.content
    target = second.json()["data"]["action"]["productBasedAction"]["productBasedCondition"]
    assert target == {"type": "CART", "cartCondition": {**cart["cartCondition"], "value": "50.000000"}}


def test_a_lifetime_limit_and_a_monthly_one_on_the_same_kpi_are_stored_and_echoed(api):
    # given: Capillary's example, 20 in all and 3 a month per customer
    limits = {
        "Customer": [
            {"kpi": "REDEMPTION", "limit": 20, "windowType": "OVERALL"},
            {
                "kpi": "REDEMPTION",
                "limit": 3,
                "windowType": "FIXED",
                "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
            },
        ]
    }

    # when
    response = api.post(URL, body(promotionRestrictions=limits), format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["data"]["promotionRestrictions"] == {
        "Customer": [
            {"kpi": "REDEMPTION", "limit": "20.000000", "windowType": "OVERALL"},
            {"kpi": "REDEMPTION", "limit": "3.000000", "windowType": "FIXED",
             "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"}},
        ]
    }  # fmt: skip
    stored = PromotionRestriction.objects.filter(promotion_id=response.json()["data"]["id"])
    assert sorted(stored.values_list("window_kind", "window_cycle")) == [
        ("FIXED", "CALENDAR_MONTH"),
        ("OVERALL", ""),
    ]


def test_an_earn_limit_whose_window_resets_is_accepted_beside_a_lifetime_one(api):
    # Earn limits with a reset are counted per earned instance (docs/code-redemption.md).
    restrictions = {
        "Earn": [
            {
                "kpi": "REDEMPTION",
                "limit": 1,
                "windowType": "FIXED",
                "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
            },
            {"kpi": "REDEMPTION", "limit": 6},
        ]
    }
    response = api.post(URL, body(type="EARNING", promotionRestrictions=restrictions), format="json")

    assert response.status_code == 200, response.content
    stored = sorted(PromotionRestriction.objects.filter(level="Earn").values_list("window_kind", "limit"))
    assert stored == [("FIXED", 1), ("OVERALL", 6)]
