"""POST /v2/promotion/issue?identifierName=&identifierValue=&source=&type=&accountId=."""

from __future__ import annotations

import copy
import datetime as dt
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import AuditEvent, LoyaltyPromotion
from tests.concurrency import run_concurrently
from tests.factories import (
    CustomerFactory,
    IssualFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    OrganizationFactory,
)
from wallets.models import Issual, LoyaltyEarnedPromotion
from wallets.schema import (
    LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE,
    LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE,
    LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE,
    LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE,
    LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE,
    LOYALTY_ISSUE_RESPONSE_EXAMPLE,
)

# The documented endpoint example.
SEED_QUERY = {"identifierName": "mobile", "identifierValue": "18767431754", "source": "INSTORE"}


def issue(api, body, **query):
    params = {**SEED_QUERY, **query}
    params = {key: value for key, value in params.items() if value is not None}
    return api.post(f"/v2/promotion/issue?{urlencode(params)}", body, format="json")


def v2_error(code: int, message: str) -> dict:
    return {"warnings": [], "errors": [{"status": False, "code": code, "message": message}]}


def expected_issued(program, promotion, issual_id, earned_id) -> dict:
    """The documented Response 200 with this test's ids."""
    body = copy.deepcopy(LOYALTY_ISSUE_RESPONSE_EXAMPLE)
    body["sideEffects"][0].update(
        programId=program.pk, issualId=issual_id, earnedId=earned_id, promotionId=promotion.pk
    )
    return body


@pytest.fixture
def program(org):
    return LoyaltyProgramFactory(org=org)


@pytest.fixture
def promotion(org, program):
    return LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=3)


@pytest.fixture
def customer(org):
    return CustomerFactory(org=org, mobile="18767431754")


def body_for(program, promotion) -> dict:
    return {"programId": program.pk, "promotionId": promotion.pk}


def nothing_written() -> bool:
    return not (
        Issual.objects.exists()
        or LoyaltyEarnedPromotion.objects.exists()
        or AuditEvent.objects.filter(action__startswith="loyalty_promotion.").exists()
    )


def test_documented_example_issues_and_answers_the_documented_body(api, org, program, promotion, customer):
    # when: the documented request
    response = issue(api, body_for(program, promotion))
    # then
    assert response.status_code == 200
    issual = Issual.objects.get()
    earned = LoyaltyEarnedPromotion.objects.get()
    assert response.json() == expected_issued(program, promotion, issual.pk, earned.pk)
    assert (issual.customer, issual.program, issual.loyalty_promotion, issual.source) == (
        customer,
        program,
        promotion,
        "INSTORE",
    )
    assert (earned.issual, earned.customer, earned.org) == (issual, customer, org)
    event = AuditEvent.objects.get(action="loyalty_promotion.issue")
    assert event.object_id == str(promotion.pk) and event.actor_name == api.api_client.username
    assert event.data == {
        "customerId": customer.pk,
        "programId": program.pk,
        "issualId": issual.pk,
        "earnedId": earned.pk,
        "enrolled": True,
        "source": "INSTORE",
    }


def test_not_idempotent_each_call_issues_again_until_the_limit(api, program, promotion, customer):
    # given: maxIssuancePerCustomer 3
    bodies = [issue(api, body_for(program, promotion)).json() for _ in range(3)]
    # then: one issual, three earns
    issual = Issual.objects.get()
    earned_ids = list(LoyaltyEarnedPromotion.objects.order_by("id").values_list("id", flat=True))
    assert bodies == [expected_issued(program, promotion, issual.pk, earned_id) for earned_id in earned_ids]
    assert len(earned_ids) == 3
    # when: the fourth
    response = issue(api, body_for(program, promotion))
    # then: the documented 8890 warning, and nothing more
    assert response.status_code == 200
    assert response.json() == LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE
    assert LoyaltyEarnedPromotion.objects.count() == 3
    assert AuditEvent.objects.filter(action="loyalty_promotion.issue").count() == 3
    assert [e.data["enrolled"] for e in AuditEvent.objects.filter(action="loyalty_promotion.issue")] == [
        False,
        False,
        True,
    ]


def test_unlimited_promotion_issues_every_time(api, org, program, customer):
    promotion = LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=-1)
    for _ in range(6):
        assert issue(api, body_for(program, promotion)).json()["sideEffects"][0]["earnedId"] is not None
    assert LoyaltyEarnedPromotion.objects.count() == 6 and Issual.objects.count() == 1


def test_limit_counts_per_customer(api, org, program, customer):
    promotion = LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=1)
    other = CustomerFactory(org=org)
    assert issue(api, body_for(program, promotion)).json()["sideEffects"]
    assert issue(api, body_for(program, promotion)).json() == LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE
    assert issue(
        api, body_for(program, promotion), identifierName="id", identifierValue=str(other.pk)
    ).json()["sideEffects"]
    assert LoyaltyEarnedPromotion.objects.filter(customer=other).count() == 1


