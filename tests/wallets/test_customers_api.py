"""POST and GET /api_gateway/v1/promotions/customers: our customer API (Capillary documents none like it)."""

from __future__ import annotations

import copy

import pytest
from django.urls import resolve
from rest_framework.test import APIClient

from promotions.models import AuditEvent
from promotions_site.timefmt import to_epoch_ms, to_iso
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory
from wallets.apis import customers as apis
from wallets.models import Customer
from wallets.schema import CUSTOMER_CREATE_REQUEST_EXAMPLE, CUSTOMER_RESPONSE_EXAMPLE

URL = "/api_gateway/v1/promotions/customers"


def create(api, body):
    return api.post(URL, body, format="json")


def lookup(api, name, value):
    return api.get(URL, {"identifierName": name, "identifierValue": value})


def expected_body(customer: Customer) -> dict:
    """The documented example, with the ids and times the database gave this customer."""
    body = copy.deepcopy(CUSTOMER_RESPONSE_EXAMPLE)
    body["data"].update(
        customerId=customer.pk,
        createdOn=to_epoch_ms(customer.created_at),
        createdOnISO=to_iso(customer.created_at),
    )
    return body


def test_documented_example_creates_a_customer(api, org):
    # when
    response = create(api, CUSTOMER_CREATE_REQUEST_EXAMPLE)
    # then
    assert response.status_code == 201
    customer = Customer.objects.get()
    assert response.json() == expected_body(customer)
    assert customer.org == org and customer.mobile == "18767431754"
    event = AuditEvent.objects.get(action="customer.create")
    assert event.object_id == str(customer.pk) and event.actor_name == api.api_client.username
    # the audit trail names the identifiers, never their values
    assert event.data == {"identifiers": ["mobile", "email", "externalId"], "source": "INSTORE"}


def test_created_customer_is_found_by_each_identifier(api, org):
    # given
    customer_id = create(api, CUSTOMER_CREATE_REQUEST_EXAMPLE).json()["data"]["customerId"]
    expected = expected_body(Customer.objects.get(pk=customer_id))
    # when / then: the stored spelling and the spellings clients send find the same customer
    for name, value in [
        ("mobile", "18767431754"),
        ("mobile", "+18767431754"),
        ("email", "Asha.Rao@Example.COM"),
        ("externalId", "LOY-000123"),
        ("id", str(customer_id)),
    ]:
        response = lookup(api, name, value)
        assert response.status_code == 200, (name, value)
        assert response.json() == expected, (name, value)


def test_one_identifier_is_enough_and_the_rest_default(api):
    response = create(api, {"externalId": "EXT-1", "mobile": None})
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["mobile"], data["email"], data["externalId"]) == (None, None, "EXT-1")
    assert (data["firstName"], data["lastName"], data["source"]) == ("", "", "INSTORE")


@pytest.mark.parametrize("body", [{}, {"firstName": "Asha"}, {"mobile": None, "email": None}])
def test_no_identifier_is_400_and_writes_nothing(api, body):
    response = create(api, body)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"code": 400, "message": "At least one of mobile, email or externalId is required."}]
    }
    assert not Customer.objects.exists()
    assert not AuditEvent.objects.filter(action="customer.create").exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mobile": "1234567"}, "mobile: Must be 8 to 15 digits, optionally after a leading +."),
        ({"mobile": "1234567890123456"}, "mobile: Must be 8 to 15 digits, optionally after a leading +."),
        ({"mobile": "98765-43210"}, "mobile: Must be 8 to 15 digits, optionally after a leading +."),
        ({"mobile": "++9876543210"}, "mobile: Must be 8 to 15 digits, optionally after a leading +."),
        ({"mobile": ""}, "mobile: This field may not be blank."),
        ({"email": "not-an-email"}, "email: Enter a valid email address."),
        ({"externalId": "x" * 101}, "externalId: Ensure this field has no more than 100 characters."),
        ({"externalId": "x", "source": "POS"}, 'source: "POS" is not a valid choice.'),
        ({"externalId": "x", "firstName": "a" * 101}, "firstName: Ensure this field has no more than 100 characters."),
        ({"externalId": "x", "lastName": -642787}, "lastName: Not a valid string."),
        ({"mobile": 919800000001}, "mobile: Not a valid string."),
        ({"externalId": "x", "lastName": "\t" + "a" * 100}, "lastName: Ensure this field has no more than 100 characters."),
    ],
)  # fmt: skip
def test_invalid_values_are_400_naming_the_field(api, body, message):
    response = create(api, body)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": 400, "message": message}]}
    assert not Customer.objects.exists()


