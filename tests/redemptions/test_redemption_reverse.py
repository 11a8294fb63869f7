"""POST /api_gateway/v1/promotions/redemptions/reverse: counters and instances restored, twice is a no-op."""

from __future__ import annotations

from decimal import Decimal

from promotions.models import AuditEvent
from redemptions.models import Redemption, RedemptionCounter, RedemptionReversal
from tests.factories import CustomerFactory, PromotionRestrictionFactory
from tests.redemptions.support import body, line, redeem

REVERSE_URL = "/api_gateway/v1/promotions/redemptions/reverse"


def reverse(api, txn, **extra):
    return api.post(REVERSE_URL, {"transactionIdentifier": txn, **extra}, format="json")


def test_reverse_restores_counters_and_the_instance(
    api, org, customer, wallet_promotion, instance, pos_promotion
):
    # given limits at every counted level, used by one redemption
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Customer", kpi="REDEMPTION", limit=1)
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="DISCOUNT", limit=60)
    recorded = redeem(api, body(customer, txn="T1", line_items=[line(wallet_promotion, instance)],
                                redemptions=[line(pos_promotion, discount=60)]))  # fmt: skip
    assert recorded.status_code == 200
    # and both limits are now used up
    assert (
        redeem(
            api, body(CustomerFactory(org=org), txn="T2", redemptions=[line(pos_promotion, discount=1)])
        ).status_code
        == 409
    )

    # when
    response = reverse(api, "T1", reason="Returned")

    # then the answer names the reversal and the redemption as recorded
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["transactionIdentifier"], data["reversed"], data["reason"]) == ("T1", True, "Returned")
    assert data["redemption"] == recorded.json()["data"]
    assert isinstance(data["reversalDate"], int) and data["reversalDateISO"]
    # and everything the redemption took is given back
    assert set(RedemptionCounter.objects.values_list("used", flat=True)) == {Decimal(0)}
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.transaction_count, instance.discount_total) == (
        "ACTIVE", 0, 0, Decimal(0),
    )  # fmt: skip
    # so the customer can redeem the instance again, and the global discount is free again
    assert (
        redeem(api, body(customer, txn="T3", line_items=[line(wallet_promotion, instance)])).status_code
        == 200
    )
    assert (
        redeem(api, body(customer, txn="T4", redemptions=[line(pos_promotion, discount=60)])).status_code
        == 200
    )
    # the redemption itself stays, pointed at by the reversal
    assert Redemption.objects.filter(transaction_identifier="T1").exists()
    assert RedemptionReversal.objects.get().redemption.transaction_identifier == "T1"
    assert AuditEvent.objects.filter(action="redemption.reverse").count() == 1


def test_reversing_twice_is_a_no_op(api, customer, pos_promotion):
    PromotionRestrictionFactory(promotion=pos_promotion, level="Promotion", kpi="REDEMPTION", limit=5)
    redeem(api, body(customer, txn="T1", redemptions=[line(pos_promotion, redemptionCount=2)]))

    first = reverse(api, "T1")
    second = reverse(api, "T1")

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert RedemptionReversal.objects.count() == 1
    assert RedemptionCounter.objects.get().used == 0
    assert AuditEvent.objects.filter(action="redemption.reverse").count() == 1


def test_replaying_a_reversed_redemption_does_not_record_it_again(api, customer, pos_promotion):
    data = body(customer, txn="T1", redemptions=[line(pos_promotion)])
    first = redeem(api, data)
    reverse(api, "T1")

    again = redeem(api, data)

    assert again.status_code == 200 and again.content == first.content
    assert Redemption.objects.count() == 1


def test_unknown_or_foreign_transaction_is_404(api, other_org):
    from tests.factories import RedemptionFactory

    RedemptionFactory(org=other_org, transaction_identifier="THEIRS")

    for txn in ("NOPE", "THEIRS"):
        response = reverse(api, txn)
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == 404
    assert not RedemptionReversal.objects.exists()


def test_bad_body_and_read_only_client(api, read_api, customer, pos_promotion):
    redeem(api, body(customer, txn="T1", redemptions=[line(pos_promotion)]))

    assert reverse(api, "").status_code == 400
    assert api.post(REVERSE_URL, {}, format="json").status_code == 400
    assert reverse(read_api, "T1").status_code == 403
    assert not RedemptionReversal.objects.exists()


def test_wallet_remaining_counts_ignore_reversed_redemptions(
    api, customer, pos_promotion, wallet_promotion, instance
):
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Promotion", kpi="REDEMPTION", limit=3)
    redeem(api, body(customer, txn="T1", line_items=[line(wallet_promotion, instance)]))
    wallet_url = f"/api_gateway/v1/promotions/customer/{customer.pk}?includeRedemptions=true"

    def remaining():
        [item] = api.get(wallet_url).json()["data"]
        return item["restrictions"]["Promotion"][0]["remainingRedemption"]

    before = remaining()
    reverse(api, "T1")
    after = remaining()

    assert (before, after) == (2, 3)


def test_reversal_leaves_an_instance_redeemed_while_another_redemption_uses_up_its_limit(
    api, org, customer, wallet_promotion, instance
):
    # given: an instance good for 3 redemptions and 40 of discount; a first sale without discount,
    # then a second that takes the whole 40 and so uses it up
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="REDEMPTION", limit=3)
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Earn", kpi="DISCOUNT", limit=40)
    for txn, discount in (("T1", 0), ("T2", 40)):
        sale = body(customer, txn=txn, line_items=[line(wallet_promotion, instance, discount=discount)])
        assert redeem(api, sale).status_code == 200
    instance.refresh_from_db()
    assert (instance.status, instance.discount_total) == ("REDEEMED", Decimal(40))

    # when: the first sale, which took no discount, is reversed
    assert reverse(api, "T1").status_code == 200

    # then: the discount limit is still used up by T2, so the instance stays REDEEMED
    # (the invariant "REDEEMED exactly when used up" of tests/invariants: the reversal used to make
    # every REDEEMED instance ACTIVE again)
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.discount_total) == (
        "REDEEMED",
        1,
        Decimal(40),
    )
    # and reversing T2 gives the discount back: ACTIVE again
    assert reverse(api, "T2").status_code == 200
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count, instance.discount_total) == ("ACTIVE", 0, Decimal(0))
