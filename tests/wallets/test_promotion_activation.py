"""POST /api_gateway/v1/promotions/{promotionId}/activate|deactivate?customerId=[&earnId=]: a customer's
opt-in to a promotion with customerActivationRequired; every documented code, repeats, the wallet's
promotionStatus, evaluate, org isolation, and the org-level PUT on the same address."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from promotions.rules import org_rules_forget
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, EarnedPromotionFactory, PromotionFactory
from wallets.models import EarnedPromotion, PromotionActivation
from wallets.services import pending_cart_check_register, pending_cart_check_unregister

PROMOTIONS = "/api_gateway/v1/promotions"


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    # Factories do not bump the org's rules_version: each test starts without cached rules.
    org_rules_forget()
    yield
    org_rules_forget()


def activate(api, promotion_id, customer_id, earn_id=None, action="activate"):
    query = f"customerId={customer_id}" + (f"&earnId={earn_id}" if earn_id is not None else "")
    return api.post(f"{PROMOTIONS}/{promotion_id}/{action}?{query}")


def deactivate(api, promotion_id, customer_id, earn_id=None):
    return activate(api, promotion_id, customer_id, earn_id, action="deactivate")


def error(response) -> tuple[int, int, str]:
    [only] = response.json()["errors"]
    return response.status_code, only["code"], only["message"]


# --- Activating and deactivating ---------------------------------------------------------------------


def test_activate_then_repeat_answers_true_and_keeps_one_activation(api, org, customer, optin):
    # when
    first = activate(api, optin.pk, customer.pk)
    again = activate(api, optin.pk, customer.pk)
    # then
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"data": True, "errors": []}
    [row] = PromotionActivation.objects.filter(customer=customer, promotion=optin)
    assert (row.org_id, row.earned_promotion_id) == (org.pk, None)
    events = AuditEvent.objects.filter(action="promotion.customer_activate", object_id=optin.pk)
    assert [e.data["changed"] for e in events.order_by("id")] == [True, False]


def test_deactivate_removes_the_activation_and_repeats_as_a_no_op(api, customer, optin):
    # given
    activate(api, optin.pk, customer.pk)
    # when
    first = deactivate(api, optin.pk, customer.pk)
    again = deactivate(api, optin.pk, customer.pk)
    # then
    assert first.json() == again.json() == {"data": True, "errors": []}
    assert not PromotionActivation.objects.exists()
    events = AuditEvent.objects.filter(action="promotion.customer_deactivate", object_id=optin.pk)
    assert [e.data["changed"] for e in events.order_by("id")] == [True, False]


def test_activation_is_per_customer(api, org, customer, optin):
    # given
    other = CustomerFactory(org=org)
    # when
    activate(api, optin.pk, customer.pk)
    # then
    assert list(PromotionActivation.objects.values_list("customer_id", flat=True)) == [customer.pk]
    assert not PromotionActivation.objects.filter(customer=other).exists()


def test_payment_voucher_is_activated_per_instance(api, org, customer, voucher):
    # given two instances
    first = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher)
    second = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher)
    # when the first is activated (twice), then the second, then the first deactivated
    assert activate(api, voucher.pk, customer.pk, first.pk).status_code == 200
    assert activate(api, voucher.pk, customer.pk, first.pk).status_code == 200
    assert activate(api, voucher.pk, customer.pk, second.pk).status_code == 200
    assert deactivate(api, voucher.pk, customer.pk, first.pk).status_code == 200
    # then only the second is activated
    assert list(PromotionActivation.objects.values_list("earned_promotion_id", flat=True)) == [second.pk]


# --- The documented codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("promotion_type", [PromotionType.POS, PromotionType.CODE])
@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_pos_and_code_promotions_are_707(api, org, customer, promotion_type, action):
    promotion = PromotionFactory(org=org, type=promotion_type)
    response = activate(api, promotion.pk, customer.pk, action=action)
    assert error(response) == (400, 707, f"Cannot {action} preferences for POS or CODE promotions")
    assert not PromotionActivation.objects.exists()


@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_a_promotion_without_activation_required_is_736(api, org, customer, action):
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    status, code, message = error(activate(api, promotion.pk, customer.pk, action=action))
    assert (status, code) == (400, 736)
    assert message.startswith("Unsupported preference change.") and "customerActivationRequired" in message


def test_an_ended_promotion_is_706(api, org, customer):
    promotion = PromotionFactory(
        org=org,
        customer_activation_required=True,
        start_date=timezone.now() - dt.timedelta(days=10),
        end_date=timezone.now() - dt.timedelta(days=1),
    )
    assert error(activate(api, promotion.pk, customer.pk)) == (400, 706, "Promotion has expired.")


def test_earn_id_required_for_payment_voucher_and_refused_for_discount(api, org, customer, optin, voucher):
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    assert error(activate(api, voucher.pk, customer.pk)) == (
        400, 400, "earnId is required for PAYMENT_VOUCHER promotions."
    )  # fmt: skip
    assert error(activate(api, optin.pk, customer.pk, instance.pk)) == (
        400, 400, "earnId is not supported for DISCOUNT promotions."
    )  # fmt: skip
    assert not PromotionActivation.objects.exists()


@pytest.mark.parametrize("whose", ["unknown", "malformed", "other customer", "other promotion", "other org"])
def test_an_earn_id_not_this_customers_instance_of_the_promotion_is_731(
    api, org, other_org, customer, voucher, whose
):
    # given
    if whose == "unknown":
        earn_id = "0" * 24
    elif whose == "malformed":
        earn_id = "not-an-id-and-longer-than-any-id-is"
    elif whose == "other customer":
        earn_id = EarnedPromotionFactory(org=org, customer=CustomerFactory(org=org), promotion=voucher).pk
    elif whose == "other promotion":
        another = PromotionFactory(org=org, type=PromotionType.EARNING, mode="PAYMENT_VOUCHER")
        earn_id = EarnedPromotionFactory(org=org, customer=customer, promotion=another).pk
    else:
        earn_id = EarnedPromotionFactory(org=other_org).pk
    # when / then
    assert error(activate(api, voucher.pk, customer.pk, earn_id)) == (400, 731, f"Invalid earn id: {earn_id}")
    assert not PromotionActivation.objects.exists()


@pytest.mark.parametrize("status", ["REDEEMED", "REVOKED", "EXPIRED"])
def test_an_instance_no_longer_active_is_736(api, org, customer, voucher, status):
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher, status=status)
    code_status, code, message = error(activate(api, voucher.pk, customer.pk, instance.pk))
    assert (code_status, code) == (400, 736) and f"{instance.pk} is {status}" in message


def test_an_instance_past_valid_till_reads_expired_736(api, org, customer, voucher):
    instance = EarnedPromotionFactory(
        org=org, customer=customer, promotion=voucher, valid_till=timezone.now() - dt.timedelta(minutes=1)
    )
    assert error(activate(api, voucher.pk, customer.pk, instance.pk))[1] == 736


def test_deactivate_while_a_pending_cart_holds_the_promotion_is_737(api, customer, optin):
    # given an activation, and a pending cart of the customer holding the promotion
    activate(api, optin.pk, customer.pk)

    def holds(held_customer, promotion, instance) -> bool:
        return (held_customer.pk, promotion.pk, instance) == (customer.pk, optin.pk, None)

    pending_cart_check_register(holds)
    try:
        # when
        response = deactivate(api, optin.pk, customer.pk)
    finally:
        pending_cart_check_unregister(holds)
    # then
    assert error(response) == (
        409, 737, "Unsupported preference change: a pending cart holds the promotion."
    )  # fmt: skip
    assert PromotionActivation.objects.filter(customer=customer, promotion=optin).exists()
    # and once the cart is gone the opt-out goes through
    assert deactivate(api, optin.pk, customer.pk).status_code == 200


@pytest.mark.parametrize(
    "query",
    ["", "customerId=", "customerId=abc", "customerId=0", "customerId=99999999999999999999"],
)
def test_a_missing_or_malformed_customer_id_is_400(api, optin, query):
    response = api.post(f"{PROMOTIONS}/{optin.pk}/activate?{query}")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 400


def test_unknown_promotion_and_customer_are_404(api, customer, optin):
    assert error(activate(api, "0" * 24, customer.pk))[:2] == (404, 404)
    assert error(activate(api, optin.pk, 9_000_000_000))[:2] == (404, 404)


@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_another_orgs_promotion_or_customer_is_404_and_changes_nothing(api, org, other_org, customer, action):
    # given
    theirs = PromotionFactory(org=other_org, customer_activation_required=True)
    their_customer = CustomerFactory(org=other_org)
    mine = PromotionFactory(org=org, customer_activation_required=True)
    # when / then
    assert error(activate(api, theirs.pk, customer.pk, action=action)) == (
        404,
        404,
        "Passed promotion is not found",
    )
    assert error(activate(api, mine.pk, their_customer.pk, action=action)) == (404, 404, "Customer not found")
    assert not PromotionActivation.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="promotion.customer_").exists()


def test_read_only_client_is_403(read_api, customer, optin):
    response = activate(read_api, optin.pk, customer.pk)
    assert response.status_code == 403
    assert not PromotionActivation.objects.exists()


def test_the_org_level_put_still_answers_on_the_same_address(api, org):
    promotion = PromotionFactory(org=org)
    assert api.put(f"{PROMOTIONS}/{promotion.pk}/deactivate").json() == {"data": True, "errors": []}
    promotion.refresh_from_db()
    assert promotion.active is False
    assert api.put(f"{PROMOTIONS}/{promotion.pk}/activate").json() == {"data": True, "errors": []}
    promotion.refresh_from_db()
    assert promotion.active is True
    assert not PromotionActivation.objects.exists()


# --- What an activation changes: the wallet and evaluate ---------------------------------------------


def wallet_statuses(api, customer) -> dict[str, str]:
    response = api.get(f"{PROMOTIONS}/customer/{customer.pk}")
    assert response.status_code == 200, response.content
    return {item["earnedPromotionId"]: item["promotionStatus"] for item in response.json()["data"]}


def test_wallet_shows_an_instance_inactive_until_activated(api, org, customer, optin):
    # given
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    plain = EarnedPromotionFactory(org=org, customer=customer, promotion=PromotionFactory(org=org))
    # then
    assert wallet_statuses(api, customer) == {instance.pk: "INACTIVE", plain.pk: "ACTIVE"}
    activate(api, optin.pk, customer.pk)
    assert wallet_statuses(api, customer) == {instance.pk: "ACTIVE", plain.pk: "ACTIVE"}
    deactivate(api, optin.pk, customer.pk)
    assert wallet_statuses(api, customer)[instance.pk] == "INACTIVE"


def test_wallet_shows_each_payment_voucher_instance_by_its_own_activation(api, org, customer, voucher):
    first = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher)
    second = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher)
    activate(api, voucher.pk, customer.pk, second.pk)
    assert wallet_statuses(api, customer) == {first.pk: "INACTIVE", second.pk: "ACTIVE"}


def applied(api, customer) -> list[str]:
    body = {"amount": "1000", "customerId": customer.pk, "cartItems": [{"sku": "SKU-1", "amount": "1000", "qty": "1"}]}  # fmt: skip
    response = api.post(f"{PROMOTIONS}/evaluate", body, format="json")
    assert response.status_code == 200, response.content
    return [p["promotionId"] for p in response.json()["data"]["appliedPromotions"]]


def test_evaluate_offers_the_promotion_only_while_activated(api, org, customer, optin):
    # given the customer holds an instance
    EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    # then: not offered before the opt-in, offered after it, not after the opt-out
    assert applied(api, customer) == []
    activate(api, optin.pk, customer.pk)
    assert applied(api, customer) == [optin.pk]
    deactivate(api, optin.pk, customer.pk)
    assert applied(api, customer) == []


def test_another_customers_activation_does_not_count(api, org, customer, optin):
    other = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    EarnedPromotionFactory(org=org, customer=other, promotion=optin)
    activate(api, optin.pk, other.pk)
    assert applied(api, customer) == []
    assert applied(api, other) == [optin.pk]


def test_deleting_an_instance_removes_its_activation(api, org, customer, voucher):
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher)
    activate(api, voucher.pk, customer.pk, instance.pk)
    EarnedPromotion.objects.filter(pk=instance.pk).delete()
    assert not PromotionActivation.objects.exists()


# --- Concurrency ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_make_one_row(org, customer, optin):
    # when ten requests activate at once
    responses = run_concurrently(10, lambda api, _: activate(api, optin.pk, customer.pk), org=org)
    # then every one succeeds and one activation exists, recorded as a change once
    assert [r.status_code for r in responses] == [200] * 10
    assert PromotionActivation.objects.filter(customer=customer, promotion=optin).count() == 1
    events = AuditEvent.objects.filter(action="promotion.customer_activate", object_id=optin.pk)
    assert sorted(e.data["changed"] for e in events) == [False] * 9 + [True]