def test_mobile_edges_and_plus_are_accepted(api):
    assert create(api, {"mobile": "12345678"}).json()["data"]["mobile"] == "12345678"
    assert create(api, {"mobile": "+123456789012345"}).json()["data"]["mobile"] == "123456789012345"
    assert create(api, {"externalId": "x" * 100}).status_code == 201


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"mobile": "+18767431754"}, "mobile 18767431754 is already used by another customer of this org."),
        ({"email": "ASHA.RAO@example.com"}, "email asha.rao@example.com is already used by another customer of this org."),
        ({"externalId": "LOY-000123"}, "externalId LOY-000123 is already used by another customer of this org."),
        ({"mobile": "919000000001", "externalId": "LOY-000123"}, "externalId LOY-000123 is already used by another customer of this org."),
    ],
)  # fmt: skip
def test_identifier_already_used_in_the_org_is_409_naming_it(api, second, message):
    # given
    assert create(api, CUSTOMER_CREATE_REQUEST_EXAMPLE).status_code == 201
    # when
    response = create(api, second)
    # then
    assert response.status_code == 409
    assert response.json() == {"errors": [{"code": 409, "message": message}]}
    assert Customer.objects.count() == 1
    assert AuditEvent.objects.filter(action="customer.create").count() == 1


def test_identifiers_are_unique_per_org_only(api, other_org):
    # given: another org's customer with the same identifiers
    theirs = CustomerFactory(
        org=other_org, mobile="18767431754", email="asha.rao@example.com", external_id="LOY-000123"
    )
    # when
    response = create(api, CUSTOMER_CREATE_REQUEST_EXAMPLE)
    # then: created in the caller's org, and each org finds only its own
    assert response.status_code == 201
    assert response.json()["data"]["customerId"] != theirs.pk
    assert (
        lookup(api, "mobile", "18767431754").json()["data"]["customerId"]
        == response.json()["data"]["customerId"]
    )


def test_another_orgs_customer_is_404_like_a_missing_one(api, other_org):
    theirs = CustomerFactory(org=other_org)
    for name, value in [
        ("id", str(theirs.pk)),
        ("mobile", theirs.mobile),
        ("email", theirs.email),
        ("externalId", theirs.external_id),
        ("id", "999999999"),
        ("id", "abc"),
        ("mobile", "12"),
    ]:
        response = lookup(api, name, value)
        assert response.status_code == 404, (name, value)
        assert response.json() == {"errors": [{"code": 404, "message": "Customer not found"}]}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"identifierName": "phone", "identifierValue": "1"}, 'identifierName: "phone" is not a valid choice.'),
        ({"identifierValue": "1"}, "identifierName: This field is required."),
        ({"identifierName": "mobile"}, "identifierValue: This field is required."),
    ],
)  # fmt: skip
def test_lookup_with_bad_parameters_is_400(api, params, message):
    response = api.get(URL, params)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": 400, "message": message}]}


def test_customers_route_reaches_the_customer_views_not_the_promotion_detail(api, org):
    # given: a cart promotion route `<promotion_id>` is included after the wallet routes
    PromotionFactory(org=org)
    # then
    assert resolve(URL).func.view_class is apis.CustomersApi
    assert api.get(URL).json()["errors"][0]["message"] == "identifierName: This field is required."
    assert create(api, {"externalId": "EXT-9"}).status_code == 201


def test_read_only_client_can_look_up_but_not_create(read_api, org):
    customer = CustomerFactory(org=org)
    assert lookup(read_api, "id", str(customer.pk)).status_code == 200
    response = create(read_api, {"externalId": "EXT-1"})
    assert response.status_code == 403 and response.json()["errors"][0]["code"] == 403
    assert Customer.objects.count() == 1


def test_unauthenticated_is_401(db):
    for response in (APIClient().get(URL, {"identifierName": "id", "identifierValue": "1"}),
                     APIClient().post(URL, {"externalId": "x"}, format="json")):  # fmt: skip
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == 401
    assert not Customer.objects.exists()


def test_wrong_method_is_405(api):
    response = api.delete(URL)
    assert response.status_code == 405 and response.json()["errors"][0]["code"] == 405


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creates_with_one_mobile_make_one_customer():
    # given
    org = OrganizationFactory()

    # when: twenty clients create a customer with the same mobile (and each its own email)
    def call(api, index):
        response = create(api, {"mobile": "+919876543210", "email": f"c{index}@example.com"})
        return response.status_code, response.json()

    results = run_concurrently(20, call, org=org)
    # then
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19
    assert Customer.objects.filter(org=org).count() == 1
    assert {body["errors"][0]["message"] for status, body in results if status == 409} == {
        "mobile 919876543210 is already used by another customer of this org."
    }
    assert AuditEvent.objects.filter(org=org, action="customer.create").count() == 1
