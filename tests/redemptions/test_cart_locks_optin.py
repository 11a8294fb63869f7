"""Cart locks and customer opt-in together: a customer cannot opt out of a promotion a pending cart of
theirs applied (737); once the cart is closed the opt-out goes through (docs/cart-locks.md, docs/api.md)."""

from __future__ import annotations

import pytest

from promotions.rules import org_rules_forget
from redemptions.models import CartLock
from tests.factories import CustomerFactory, EarnedPromotionFactory, OrganizationFactory, PromotionFactory
from tests.redemptions.test_cart_locks import WITH_EVALUATION, applied, cancel, evaluate
from tests.wallets.test_promotion_activation import activate, deactivate, error


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def org(db):
    return OrganizationFactory(redemption_strategy=WITH_EVALUATION)


def cart(customer) -> dict:
    return {
        "amount": "200.00",
        "customerId": customer.pk,
        "cartItems": [{"sku": "A", "amount": "200.00", "qty": "1"}],
    }


def test_opting_out_of_a_promotion_a_pending_cart_applied_is_737_until_the_cart_closes(org, api, optin):
    # given: an activated opt-in promotion, applied by the customer's open cart
    customer = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    assert activate(api, optin.pk, customer.pk).status_code == 200
    org_rules_forget()
    response = evaluate(api, cart(customer))
    assert response.status_code == 200, response.content
    assert applied(response) == [optin.pk]
    evaluation_id = response.json()["data"]["evaluationId"]
    assert CartLock.objects.get().status == "OPEN"

    # when: the customer opts out
    refused = deactivate(api, optin.pk, customer.pk)

    # then: 737, the activation stays; once the cart is cancelled the opt-out goes through
    assert error(refused) == (409, 737, "Unsupported preference change: a pending cart holds the promotion.")
    assert cancel(api, customer, evaluation_id).status_code == 200
    assert deactivate(api, optin.pk, customer.pk).status_code == 200


def test_a_pending_cart_of_another_promotion_does_not_hold_the_opt_out(org, api, optin):
    # given: an open cart of the customer applying a POS promotion, not the opt-in one (no instance)
    customer = CustomerFactory(org=org)
    pos = PromotionFactory(org=org, type="POS")
    assert activate(api, optin.pk, customer.pk).status_code == 200
    org_rules_forget()
    response = evaluate(api, cart(customer))
    assert response.status_code == 200, response.content
    assert applied(response) == [pos.pk]
    assert CartLock.objects.get().status == "OPEN"

    assert deactivate(api, optin.pk, customer.pk).status_code == 200
