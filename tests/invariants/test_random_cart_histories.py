"""Invariants under random cart histories (cart locks, docs/cart-locks.md).

A Hypothesis state machine plays random histories on one org on REDEMPTION_WITH_CART_EVALUATION with
cart locking: customers evaluate carts (new ones, or an open cart again by `cartEvaluationId`),
cancel them, let them expire (released on the next read, or by the sweep), redeem them (the
evaluated promotions, some dated 40 days back: a late report, counted in another window than its
cart reserved in; or a tampered request that must be refused and write nothing), replay a
redemption, and reverse one. Its promotions have small Customer and Promotion limits (drawn at
random: lifetime, monthly, or any 3 days), so histories meet them often. After every step: the
stored invariants of `redemptions/invariants.py` (among them: each counter row's `reserved` equals
what the open carts hold of it, each open cart's unit is on its evaluation's window's row, and
`used + reserved` never exceeds the limit), and what only the history knows: a refused redemption
writes nothing, a replay answers the same bytes.

The two-org machine (`test_random_histories.py`) runs on REDEMPTION_WITHOUT_CART_EVALUATION, whose
redemptions name no evaluation; cart locks need an org on the other strategy, hence this machine.
Runs on PostgreSQL with real commits. `HYPOTHESIS_SEED=<n>` replays a run.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from promotions.models import PromoCode, PromotionRestriction
from promotions.rules import org_rules_forget
from promotions.windows import LIFETIME
from redemptions.cart_locks import cart_locks_sweep
from redemptions.invariants import violations
from redemptions.models import CartLock, Redemption, RedemptionCounter, RedemptionReversal
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body

Level = PromotionRestriction.Level
Kpi = PromotionRestriction.Kpi
EVALUATE = "/api_gateway/v1/promotions/evaluate"
REDEEM = "/api_gateway/v1/promotions/redemptions"
CUSTOMERS = 3
TALLY: Counter[str] = Counter()

restrictions = st.lists(
    st.tuples(
        st.sampled_from([Level.CUSTOMER, Level.PROMOTION]),
        st.sampled_from([Kpi.REDEMPTION, Kpi.TRANSACTION, Kpi.DISCOUNT]),
        st.integers(1, 3),
        st.sampled_from(["lifetime", "monthly", "moving"]),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda r: (r[0], r[1]),
)
WINDOWS = {
    "lifetime": {},
    "monthly": {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}},
    "moving": {"frequency": "DAYS", "min_time_between_repeat": 3 * 86_400_000},  # any 3 days
}
TAMPERINGS = ("none", "none", "none", "identifiers", "discount", "evaluation", "customer", "code")
code_restrictions = st.lists(
    st.tuples(
        st.just(Level.CODE),
        st.sampled_from([Kpi.REDEMPTION, Kpi.TRANSACTION, Kpi.DISCOUNT]),
        st.integers(1, 2),
        st.sampled_from(["lifetime", "monthly", "moving"]),
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda r: r[1],
)
# The codes an evaluation sends: the two unlinked ones, none (the first customer's linked code then
# applies by itself), or a wrong one.
CODE_SENT = ("OPEN0", "OPEN1", None, None, "NOSUCH")


class CartHistories(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.org = None
        self.api: APIClient | None = None
        self.customers = []
        self.evaluations: list[tuple[int, dict]] = []  # (customer index, evaluation data)
        self.recorded: list[tuple[dict, bytes]] = []
        self.counter = 0

    @initialize(
        stackable=st.lists(restrictions, min_size=2, max_size=2),
        max_pending=st.sampled_from([1, 1, 2]),
        code_limits=code_restrictions,
    )
    def org_with_promotions(self, stackable, max_pending, code_limits):
        org_rules_forget()
        self.org = OrganizationFactory(
            redemption_strategy="REDEMPTION_WITH_CART_EVALUATION", cart_lock_max_pending_carts=max_pending
        )
        client = ApiClientFactory(org=self.org)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
        now = timezone.now()
        for index, limits in enumerate(stackable):
            promotion = PromotionFactory(
                org=self.org,
                type="POS",
                is_stackable=True,
                start_date=now - dt.timedelta(days=90),
                end_date=now + dt.timedelta(days=30),
                condition={"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 100}},
                action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 10 * (index + 1)}},
            )  # fmt: skip
            for level, kpi, n, window in limits:
                limit = n * 20 if kpi == Kpi.DISCOUNT else n
                PromotionRestrictionFactory(
                    promotion=promotion, level=level, kpi=kpi, limit=limit, **WINDOWS[window]
                )
        self.customers = CustomerFactory.create_batch(CUSTOMERS, org=self.org)
        # A stackable CODE promotion whose Code limits are counted per code (docs/code-redemption.md).
        coded = PromotionFactory(
            org=self.org,
            type="CODE",
            is_stackable=True,
            start_date=now - dt.timedelta(days=90),
            end_date=now + dt.timedelta(days=30),
            condition={"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 100}},
            action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 5}},
        )  # fmt: skip
        for level, kpi, n, window in code_limits:
            limit = n * 5 if kpi == Kpi.DISCOUNT else n
            PromotionRestrictionFactory(promotion=coded, level=level, kpi=kpi, limit=limit, **WINDOWS[window])
        for code, owner in (("OPEN0", None), ("OPEN1", None), ("LINKED0", self.customers[0])):
            PromoCode.objects.create(
                org=self.org, promotion=coded, code=code, customer=owner, linked_on=now if owner else None
            )

    def open_carts(self) -> list[str]:
        return list(
            CartLock.objects.filter(org=self.org, status="OPEN").order_by("pk").values_list("pk", flat=True)
        )

    def state(self):
        return (
            Redemption.objects.filter(org=self.org).count(),
            sorted(RedemptionCounter.objects.filter(org=self.org).values_list("pk", "used", "reserved")),
            sorted(CartLock.objects.filter(org=self.org).values_list("pk", "status")),
        )

    # --- steps ----------------------------------------------------------------------------------

    @rule(
        customer=st.integers(0, CUSTOMERS - 1),
        again=st.booleans(),
        amount=st.sampled_from([200, 1000]),
        code=st.sampled_from(CODE_SENT),
    )
    def evaluate(self, customer, again, amount, code):
        cart = {
            "amount": str(amount),
            "customerId": self.customers[customer].pk,
            "cartItems": [{"sku": "A", "amount": str(amount), "qty": "1"}],
        }
        if code is not None:
            cart["promoCodes"] = [code.lower()]
        own = list(
            CartLock.objects.filter(
                org=self.org, customer=self.customers[customer], status="OPEN", expires_at__gt=timezone.now()
            ).values_list("pk", flat=True)
        )
        if again and own:
            cart["cartEvaluationId"] = own[0]
        response = self.api.post(EVALUATE, cart, format="json")
        if response.status_code == 200:
            data = response.json()["data"]
            codes_applied = [
                entry["promoCode"] for entry in data["appliedPromotions"] if "promoCode" in entry
            ]
            assert len(codes_applied) <= 1 and (
                not codes_applied or codes_applied[0] in ("OPEN0", "OPEN1", "LINKED0")
            )
            if code is not None and codes_applied != [code]:
                assert [log["promoCode"] for log in data["promoCodeEvaluationLogs"]] == [code.lower()]
            self.evaluations.append((customer, data))
            TALLY["evaluate: " + ("offered" if data["appliedPromotions"] else "nothing")] += 1
        else:
            codes = [error["code"] for error in response.json()["errors"]]
            assert response.status_code == 409 and codes == [116], (
                response.content,
                cart,
                list(
                    CartLock.objects.filter(org=self.org).values_list(
                        "pk", "customer_id", "status", "expires_at"
                    )
                ),
                timezone.now(),
            )
            TALLY["evaluate: 116"] += 1

    @precondition(lambda self: self.evaluations)
    @rule(pick=st.integers(0, 1000))
    def cancel(self, pick):
        customer, data = self.evaluations[pick % len(self.evaluations)]
        url = f"/api_gateway/v1/promotions/customer/{self.customers[customer].pk}/evaluations/{data['evaluationId']}/cancel"
        response = self.api.put(url)
        assert response.status_code in (200, 404), response.content
        TALLY[f"cancel: {response.status_code}"] += 1

    @precondition(lambda self: self.evaluations)
    @rule(pick=st.integers(0, 1000), sweep=st.booleans())
    def expire(self, pick, sweep):
        _, data = self.evaluations[pick % len(self.evaluations)]
        past = timezone.now() - dt.timedelta(seconds=1)
        # Only its end moves: its start stays the evaluation's time, whose window its units are on.
        CartLock.objects.filter(pk=data["evaluationId"], status="OPEN").update(expires_at=past)
        if sweep:
            cart_locks_sweep(now=timezone.now())
        TALLY["expire"] += 1

    @precondition(lambda self: self.evaluations)
    @rule(
        pick=st.integers(0, 1000),
        tampering=st.sampled_from(TAMPERINGS),
        days_back=st.sampled_from([0, 0, 0, 40]),
    )
    def redeem(self, pick, tampering, days_back):
        customer, data = self.evaluations[pick % len(self.evaluations)]
        self.counter += 1
        owner = (
            self.customers[(customer + 1) % CUSTOMERS]
            if tampering == "customer"
            else self.customers[customer]
        )
        lines = [
            {
                "promotionId": applied["promotionId"],
                "redemptionCount": applied["redemptionCount"],
                "discount": applied["discount"],
                "discountAppliedOnQuantity": 1,
                "promotionAppliedOnQuantity": 1,
                # Most redemptions name no code (it comes from the evaluation); some name it again.
                **(
                    {"promoCode": applied["promoCode"]} if "promoCode" in applied and self.counter % 2 else {}
                ),
            }
            for applied in data["appliedPromotions"]
        ]
        identifiers = [applied["identifier"] for applied in data["appliedPromotions"]]
        if not lines:
            return
        if tampering == "identifiers":
            identifiers = identifiers[1:] or ["eyJ4IjoxfQ=="]
        if tampering == "discount":
            lines[0]["discount"] = str(float(lines[0]["discount"]) + 1)
        if tampering == "code":
            coded = [line for line in lines if "promoCode" in line or self.is_code(line["promotionId"])]
            if not coded:
                tampering = "none"
            else:
                # another code than the one evaluated (the line may not name it: it comes from the evaluation)
                evaluated = next(
                    (a.get("promoCode") for a in data["appliedPromotions"] if a["promotionId"] == coded[0]["promotionId"]),
                    None,
                )  # fmt: skip
                coded[0]["promoCode"] = "OPEN1" if evaluated == "OPEN0" else "OPEN0"
        request = body(
            owner,
            txn=f"T{self.counter}",
            redemptions=lines,
            amount=float(data["amount"]),
            promotionEvaluationId="0" * 24 if tampering == "evaluation" else data["evaluationId"],
            appliedPromotionIdentifiers=identifiers,
        )
        if days_back:  # a late report: its monthly limits count in the transaction's month, not the cart's
            request["transactionDate"] -= days_back * 86_400_000
        before = self.state()
        response = self.api.post(REDEEM, request, format="json")
        if response.status_code == 200:
            assert tampering == "none", (tampering, response.content)
            self.recorded.append((request, response.content))
            TALLY["redeem: recorded"] += 1
        else:
            codes = [error["code"] for error in response.json()["errors"]]
            assert response.status_code in (400, 409), response.content
            assert codes[0] in (802, 803, 804, 409, 1004), response.content
            # Refused: nothing written (an expired cart found by this request is released first).
            after = self.state()
            assert after[0] == before[0]
            TALLY[f"redeem: {codes[0]}"] += 1

    def is_code(self, promotion_id: str) -> bool:
        return PromoCode.objects.filter(promotion_id=promotion_id).exists()

    @precondition(lambda self: self.recorded)
    @rule(pick=st.integers(0, 1000))
    def replay(self, pick):
        request, content = self.recorded[pick % len(self.recorded)]
        # Any request releases the expired carts it finds (release on read); the replay itself must
        # change nothing else.
        cart_locks_sweep(now=timezone.now())
        before = self.state()
        response = self.api.post(REDEEM, request, format="json")
        assert response.status_code == 200 and response.content == content
        assert self.state() == before
        TALLY["replay"] += 1

    @precondition(lambda self: self.recorded)
    @rule(pick=st.integers(0, 1000))
    def reverse(self, pick):
        request, _ = self.recorded[pick % len(self.recorded)]
        response = self.api.post(
            f"{REDEEM}/reverse", {"transactionIdentifier": request["transactionIdentifier"]}, format="json"
        )
        assert response.status_code == 200, response.content
        TALLY["reverse"] += 1

    # --- after every step -----------------------------------------------------------------------

    @invariant()
    def stored_rows_keep_the_invariants(self):
        if self.org is not None:
            assert violations([self.org.pk]) == []

    @invariant()
    def reserved_plus_used_never_exceed_a_limit(self):
        if self.org is None:
            return
        for used, reserved, limit in RedemptionCounter.objects.filter(org=self.org).values_list(
            "used", "reserved", "limit"
        ):
            assert used + reserved <= limit
        # A MOVING limit (any 3 days): every 3-day window's buckets, used and reserved, within it.
        buckets: dict[tuple[int, str], dict[dt.date, Decimal]] = defaultdict(dict)
        for restriction_id, scope, key, used, reserved, limit in (
            RedemptionCounter.objects.filter(org=self.org, restriction__window_kind="MOVING")
            .exclude(window_start=LIFETIME)
            .values_list("restriction_id", "scope", "window_start", "used", "reserved", "limit")
        ):
            buckets[restriction_id, scope][key] = (used + reserved, limit)
        for days in buckets.values():
            for end in days:
                total = sum(
                    held for day, (held, _) in days.items() if end - dt.timedelta(days=2) <= day <= end
                )
                assert total <= days[end][1], (end, days)
        reversed_ids = set(
            RedemptionReversal.objects.filter(org=self.org).values_list("redemption_id", flat=True)
        )
        assert reversed_ids <= set(Redemption.objects.filter(org=self.org).values_list("pk", flat=True))


PROFILES = {
    "ci": settings(
        max_examples=5,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    ),
    "deep": settings(
        max_examples=200,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    ),
}


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_cart_invariants_hold_under_random_histories():
    history_seed = int(os.environ.get("HYPOTHESIS_SEED") or random.randrange(2**32))
    print(f"hypothesis seed: {history_seed} (HYPOTHESIS_SEED={history_seed} replays this run)")
    TALLY.clear()
    profile = PROFILES[
        os.environ.get("HYPOTHESIS_PROFILE", "ci")
        if os.environ.get("HYPOTHESIS_PROFILE") in PROFILES
        else "ci"
    ]
    run_state_machine_as_test(seed(history_seed)(CartHistories), settings=profile)
    print("steps:", ", ".join(f"{outcome} {n}" for outcome, n in sorted(TALLY.items())))
    org_rules_forget()
