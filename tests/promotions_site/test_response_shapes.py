"""Every success body is the one the schema documents, field by field and key order included.

Each response body is a `Shape` (`<app>/serializers.py`) from which both its renderer and its schema
component are derived; this test checks the result end to end, through the views. It calls every operation of the published schema (`/api/schema/`) once with
a body that fills its optional parts (issueBulk's `errors`, earn/bulk's `errorDetails`, the wallet's
`restrictions`, revokeEarn's `errors`), then walks the answer against the operation's documented
success schema: each object has exactly the documented keys, in the documented order (an optional one
may be absent), every required key, and each value of the documented type, enum or null.
"""

from __future__ import annotations

import copy
import datetime as dt
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import Organization, PromoCode, PromotionRestriction, PromotionType
from promotions.rules import org_rules_forget
from promotions.schema import PROMOTION_CREATE_EXAMPLE
from promotions_site.timefmt import to_epoch_ms
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    TillFactory,
)
from tests.redemptions.support import body as redemption_body
from tests.redemptions.support import line

PROMOTIONS = "/api_gateway/v1/promotions"


class Mismatch(AssertionError):
    pass


SCALARS = {
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
}


class ShapeChecker:
    """Walks a JSON value against an OpenAPI 3.0 schema as drf-spectacular writes it."""

    def __init__(self, document: dict):
        self.components = document["components"]["schemas"]

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def check(self, value, schema: dict, path: str) -> None:
        schema = self.resolve(schema)
        if value is None and schema.get("nullable"):
            # drf-spectacular writes a nullable reference as `allOf: [$ref]` with `nullable: true`
            # beside it: null is allowed whatever the referenced component says.
            return
        for part in schema.get("allOf", []):
            self.check(value, part, path)
        if "oneOf" in schema or "anyOf" in schema:
            self._check_one_of(value, schema.get("oneOf") or schema["anyOf"], path)
            return
        if value is None:
            if not (schema.get("nullable") or None in schema.get("enum", [])):
                raise Mismatch(f"{path}: null where the schema does not allow it")
            return
        if "enum" in schema and value not in schema["enum"]:
            raise Mismatch(f"{path}: {value!r} is not one of {schema['enum']}")
        kind = schema.get("type")
        if kind == "object":
            self._check_object(value, schema, path)
        elif kind == "array":
            if not isinstance(value, list):
                raise Mismatch(f"{path}: {value!r} is not an array")
            for index, item in enumerate(value):
                self.check(item, schema.get("items", {}), f"{path}[{index}]")
        elif kind in SCALARS and not SCALARS[kind](value):
            raise Mismatch(f"{path}: {value!r} is not of type {kind}")

    def _check_one_of(self, value, options: list[dict], path: str) -> None:
        failures = []
        for option in options:
            try:
                self.check(value, option, path)
                return
            except Mismatch as exc:
                failures.append(str(exc))
        raise Mismatch(" / ".join(failures))

    def _check_object(self, value, schema: dict, path: str) -> None:
        if not isinstance(value, dict):
            raise Mismatch(f"{path}: {value!r} is not an object")
        properties = schema.get("properties")
        if properties is not None:
            keys, documented = list(value), list(properties)
            if keys != [key for key in documented if key in value]:
                raise Mismatch(f"{path}: keys {keys}, documented {documented} (in this order)")
            missing = [key for key in schema.get("required", []) if key not in value]
            if missing:
                raise Mismatch(f"{path}: required {missing} missing")
            for key in keys:
                self.check(value[key], properties[key], f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                self.check(item, extra, f"{path}.{key}")


@pytest.fixture
def published(db):
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def checked(published):
    """`checked(response, path, method)`: fails unless the body is the operation's documented one."""
    checker = ShapeChecker(published)
    seen = set()

    def check(response, path: str, method: str):
        status = str(response.status_code)
        responses = published["paths"][path][method]["responses"]
        assert status.startswith("2") and status in responses, (path, method, status, response.content)
        checker.check(response.json(), responses[status]["content"]["application/json"]["schema"], "body")
        seen.add((path, method))
        return response.json()

    check.seen = seen
    return check


def test_every_success_body_is_the_documented_shape(api, org, published, checked):
    # given: a customer with an instance of a CUSTOMER promotion, limits on every wallet level
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, max_issuance_per_customer=1)
    for level in ("Customer", "Promotion"):
        PromotionRestrictionFactory(promotion=promotion, level=level, kpi="REDEMPTION", limit=2)
    PromotionRestrictionFactory(
        promotion=promotion, level="Cart", kpi=PromotionRestriction.Kpi.DISCOUNT, limit=500
    )
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=1)
    PromotionRestrictionFactory(promotion=earning, level="Earn", kpi="REDEMPTION", limit=1)
    program = LoyaltyProgramFactory(org=org)
    loyalty = LoyaltyPromotionFactory(org=org, program=program)
    customer_path = "/api_gateway/v1/promotions/customer/{customer_id}"

    # then: promotions and the token
    create = copy.deepcopy(PROMOTION_CREATE_EXAMPLE)
    create["startDateISO"] = (timezone.now() - dt.timedelta(days=1)).isoformat()
    create["endDateISO"] = (timezone.now() + dt.timedelta(days=30)).isoformat()
    # Both paths serve both methods; the schema documents create without the slash, the list with it,
    # and each path's other method as a deprecated alias.
    created = checked(api.post(f"{PROMOTIONS}/", create, format="json"), f"{PROMOTIONS}/", "post")
    create["name"] = "Another name"
    create["storeCriteria"] = {"type": "STORE", "values": [101, 102], "operator": "IN"}  # null in the first
    checked(api.post(PROMOTIONS, create, format="json"), PROMOTIONS, "post")
    checked(api.get(f"{PROMOTIONS}/"), f"{PROMOTIONS}/", "get")
    checked(api.get(PROMOTIONS), PROMOTIONS, "get")
    detail = f"{PROMOTIONS}/{{promotion_id}}"
    new_id = created["data"]["id"]
    checked(api.get(f"{PROMOTIONS}/{new_id}"), detail, "get")
    checked(api.put(f"{PROMOTIONS}/{new_id}", {"priority": 2}, format="json"), detail, "put")
    checked(api.put(f"{PROMOTIONS}/{new_id}/deactivate"), f"{detail}/deactivate", "put")
    checked(api.put(f"{PROMOTIONS}/{new_id}/activate"), f"{detail}/activate", "put")
    config = checked(
        api.get(f"{PROMOTIONS}/config?includeExpired=true&includeInactive=true"),
        f"{PROMOTIONS}/config",
        "get",
    )
    assert config["data"] and config["data"][0]["promotionRestrictions"] is not None
    till = TillFactory(org=org)
    at_till = checked(api.get(f"{PROMOTIONS}/till/{till.pk}"), f"{PROMOTIONS}/till/{{till_id}}", "get")
    assert at_till["data"]
    token = {"key": api.api_client.username, "secret": api.api_client.plain_secret}
    checked(
        APIClient().post("/v3/oauth/token/generate", token, format="json"), "/v3/oauth/token/generate", "post"
    )

    # then: a customer's opt-in to a promotion that requires it
    optin = PromotionFactory(org=org, customer_activation_required=True)
    optin_query = f"customerId={customer.pk}"
    checked(api.post(f"{PROMOTIONS}/{optin.pk}/activate?{optin_query}"), f"{detail}/activate", "post")
    checked(api.post(f"{PROMOTIONS}/{optin.pk}/deactivate?{optin_query}"), f"{detail}/deactivate", "post")

    # then: customers
    customers = f"{PROMOTIONS}/customers"
    checked(api.post(customers, {"mobile": "+919876543210"}, format="json"), customers, "post")
    lookup = urlencode({"identifierName": "id", "identifierValue": customer.pk})
    checked(api.get(f"{customers}?{lookup}"), customers, "get")

    # then: issuing and earning, each with its optional parts (errors, errorDetails)
    issued = checked(
        api.post(
            f"{PROMOTIONS}/{promotion.pk}/issueBulk?contextId=C-1", [customer.pk, 999_999], format="json"
        ),
        f"{detail}/issueBulk",
        "post",
    )
    assert "errors" in issued
    checked(
        api.post(
            f"{PROMOTIONS}/{promotion.pk}/issueBulk?contextId=C-2",
            [CustomerFactory(org=org).pk],
            format="json",
        ),
        f"{detail}/issueBulk",
        "post",
    )
    event = {
        "eventTimeISO": timezone.now().isoformat(),
        "eventDetails": {"id": "BILL-1", "type": "TransactionAdd"},
    }
    earned = checked(
        api.post(
            f"{PROMOTIONS}/{earning.pk}/earn",
            {"customerId": customer.pk, "earnedFromType": "ACTIVITY", "earnedFromId": "BILL-1", **event},
            format="json",
        ),
        f"{detail}/earn",
        "post",
    )
    bulk = checked(
        api.post(
            f"{PROMOTIONS}/earn/bulk",
            {
                "customerId": customer.pk,
                "earnedFromType": "ACTIVITY",
                "eventTime": to_epoch_ms(timezone.now()),
                "eventDetails": {"id": "BILL-2", "type": "ACTIVITY"},
                "earnedPromotions": [{"promotionId": earning.pk, "earnCount": 1, "earnedFromId": "BILL-2"}],
            },
            format="json",
        ),
        f"{PROMOTIONS}/earn/bulk",
        "post",
    )
    assert "errorDetails" in bulk["data"][0]

    # then: the wallet, with and without its restrictions
    wallet = checked(
        api.get(f"{PROMOTIONS}/customer/{customer.pk}?includeRedemptions=true"), customer_path, "get"
    )
    assert all("restrictions" in item for item in wallet["data"])
    checked(api.get(f"{PROMOTIONS}/customer/{customer.pk}"), customer_path, "get")

    # then: promo codes: a look-up with an unknown code, a link, and the wallet with the linked code
    code_promotion = PromotionFactory(org=org, type=PromotionType.CODE)
    PromotionRestrictionFactory(promotion=code_promotion, level="Code", kpi="REDEMPTION", limit=1)
    PromotionRestrictionFactory(
        promotion=code_promotion, level="Code", kpi="DISCOUNT", limit=500,
        window_type="FIXED", fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )  # fmt: skip
    PromoCode.objects.create(org=org, promotion=code_promotion, code="SHAPE1")
    looked_up = checked(
        api.get(f"{PROMOTIONS}/code?codes=shape1,NOPE&mode=DISCOUNT"), f"{PROMOTIONS}/code", "get"
    )
    assert looked_up["data"] and looked_up["errors"]
    link = {"customerId": customer.pk, "code": "shape1", "mode": "DISCOUNT"}
    checked(api.post(f"{PROMOTIONS}/code/link", link, format="json"), f"{PROMOTIONS}/code/link", "post")
    wallet = checked(
        api.get(f"{PROMOTIONS}/customer/{customer.pk}?includeRedemptions=true&limit=100"),
        customer_path,
        "get",
    )
    assert any(item.get("promoCode") == "SHAPE1" and item["restrictions"]["Code"] for item in wallet["data"])

    # then: evaluate, with a line promotion through a wallet instance (earnedPromotionId), code logs
    # and a CASH tender
    line_promotion = PromotionFactory(
        # exclusive and ending first: it outranks the seeded cart promotion, which it would not stack with
        org=org, type=PromotionType.CUSTOMER, end_date=timezone.now() + dt.timedelta(days=10),
        condition={"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["SKU-1"]}], "kpi": "NONE"}},
        action={"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 10, "includeItemsFromConditionSet": True}},
    )  # fmt: skip
    EarnedPromotionFactory(org=org, customer=customer, promotion=line_promotion)
    cart = {
        "amount": "1000", "customerId": customer.pk, "cartItems": [{"sku": "SKU-1", "amount": "1000", "qty": "1"}],
        "promoCodes": ["CODE1"], "paymentVouchers": ["VOUCHER1"], "cartTenders": [{"identifier": "CreditCard", "amount": "100"}],
    }  # fmt: skip
    evaluated = checked(
        api.post(f"{PROMOTIONS}/evaluate", cart, format="json"), f"{PROMOTIONS}/evaluate", "post"
    )
    assert evaluated["data"]["cartItems"][0]["appliedPromotions"][0]["earnedPromotionId"]
    assert [tender["identifier"] for tender in evaluated["data"]["cartTenders"]] == ["CreditCard", "CASH"]

    # then: redemptions
    redemptions = f"{PROMOTIONS}/redemptions"
    sale = redemption_body(customer, txn="TXN-SHAPE", line_items=[line(promotion, instance)], redemptions=[])
    checked(api.post(redemptions, sale, format="json"), redemptions, "post")
    checked(api.get(f"{redemptions}?includeReversed=true"), redemptions, "get")
    reverse = {"transactionIdentifier": "TXN-SHAPE", "reason": "returned"}
    checked(api.post(f"{redemptions}/reverse", reverse, format="json"), f"{redemptions}/reverse", "post")

    # then: revokeEarn, one entry revoked and one refused
    other = EarnedPromotionFactory(org=org, customer=customer, promotion=earning, kind="EARNED")
    revoke = {
        "customerId": customer.pk,
        "earnRevokeDetails": [
            {"promotionId": earning.pk, "earnIds": [earned["data"]["id"], other.pk]},
            {"promotionId": promotion.pk, "earnIds": ["not-an-id"]},
        ],
    }
    revoked = checked(
        api.post(f"{PROMOTIONS}/revokeEarn", revoke, format="json"), f"{PROMOTIONS}/revokeEarn", "post"
    )
    assert revoked["errors"]

    # then: the v2 loyalty issue
    query = urlencode({"identifierName": "id", "identifierValue": customer.pk, "source": "INSTORE"})
    body = {"programId": program.pk, "promotionId": loyalty.pk}
    checked(api.post(f"/v2/promotion/issue?{query}", body, format="json"), "/v2/promotion/issue", "post")

    # then: cart locks: a cart opened under REDEMPTION_WITH_CART_EVALUATION, listed, and cancelled
    # through each path and method (the first closes it, the others answer the same)
    Organization.objects.filter(pk=org.pk).update(redemption_strategy="REDEMPTION_WITH_CART_EVALUATION")
    shopper = CustomerFactory(org=org)
    PromotionFactory(org=org, type=PromotionType.POS, action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 10}})  # fmt: skip
    org_rules_forget()  # the factory's promotion did not bump the org's rules version
    opened = api.post(f"{PROMOTIONS}/evaluate", {**cart, "customerId": shopper.pk}, format="json")
    assert opened.status_code == 200, opened.content
    evaluation_id = opened.json()["data"]["evaluationId"]
    pending = checked(
        api.get(f"{PROMOTIONS}/customer/{shopper.pk}/evaluations/pending_carts"),
        f"{customer_path}/evaluations/pending_carts",
        "get",
    )
    assert [cart["cartEvaluationId"] for cart in pending["data"]["tempRedemptionDetails"]] == [evaluation_id]
    for word in ("evaluations", "evaluation"):
        for method in ("put", "post"):
            checked(
                getattr(api, method)(f"{PROMOTIONS}/customer/{shopper.pk}/{word}/{evaluation_id}/cancel"),
                f"{customer_path}/{word}/{{evaluation_id}}/cancel",
                method,
            )

    # and: every operation of the schema was called
    operations = {(path, method) for path, methods in published["paths"].items() for method in methods}
    assert operations - checked.seen == set()


def test_the_checker_refuses_a_body_out_of_its_shape(published):
    checker = ShapeChecker(published)
    item = {"$ref": "#/components/schemas/IssuedPromotion"}
    good = {
        "id": "x",
        "customerId": 1,
        "promotionId": "p",
        "earnedFromId": "c",
        "eventTime": 1,
        "validTill": 2,
    }
    checker.check(good, item, "body")
    for bad in (
        {key: good[key] for key in reversed(good)},  # another order
        {**good, "extra": 1},  # an undocumented key
        {key: value for key, value in good.items() if key != "validTill"},  # a required key missing
        {**good, "customerId": "1"},  # a string for an integer
        {**good, "id": None},  # null where not nullable
    ):
        with pytest.raises(Mismatch):
            checker.check(bad, item, "body")
