"""bench/evaluate_redeem.py's round trip is one the app accepts: each prepared cart evaluates to the one
promotion, and the redemption its wrk script builds from the answer is recorded, bound to the evaluation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bench.evaluate_redeem import (
    DISCOUNT,
    EVALUATE_PATH,
    REDEEM_PATH,
    make_cart_fixtures,
    redemption_body,
)
from promotions.rules import org_rules_forget
from redemptions.invariants import violations
from redemptions.models import CartLock, Redemption, RedemptionCounter


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.mark.postgres_only  # the bench runs on PostgreSQL only, and so does the invariants' SQL
def test_the_bench_round_trips_are_recorded_bound_to_their_evaluations(db, client):
    # given the bench's fixtures for three round trips
    fixtures = make_cart_fixtures(count=3)
    headers = {"HTTP_AUTHORIZATION": fixtures.auth}

    for cart, template in fixtures.roundtrips:
        # when the cart is evaluated and the redemption built from the raw answer as the wrk script does
        evaluated = client.post(EVALUATE_PATH, cart, content_type="application/json", **headers)
        assert evaluated.status_code == 200, evaluated.content
        applied = evaluated.json()["data"]["appliedPromotions"]
        assert [(a["promotionId"], Decimal(a["discount"])) for a in applied] == [
            (fixtures.promotion_id, Decimal(DISCOUNT))
        ]
        body = redemption_body(template, evaluated.content.decode())
        assert json.loads(body)["appliedPromotionIdentifiers"] == [applied[0]["identifier"]]
        redeemed = client.post(REDEEM_PATH, body, content_type="application/json", **headers)

        # then it is recorded, bound to the evaluation, and the cart is closed by it
        assert redeemed.status_code == 200, redeemed.content
        redemption = Redemption.objects.get(transaction_identifier=json.loads(body)["transactionIdentifier"])
        assert redemption.evaluation_id == evaluated.json()["data"]["evaluationId"]
        assert CartLock.objects.get(evaluation_id=redemption.evaluation_id).status == "REDEEMED"

    counter = RedemptionCounter.objects.get(restriction__promotion_id=fixtures.promotion_id, scope="")
    assert (counter.used, counter.reserved) == (3, 0)
    assert violations([fixtures.org_id]) == []


def test_an_answer_without_the_ids_builds_no_redemption():
    assert (
        redemption_body('{"promotionEvaluationId": "@EVALUATION@"}', '{"data": {"evaluationId": "x"}}')
        is None
    )