@pytest.mark.parametrize("state", ["inactive", "not started", "ended"])
def test_promotion_that_cannot_be_issued_now_is_8890_and_writes_nothing(api, org, program, customer, state):
    # given
    now = timezone.now()
    promotion = LoyaltyPromotionFactory(
        org=org,
        program=program,
        active=state != "inactive",
        start_date=now + dt.timedelta(days=1) if state == "not started" else now - dt.timedelta(days=9),
        end_date=now - dt.timedelta(days=1) if state == "ended" else now + dt.timedelta(days=9),
    )
    # when
    response = issue(api, body_for(program, promotion))
    # then
    assert response.status_code == 200
    assert response.json() == LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE
    assert nothing_written()


@pytest.mark.parametrize(
    ("name", "value"),
    [("mobile", "+18767431754"), ("email", "ASHA@example.com"), ("externalId", "LOY-7"), ("id", None)],
)
def test_customer_found_by_each_identifier(api, org, program, promotion, name, value):
    customer = CustomerFactory(org=org, mobile="18767431754", email="asha@example.com", external_id="LOY-7")
    response = issue(
        api, body_for(program, promotion), identifierName=name, identifierValue=value or customer.pk
    )
    assert response.status_code == 200 and response.json()["sideEffects"]
    assert LoyaltyEarnedPromotion.objects.get().customer == customer


def test_enrol_for_loyalty_earning_creates_the_issual_only(api, org, program, customer):
    # given: an enrol-and-issue promotion
    promotion = LoyaltyPromotionFactory(
        org=org, program=program, type=LoyaltyPromotion.Type.LOYALTY_EARNING, max_issuance_per_customer=1
    )
    # when: enrolled twice
    first = issue(api, body_for(program, promotion), source="MOBILE_APP")
    second = issue(api, body_for(program, promotion))
    # then: the same issual, no earn (it follows the promotion's criteria later)
    issual = Issual.objects.get()
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == expected_issued(program, promotion, issual.pk, None)
    assert issual.source == "MOBILE_APP"
    assert not LoyaltyEarnedPromotion.objects.exists()
    assert [e.data["enrolled"] for e in AuditEvent.objects.filter(action="loyalty_promotion.enrol")] == [
        False,
        True,
    ]


def test_existing_issual_is_reused(api, org, program, promotion, customer):
    # given: the customer was enrolled before (by another source)
    issual = IssualFactory(org=org, customer=customer, loyalty_promotion=promotion, source="WEBSITE")
    # when
    response = issue(api, body_for(program, promotion))
    # then
    assert response.json()["sideEffects"][0]["issualId"] == issual.pk
    assert Issual.objects.get().source == "WEBSITE"


@pytest.mark.parametrize("missing", ["identifierName", "identifierValue", "source"])
@pytest.mark.parametrize("how", ["absent", "blank"])
def test_each_missing_mandatory_parameter_is_11013(api, program, promotion, customer, missing, how):
    response = issue(api, body_for(program, promotion), **{missing: None if how == "absent" else " "})
    assert response.status_code == 400
    assert response.json() == LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE
    assert nothing_written()


def test_11013_comes_before_every_other_check(api):
    response = issue(api, {}, identifierName=None, type="USERGROUP2")
    assert response.json() == LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE


@pytest.mark.parametrize("entity_type", ["USERGROUP2", "customer", "ORG"])
def test_type_other_than_customer_is_1212(api, program, promotion, customer, entity_type):
    response = issue(api, body_for(program, promotion), type=entity_type)
    assert response.status_code == 400
    assert response.json() == v2_error(1212, "Entity type invalid.")
    assert nothing_written()


def test_type_customer_and_account_id_are_accepted(api, program, promotion, customer):
    response = issue(api, body_for(program, promotion), type="CUSTOMER", accountId="acc-1")
    assert response.status_code == 200 and response.json()["sideEffects"]


def test_unknown_identifier_name_or_source_is_400(api, program, promotion, customer):
    response = issue(api, body_for(program, promotion), identifierName="phone")
    assert response.status_code == 400
    assert response.json() == v2_error(400, "identifierName must be one of: mobile, email, externalId, id.")
    response = issue(api, body_for(program, promotion), source="POS")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400
    assert response.json()["errors"][0]["message"].startswith("source must be one of: FACEBOOK, WEB_ENGAGE,")
    assert nothing_written()


@pytest.mark.parametrize("program_id", ["missing", None, "abc", 1.5, True, -1, 0, 999_999_999, "foreign"])
def test_invalid_program_is_1101(api, other_org, promotion, customer, program_id):
    # given
    body = {"promotionId": promotion.pk}
    if program_id == "foreign":
        program_id = LoyaltyProgramFactory(org=other_org).pk
    if program_id != "missing":
        body["programId"] = program_id
    # when
    response = issue(api, body)
    # then
    assert response.status_code == 400
    assert response.json() == LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE
    assert nothing_written()


@pytest.mark.parametrize("case", ["missing", "null", "text", "unknown", "other program", "other org"])
def test_invalid_promotion_is_8874(api, org, other_org, program, customer, case):
    # given
    promotion_id = {
        "null": None,
        "text": "65777x",
        "unknown": 999_999_999,
        "other program": lambda: LoyaltyPromotionFactory(org=org).pk,
        "other org": lambda: LoyaltyPromotionFactory(org=other_org).pk,
    }.get(case)
    body = {"programId": program.pk}
    if case != "missing":
        body["promotionId"] = promotion_id() if callable(promotion_id) else promotion_id
    # when
    response = issue(api, body)
    # then
    assert response.status_code == 400
    assert response.json() == LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE
    assert nothing_written()


