"""A redemption of a promotion requiring the customer's activation (customerActivationRequired): refused
(715, nothing written) until the customer activated it, for the promotion or for the instance; the
same answer on both paths (the one-statement function and the general path)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from promotions.audit import Actor
from promotions_site.errors import PromotionError
from redemptions.models import Redemption
from redemptions.services import (
    LineInput,
    RedemptionInput,
    redemption_record_general,
    redemption_record_one_statement,
)
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionActivationFactory,
)
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion

_transactions = itertools.count(1)


def vouchers_one_activated(org, customer, voucher) -> tuple[EarnedPromotion, EarnedPromotion]:
    """Two earned instances of `voucher`: one expiring in two days, and one expiring later, activated."""
    soon = EarnedPromotionFactory(
        org=org, customer=customer, promotion=voucher, kind="EARNED",
        valid_till=timezone.now() + dt.timedelta(days=2),
    )  # fmt: skip
    later = EarnedPromotionFactory(org=org, customer=customer, promotion=voucher, kind="EARNED")
    PromotionActivationFactory(org=org, customer=customer, promotion=voucher, earned_promotion=later)
    return soon, later


# --- Through the API (whichever path the database takes) -----------------------------------------------


def test_not_activated_is_715_and_writes_nothing(api, org, customer, optin):
    # given
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    # when
    named = redeem(api, body(customer, "TXN-A", line_items=[line(optin, instance)]))
    automatic = redeem(api, body(customer, "TXN-B", redemptions=[line(optin)]))
    # then
    assert (named.status_code, codes(named)) == (400, [715])
    assert "is not activated" in named.json()["errors"][0]["message"]
    assert (automatic.status_code, codes(automatic)) == (400, [715])
    assert "not activated" in automatic.json()["errors"][0]["message"]
    assert not Redemption.objects.exists()
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count) == ("ACTIVE", 0)


def test_activated_by_the_customer_is_redeemed(api, org, customer, optin):
    # given
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    response = api.post(f"/api_gateway/v1/promotions/{optin.pk}/activate?customerId={customer.pk}")
    assert response.status_code == 200
    # when
    recorded = redeem(api, body(customer, "TXN-A", line_items=[line(optin, instance)]))
    # then
    assert recorded.status_code == 200, recorded.content
    instance.refresh_from_db()
    assert instance.status == "REDEEMED"


def test_a_payment_voucher_instance_is_redeemed_only_when_it_is_activated(api, org, customer, voucher):
    # given two instances, the one expiring later activated
    soon, later = vouchers_one_activated(org, customer, voucher)
    # when / then: the one not activated is refused
    refused = redeem(api, body(customer, "TXN-A", line_items=[line(voucher, soon)]))
    assert (refused.status_code, codes(refused)) == (400, [715])
    # and a line naming no instance takes the activated one, though the other expires first
    taken = redeem(api, body(customer, "TXN-B", redemptions=[line(voucher)]))
    assert taken.status_code == 200, taken.content
    assert EarnedPromotion.objects.get(pk=later.pk).status == "REDEEMED"
    assert EarnedPromotion.objects.get(pk=soon.pk).status == "ACTIVE"


def test_another_customers_activation_does_not_count(api, org, customer, optin):
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    PromotionActivationFactory(org=org, customer=CustomerFactory(org=org), promotion=optin)
    response = redeem(api, body(customer, "TXN-A", line_items=[line(optin, instance)]))
    assert codes(response) == [715]


# --- Both paths give the same answer ------------------------------------------------------------------------


def _line(promotion_id, earned=None) -> LineInput:
    return LineInput("LINEITEM", 0, promotion_id, 1, Decimal(10), Decimal(1), Decimal(1), "SKU", earned)


def _outcome(record, org, client, customer, lines):
    data = RedemptionInput(
        customer_lookup=("id", str(customer.pk)),
        transaction_identifier=f"ACT-{next(_transactions)}",
        transaction_number="BILL-1",
        transaction_date=timezone.now() - dt.timedelta(minutes=1),
        amount=Decimal(1000),
        lines=lines,
    )
    try:
        recorded = record(
            org=org, data=data, fingerprint="f" * 64, actor=Actor.system("test"), api_client=client
        )
    except PromotionError as error:
        return ("refused", int(error.code), error.http_status, str(error))
    return ("recorded", [(line.promotion_id, line.earned_promotion_id) for line in recorded.lines])


@pytest.mark.postgres_only
def test_both_paths_answer_the_same(org, optin, voucher):
    assert connection.vendor == "postgresql"
    # given a customer with an opt-in instance not activated, and a voucher with one of two activated
    client = ApiClientFactory(org=org)
    customer = CustomerFactory(org=org)
    plain = EarnedPromotionFactory(org=org, customer=customer, promotion=optin)
    soon, later = vouchers_one_activated(org, customer, voucher)
    cases = {
        "named, not activated": ([_line(optin.pk, plain.pk)], 715),
        "automatic, not activated": ([_line(optin.pk)], 715),
        "named instance not activated": ([_line(voucher.pk, soon.pk)], 715),
        "named instance activated": ([_line(voucher.pk, later.pk)], "recorded"),
        "automatic takes the activated": ([_line(voucher.pk)], "recorded"),
    }
    for name, (lines, expected) in cases.items():
        answers = []
        for record in (redemption_record_general, redemption_record_one_statement):
            with transaction.atomic():
                answers.append(_outcome(record, org, client, customer, lines))
                transaction.set_rollback(True)
        general, function = answers
        assert function == general, name
        assert (general[0] if expected == "recorded" else general[1]) == expected, (name, general)
    # and once the customer activates the opt-in promotion, both paths record it
    PromotionActivationFactory(org=org, customer=customer, promotion=optin)
    for record in (redemption_record_general, redemption_record_one_statement):
        with transaction.atomic():
            assert _outcome(record, org, client, customer, [_line(optin.pk)]) == (
                "recorded",
                [(optin.pk, plain.pk)],
            )
            transaction.set_rollback(True)
