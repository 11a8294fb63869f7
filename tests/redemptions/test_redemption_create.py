"""POST /api_gateway/v1/promotions/redemptions: shape, checks, limits, idempotency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from promotions.models import AuditEvent
from promotions_site.timefmt import to_epoch_ms
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionPromotion
from redemptions.schema import REDEEM_RESPONSE_EXAMPLE
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion


def assert_nothing_written():
    assert not Redemption.objects.exists()
    assert not RedemptionLine.objects.exists()
    assert not RedemptionCounter.objects.filter(used__gt=0).exists()
    assert not EarnedPromotion.objects.filter(redemption_count__gt=0).exists()


def test_documented_shape_and_echo(api, org, customer, instance, wallet_promotion, pos_promotion):
    # given a line item through the customer's instance and a cart-level POS redemption
    data = body(
        customer,
        line_items=[line(wallet_promotion, instance)],
        redemptions=[line(pos_promotion, discount=50)],
    )

    # when
    response = redeem(api, data)

    # then: the documented keys, in the documented order, echoing the request
    assert response.status_code == 200, response.content
    payload = response.json()
    assert payload["errors"] == []
    result = payload["data"]
    assert list(result) == list(REDEEM_RESPONSE_EXAMPLE["data"])
    assert list(result["lineItems"][0]) == list(REDEEM_RESPONSE_EXAMPLE["data"]["lineItems"][0])
    assert list(result["redemptions"][0]) == list(REDEEM_RESPONSE_EXAMPLE["data"]["redemptions"][0])
    assert result["orgId"] == org.pk and result["customerId"] == customer.pk
    assert result["transactionDate"] == data["transactionDate"]
    assert result["amount"] == 1000.0
    assert result["lineItems"][0] == {
        "sku": "SKU-1", "promotionId": wallet_promotion.pk, "earnedPromotionId": instance.pk, "redemptionCount": 1,
        "discount": "100.000000", "discountAppliedOnQuantity": "1.000000", "promotionAppliedOnQuantity": "1.000000",
    }  # fmt: skip
    assert result["redemptions"][0]["discount"] == "50.000000"
    # and the facts: one redemption, two lines, the instance used up, one audit event
    redemption = Redemption.objects.get()
    assert redemption.lines.count() == 2
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.transaction_count, instance.discount_total) == (
        "REDEEMED", 1, 1, Decimal(100),
    )  # fmt: skip
    assert AuditEvent.objects.filter(action="redemption.record", object_id=str(redemption.pk)).count() == 1


def test_customer_by_identifier(api, customer, pos_promotion):
    data = body(customer, redemptions=[line(pos_promotion)], customerId=None)
    data |= {"customerIdentifierType": "mobile", "customerIdentifierValue": "+919800000001"}

    response = redeem(api, data)

    assert response.status_code == 200, response.content
    result = response.json()["data"]
    assert (result["customerId"], result["customerIdentifierType"], result["customerIdentifierValue"]) == (
        customer.pk, "mobile", "+919800000001",
    )  # fmt: skip


def test_customer_id_wins_over_identifier(api, org, customer, pos_promotion):
    other = CustomerFactory(org=org)
    data = body(customer, redemptions=[line(pos_promotion)])
    data |= {"customerIdentifierType": "id", "customerIdentifierValue": str(other.pk)}

    assert redeem(api, data).json()["data"]["customerId"] == customer.pk


def test_documented_400_messages(api, customer, pos_promotion):
    no_customer = redeem(api, body(customer, redemptions=[line(pos_promotion)], customerId=None))
    no_lines = redeem(api, body(customer))
    empty_lines = redeem(api, body(customer, line_items=[], redemptions=[]))

    assert no_customer.status_code == 400
    assert no_customer.json()["errors"][0]["message"] == (
        "CustomerIdentifierType and CustomerIdentifierValue is mandatory when customerId is not specified."
    )
    for response in (no_lines, empty_lines):
        assert response.status_code == 400
        assert (
            response.json()["errors"][0]["message"] == "At least lineItems or redemptions must be specified"
        )
    assert_nothing_written()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"transactionIdentifier": "x" * 251}, "transactionIdentifier"),
        ({"transactionNumber": None}, "transactionNumber"),
        ({"transactionNumber": "y" * 251}, "transactionNumber"),
        ({"transactionDate": None}, "transactionDate"),
        ({"amount": -1}, "amount"),
        ({"amount": 50}, "more than the transaction amount"),
        ({"transactionDate": 4102444800000}, "24 hours"),
        ({"customerIdentifierType": "passport", "customerId": None, "customerIdentifierValue": "1"}, "customerIdentifierType"),
    ],
)  # fmt: skip
def test_bad_request_fields(api, customer, pos_promotion, changes, fragment):
    response = redeem(api, body(customer, redemptions=[line(pos_promotion)], **changes))

    assert response.status_code == 400, response.content
    assert fragment.lower() in " ".join(e["message"] for e in response.json()["errors"]).lower()
    assert_nothing_written()


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"redemptionCount": 0}, "redemptionCount"),
        ({"discount": -5}, "discount"),
        ({"promotionAppliedOnQuantity": 0}, "promotionAppliedOnQuantity"),
        ({"discountAppliedOnQuantity": 3, "promotionAppliedOnQuantity": 2}, "cannot exceed"),
        ({"promotionId": None}, "promotionId"),
    ],
)
def test_bad_lines(api, customer, pos_promotion, changes, fragment):
    item = line(pos_promotion, **changes)
    item = {k: v for k, v in item.items() if v is not None}

    response = redeem(api, body(customer, line_items=[item]))

    assert response.status_code == 400, response.content
    assert fragment in " ".join(e["message"] for e in response.json()["errors"])
    assert_nothing_written()


def test_unknown_or_foreign_promotion_is_400(api, org, other_org, customer):
    foreign = PromotionFactory(org=other_org, type="POS")

    response = redeem(api, body(customer, redemptions=[line(foreign)]))

    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["message"]
        == f"Promotion with ids : {foreign.pk} not found for org : {org.pk} ."
    )
    assert_nothing_written()


def test_unknown_or_foreign_customer_is_404(api, other_org, customer, pos_promotion):
    stranger = CustomerFactory(org=other_org)
    # -1 is an anonymous sale (tests/redemptions/test_anonymous_sales.py); any other negative id is nobody
    for customer_id in (str(stranger.pk), "999999999", "-2", "abc"):
        response = redeem(api, body(customer, redemptions=[line(pos_promotion)], customerId=customer_id))
        assert response.status_code == 404, customer_id
    assert_nothing_written()


def test_promotion_not_running_at_transaction_date(api, org, customer):
    now = timezone.now()
    inactive = PromotionFactory(org=org, type="POS", active=False)
    later = PromotionFactory(
        org=org, type="POS", start_date=now + dt.timedelta(days=1), end_date=now + dt.timedelta(days=9)
    )
    ended = PromotionFactory(
        org=org, type="POS", start_date=now - dt.timedelta(days=9), end_date=now - dt.timedelta(days=1)
    )

    assert codes(redeem(api, body(customer, txn="a", redemptions=[line(inactive)]))) == [709]
    assert codes(redeem(api, body(customer, txn="b", redemptions=[line(later)]))) == [709]
    assert codes(redeem(api, body(customer, txn="c", redemptions=[line(ended)]))) == [706]
    # a sale made while it ran, reported after it ended, is accepted
    during = to_epoch_ms(now - dt.timedelta(days=2))
    assert (
        redeem(api, body(customer, txn="d", redemptions=[line(ended)], transactionDate=during)).status_code
        == 200
    )


def test_another_customers_instance_is_715(api, org, customer, wallet_promotion):
    # given an instance earned by someone else (the hole Capillary documents)
    someone = CustomerFactory(org=org)
    theirs = EarnedPromotionFactory(org=org, customer=someone, promotion=wallet_promotion)

    # when the customer redeems it
    response = redeem(api, body(customer, line_items=[line(wallet_promotion, theirs)]))

    # then
    assert response.status_code == 400
    assert codes(response) == [715]
    assert_nothing_written()


def test_instance_of_another_promotion_is_715(api, org, customer, instance):
    other = PromotionFactory(org=org, type="CUSTOMER")

    response = redeem(api, body(customer, line_items=[line(other, instance)]))

    assert codes(response) == [715]


def test_wallet_promotion_without_instance_is_715(api, org, customer):
    never_issued = PromotionFactory(org=org, type="EARNING")

    response = redeem(api, body(customer, redemptions=[line(never_issued)]))

    assert codes(response) == [715]
    assert_nothing_written()


def test_revoked_expired_and_used_instances(api, org, customer, wallet_promotion):
    revoked = EarnedPromotionFactory(org=org, customer=customer, promotion=wallet_promotion, status="REVOKED")
    expired = EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=wallet_promotion,
        valid_till=timezone.now() - dt.timedelta(hours=1),
    )
    used = EarnedPromotionFactory(
        org=org, customer=customer, promotion=wallet_promotion, status="REDEEMED", redemption_count=1
    )

    assert codes(redeem(api, body(customer, txn="r", line_items=[line(wallet_promotion, revoked)]))) == [731]
    assert codes(redeem(api, body(customer, txn="e", line_items=[line(wallet_promotion, expired)]))) == [706]
    response = redeem(api, body(customer, txn="u", line_items=[line(wallet_promotion, used)]))
    assert response.status_code == 409 and codes(response) == [729]
    assert not Redemption.objects.exists()


def test_earned_promotion_id_on_pos_is_400(api, customer, instance, pos_promotion):
    response = redeem(api, body(customer, line_items=[line(pos_promotion, instance)]))

    assert response.status_code == 400
    assert "only for CUSTOMER, EARNING and REWARD" in response.json()["errors"][0]["message"]


def test_instance_is_chosen_when_not_named_soonest_to_expire_first(api, org, customer, wallet_promotion):
    now = timezone.now()
    later = EarnedPromotionFactory(
        org=org, customer=customer, promotion=wallet_promotion, valid_till=now + dt.timedelta(days=20)
    )
    sooner = EarnedPromotionFactory(
        org=org, customer=customer, promotion=wallet_promotion, valid_till=now + dt.timedelta(days=2)
    )

    first = redeem(api, body(customer, txn="1", line_items=[line(wallet_promotion)]))
    second = redeem(api, body(customer, txn="2", redemptions=[line(wallet_promotion)]))
    third = redeem(api, body(customer, txn="3", redemptions=[line(wallet_promotion)]))

    assert first.json()["data"]["lineItems"][0]["earnedPromotionId"] == sooner.pk
    assert second.status_code == 200
    assert RedemptionLine.objects.get(redemption__transaction_identifier="2").earned_promotion_id == later.pk
    assert codes(third) == [715]


def test_earn_redemption_limit_allows_reuse_of_an_instance(api, org, customer, wallet_promotion, instance):
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="REDEMPTION", limit=3)
    wallet_promotion.type = "EARNING"
    wallet_promotion.save()

    results = [
        redeem(api, body(customer, txn=f"t{i}", line_items=[line(wallet_promotion, instance)]))
        for i in range(4)
    ]

    assert [r.status_code for r in results] == [200, 200, 200, 409]
    instance.refresh_from_db()
    assert (instance.redemption_count, instance.status) == (3, "REDEEMED")


@pytest.mark.parametrize(
    "level, kpi, limit, lines, ok",
    [
        ("Cart", "REDEMPTION", 2, [{"redemptionCount": 2}], True),
        ("Cart", "REDEMPTION", 2, [{"redemptionCount": 2}, {"redemptionCount": 1}], False),
        ("Cart", "DISCOUNT", 150, [{"discount": 100}, {"discount": 60}], False),
        ("Cart", "DISCOUNT", 150, [{"discount": 100}, {"discount": 50}], True),
    ],
)
def test_cart_limits_apply_to_one_transaction(api, customer, pos_promotion, level, kpi, limit, lines, ok):
    PromotionRestrictionFactory(promotion=pos_promotion, level=level, kpi=kpi, limit=limit)

    response = redeem(api, body(customer, line_items=[line(pos_promotion, **changes) for changes in lines]))

    assert (response.status_code == 200) is ok, response.content
    if not ok:
        assert response.status_code == 409 and codes(response) == [409]
        assert f"Cart {kpi} limit" in response.json()["errors"][0]["message"]
        assert_nothing_written()


def test_customer_limit_counts_per_customer(api, org, customer, pos_promotion):
    PromotionRestrictionFactory(promotion=pos_promotion, level="Customer", kpi="TRANSACTION", limit=2)
    other = CustomerFactory(org=org)

    mine = [
        redeem(api, body(customer, txn=f"m{i}", redemptions=[line(pos_promotion)])).status_code
        for i in range(3)
    ]
    theirs = redeem(api, body(other, txn="o1", redemptions=[line(pos_promotion)])).status_code

    assert mine == [200, 200, 409]
    assert theirs == 200
    assert RedemptionCounter.objects.get(scope=str(customer.pk)).used == 2


def test_promotion_discount_limit_is_global(api, org, customer, pos_promotion):
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="DISCOUNT", limit=250)
    other = CustomerFactory(org=org)

    first = redeem(api, body(customer, txn="1", redemptions=[line(pos_promotion, discount=200)]))
    too_much = redeem(api, body(other, txn="2", redemptions=[line(pos_promotion, discount=100)]))
    fits = redeem(api, body(other, txn="3", redemptions=[line(pos_promotion, discount=50)]))

    assert (first.status_code, too_much.status_code, fits.status_code) == (200, 409, 200)
    assert "Promotion DISCOUNT limit of 250 reached" in too_much.json()["errors"][0]["message"]
    assert RedemptionCounter.objects.get(scope="").used == 250


def test_a_refused_limit_gives_back_everything_taken_before_it(
    api, org, customer, wallet_promotion, instance, pos_promotion
):
    # given: the wallet line would take the instance and a customer counter, then the POS line hits its limit
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Customer", kpi="REDEMPTION", limit=5)
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="REDEMPTION", limit=1)
    redeem(api, body(CustomerFactory(org=org), txn="first", redemptions=[line(pos_promotion)]))

    response = redeem(
        api, body(customer, line_items=[line(wallet_promotion, instance)], redemptions=[line(pos_promotion)])
    )

    assert response.status_code == 409
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count) == ("ACTIVE", 0)
    assert not RedemptionCounter.objects.filter(scope=str(customer.pk), used__gt=0).exists()
    assert Redemption.objects.count() == 1


def test_replay_returns_the_same_answer_and_writes_nothing(api, customer, instance, wallet_promotion):
    data = body(customer, line_items=[line(wallet_promotion, instance)])
    first = redeem(api, data)

    again = redeem(api, data)

    assert again.status_code == 200
    assert again.content == first.content
    assert Redemption.objects.count() == 1 and RedemptionLine.objects.count() == 1
    instance.refresh_from_db()
    assert instance.redemption_count == 1


def test_same_transaction_with_another_body_is_800(api, customer, instance, wallet_promotion, pos_promotion):
    redeem(api, body(customer, line_items=[line(wallet_promotion, instance)]))

    response = redeem(api, body(customer, redemptions=[line(pos_promotion)]))

    assert response.status_code == 409
    assert codes(response) == [800]
    assert Redemption.objects.count() == 1


def test_same_transaction_identifier_in_another_org_is_independent(api, other_org, customer, pos_promotion):
    from rest_framework.test import APIClient

    from tests.conftest import basic_auth
    from tests.factories import ApiClientFactory

    foreign_customer = CustomerFactory(org=other_org)
    foreign_promotion = PromotionFactory(org=other_org, type="POS")
    client = ApiClientFactory(org=other_org)
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))

    assert redeem(api, body(customer, redemptions=[line(pos_promotion)])).status_code == 200
    assert redeem(other_api, body(foreign_customer, redemptions=[line(foreign_promotion)])).status_code == 200


def test_read_only_client_cannot_redeem(read_api, customer, pos_promotion):
    assert redeem(read_api, body(customer, redemptions=[line(pos_promotion)])).status_code == 403
    assert_nothing_written()


def test_customer_by_unknown_or_foreign_identifier_is_404(api, other_org, customer, pos_promotion):
    stranger = CustomerFactory(org=other_org, mobile="919811111111", email="stranger@example.com")
    lookups = [
        ("mobile", "919899999999"),
        ("mobile", "+919811111111"),
        ("email", "stranger@example.com"),
        ("externalId", "nobody"),
        ("id", str(stranger.pk)),
        ("id", "not-a-number"),
    ]

    for name, value in lookups:
        data = body(customer, redemptions=[line(pos_promotion)], customerId=None)
        data |= {"customerIdentifierType": name, "customerIdentifierValue": value}
        response = redeem(api, data)
        assert response.status_code == 404, (name, value)
        assert response.json()["errors"] == [{"code": 404, "message": "Customer not found"}]
    assert_nothing_written()


def test_earn_discount_limit_bounds_an_instance_and_uses_it_up(
    api, org, customer, wallet_promotion, instance
):
    # given an instance that may be redeemed 5 times for at most 150 of discount in all
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="REDEMPTION", limit=5)
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="DISCOUNT", limit=150)

    # when 100, then 60 (over), then 50 (exactly the rest) of discount are redeemed through it
    first = redeem(api, body(customer, txn="1", line_items=[line(wallet_promotion, instance, discount=100)]))
    instance.refresh_from_db()
    after_first = (instance.status, instance.discount_total, instance.status_changed_at)
    over = redeem(api, body(customer, txn="2", line_items=[line(wallet_promotion, instance, discount=60)]))
    rest = redeem(api, body(customer, txn="3", line_items=[line(wallet_promotion, instance, discount=50)]))

    # then the instance stays ACTIVE until the discount limit is used up, refuses what would pass it,
    # and is REDEEMED by the use that reaches it
    assert (first.status_code, over.status_code, rest.status_code) == (200, 409, 200)
    assert codes(over) == [729]
    assert after_first == ("ACTIVE", Decimal(100), None)
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.transaction_count, instance.discount_total) == (
        "REDEEMED", 2, 2, Decimal(150),
    )  # fmt: skip
    assert instance.status_changed_at is not None


def test_earn_transaction_limit_counts_transactions_not_units(api, org, customer, wallet_promotion, instance):
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="REDEMPTION", limit=10)
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="TRANSACTION", limit=2)

    results = [
        redeem(
            api, body(customer, txn=f"t{i}", line_items=[line(wallet_promotion, instance, redemptionCount=3)])
        )
        for i in range(3)
    ]

    assert [r.status_code for r in results] == [200, 200, 409]
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.transaction_count) == ("REDEEMED", 6, 2)


def test_a_use_larger_than_a_fresh_limit_is_refused_and_creates_no_counter(api, customer, pos_promotion):
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="DISCOUNT", limit=50)

    response = redeem(api, body(customer, redemptions=[line(pos_promotion, discount=100)]))

    assert response.status_code == 409 and codes(response) == [409]
    assert "Promotion DISCOUNT limit of 50 reached" in response.json()["errors"][0]["message"]
    assert not RedemptionCounter.objects.exists()
    assert_nothing_written()


def test_of_two_limits_reached_the_first_in_lock_order_is_named(api, customer, pos_promotion):
    # given a Customer and a Promotion limit of 1 each (the Customer one created first), both used up
    PromotionRestrictionFactory(promotion=pos_promotion, level="Customer", kpi="REDEMPTION", limit=1)
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="REDEMPTION", limit=1)
    assert redeem(api, body(customer, txn="1", redemptions=[line(pos_promotion)])).status_code == 200

    response = redeem(api, body(customer, txn="2", redemptions=[line(pos_promotion)]))

    assert response.status_code == 409
    assert "Customer REDEMPTION limit of 1 reached" in response.json()["errors"][0]["message"]
    assert list(RedemptionCounter.objects.order_by("restriction").values_list("used", flat=True)) == [1, 1]


def test_a_wallet_redemption_takes_a_fixed_handful_of_queries(
    api, org, customer, wallet_promotion, instance, django_assert_max_num_queries
):
    # given a wallet promotion with a Customer and a Promotion limit, whose counters do not exist yet
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Customer", kpi="REDEMPTION", limit=5)
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Promotion", kpi="REDEMPTION", limit=100)

    # when it is redeemed: authentication, the customer locked, the key, the promotions with their
    # restrictions (one join), the instance, the lines, the promotions redeemed (for the audit's
    # filter), the audit event, every counter at once (+ the savepoint pair of the service's
    # transaction inside the test's)
    with django_assert_max_num_queries(11):
        response = redeem(api, body(customer, line_items=[line(wallet_promotion, instance)]))

    # then it is recorded, and both counters were created holding this use
    assert response.status_code == 200, response.content
    assert sorted(RedemptionCounter.objects.values_list("scope", "used")) == [
        ("", Decimal(1)),
        (str(customer.pk), Decimal(1)),
    ]


def test_the_promotions_redeemed_are_recorded_once_each_with_the_transaction_date(
    api, customer, instance, wallet_promotion, pos_promotion
):
    # given: two line items and a cart line of the POS promotion, a line item of the wallet's
    data = body(
        customer,
        line_items=[
            line(pos_promotion, discount=10),
            line(wallet_promotion, instance),
            line(pos_promotion, discount=5),
        ],
        redemptions=[line(pos_promotion, discount=20)],
    )
    # when
    assert redeem(api, data).status_code == 200
    # then: one row per promotion, dated as the transaction (what the audit's promotion filter reads)
    redemption = Redemption.objects.get()
    assert sorted(
        RedemptionPromotion.objects.values_list("redemption", "promotion", "transaction_date")
    ) == sorted(
        [
            (redemption.pk, promotion.pk, redemption.transaction_date)
            for promotion in (pos_promotion, wallet_promotion)
        ]
    )