def test_ids_as_strings_of_digits_are_accepted(api, program, promotion, customer):
    response = issue(api, {"programId": str(program.pk), "promotionId": str(promotion.pk)})
    assert response.status_code == 200 and response.json()["sideEffects"][0]["programId"] == program.pk


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mobile", "19999999999"),
        ("id", "999999999"),
        ("id", "abc"),
        ("email", "nobody@example.com"),
        # found by the fuzzer: a NUL reached PostgreSQL, which refuses it in text (a 500)
        ("externalId", "EXT\x00M"),
    ],
)
def test_unknown_customer_is_8015(api, program, promotion, customer, name, value):
    response = issue(api, body_for(program, promotion), identifierName=name, identifierValue=value)
    assert response.status_code == 400
    assert response.json() == LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE
    assert nothing_written()


def test_another_orgs_customer_is_8015(api, other_org, program, promotion):
    theirs = CustomerFactory(org=other_org, mobile="18767431754")
    for name, value in [("mobile", "18767431754"), ("id", str(theirs.pk))]:
        response = issue(api, body_for(program, promotion), identifierName=name, identifierValue=value)
        assert response.json() == LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE
    assert nothing_written()


def test_body_that_is_not_an_object_is_400(api, customer):
    response = issue(api, [1, 2])
    assert response.status_code == 400
    assert response.json() == v2_error(400, "The body must be a JSON object.")


def test_malformed_json_is_400_in_the_v2_envelope(api, customer):
    response = api.post(
        "/v2/promotion/issue?" + urlencode(SEED_QUERY), "{bad", content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["warnings", "errors"] and body["errors"][0]["code"] == 400


def test_read_only_client_is_403_in_the_v2_envelope(read_api, program, promotion, customer):
    response = issue(read_api, body_for(program, promotion))
    assert response.status_code == 403
    assert response.json() == v2_error(403, "This API client has read access only; writes need write access.")
    assert nothing_written()


def test_unauthenticated_is_401_in_the_v2_envelope(program, promotion, customer):
    response = issue(APIClient(), body_for(program, promotion))
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert response.json() == v2_error(401, "Authentication credentials were not provided.")
    assert nothing_written()


def test_get_is_405_in_the_v2_envelope(api):
    response = api.get("/v2/promotion/issue?" + urlencode(SEED_QUERY))
    assert response.status_code == 405
    assert response.json() == v2_error(405, 'Method "GET" not allowed.')


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_issues_never_exceed_max_issuance_per_customer():
    # given: a promotion allowing 5 issues per customer, and a customer not yet enrolled
    org = OrganizationFactory()
    program = LoyaltyProgramFactory(org=org)
    promotion = LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=5)
    CustomerFactory(org=org, mobile="18767431754")

    # when
    def call(api, index):
        response = issue(api, body_for(program, promotion))
        return response.status_code, response.json()

    results = run_concurrently(20, call, org=org)
    # then: exactly five earns on one issual, and fifteen documented warnings
    assert [status for status, _ in results] == [200] * 20
    issued = [body for _, body in results if body["sideEffects"]]
    refused = [body for _, body in results if not body["sideEffects"]]
    assert len(issued) == 5 and refused == [LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE] * 15
    issual = Issual.objects.get(loyalty_promotion=promotion)
    earned_ids = set(
        LoyaltyEarnedPromotion.objects.filter(loyalty_promotion=promotion).values_list("id", flat=True)
    )
    assert len(earned_ids) == 5
    assert sorted(body["sideEffects"][0]["earnedId"] for body in issued) == sorted(earned_ids)
    assert {body["sideEffects"][0]["issualId"] for body in issued} == {issual.pk}


def test_schema_documents_the_seed_examples_in_the_v2_envelope(db):
    # when
    schema = APIClient().get("/api/schema/?format=json").json()
    # then
    operation = schema["paths"]["/v2/promotion/issue"]["post"]
    ok = operation["responses"]["200"]["content"]["application/json"]["examples"]
    assert [e["value"] for e in ok.values()] == [
        LOYALTY_ISSUE_RESPONSE_EXAMPLE,
        LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE,
    ]
    bad = [
        e["value"] for e in operation["responses"]["400"]["content"]["application/json"]["examples"].values()
    ]
    for seed_body in (
        LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE,
        LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE,
        LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE,
        LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE,
    ):
        assert seed_body in bad
    assert v2_error(1212, "Entity type invalid.") in bad
    for status in ("401", "403", "405", "500"):
        [example] = operation["responses"][status]["content"]["application/json"]["examples"].values()
        assert (
            list(example["value"]) == ["warnings", "errors"]
            and example["value"]["errors"][0]["status"] is False
        )
    assert {p["name"] for p in operation["parameters"] if p.get("required")} == {
        "identifierName",
        "identifierValue",
        "source",
    }
