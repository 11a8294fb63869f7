"""Invariants under random histories.

A Hypothesis state machine plays random histories across two orgs, each with its own API client,
customers and promotions (POS, CUSTOMER, EARNING, REWARD; their limits drawn at random): it issues
(the issueBulk service), earns (earn and earn/bulk), redeems (line items and cart-level lines, with
or without an `earnedPromotionId`; a customer's sales of one promotion in a row), replays a
redemption (same body; and another body under the same transactionIdentifier), reverses, revokes
(revokeEarn), expires (the expire service) and reaches into the other org. Wallets start with issued
instances; the EARNING ones are LOCKED until an earn unlocks them. After every step it checks
the stored invariants of `redemptions/invariants.py` (counters equal the facts they count, no limit
exceeded, nothing crosses orgs) and, in the steps, what only the history knows: a replay answers the
same bytes and changes nothing; a reversal gives back exactly what its redemption took; a refused
request writes nothing; a limit refusal is true; issue and earn retries return the instances the
first call created.

Runs on the real PostgreSQL test database with real commits (`transaction=True`); each example
starts from two new orgs, and every check is scoped to them. Budget: about a minute on CI. A longer
run: `HYPOTHESIS_PROFILE=deep`. The seed is printed on failure; `HYPOTHESIS_SEED=<n>` replays it.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import connection
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

from promotions.audit import Actor
from promotions.models import AuditEvent, PromoCode, Promotion, PromotionRestriction, PromotionType
from promotions_site.errors import PromotionError
from promotions_site.timefmt import to_epoch_ms
from redemptions.invariants import violations
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal, code_scope
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from wallets.models import Customer, EarnedPromotion
from wallets.services import (
    EarnRequest,
    earned_promotions_earn,
    earned_promotions_expire,
    earned_promotions_issue,
)

PROFILES = {
    # CI: about a minute on the 2-core machine (25 histories of up to 50 steps).
    "ci": settings(
        max_examples=25,
        stateful_step_count=50,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ),
    # A long exploration, by hand or nightly: HYPOTHESIS_PROFILE=deep.
    "deep": settings(
        max_examples=300,
        stateful_step_count=100,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ),
}

API = "/api_gateway/v1/promotions"
ROLES = {
    "pos": PromotionType.POS,
    "customer": PromotionType.CUSTOMER,
    "earning": PromotionType.EARNING,
    "reward": PromotionType.REWARD,
}
Level = PromotionRestriction.Level
Kpi = PromotionRestriction.Kpi
Status = EarnedPromotion.Status
# Few customers and promotions, so that histories meet the limits often.
CUSTOMERS_PER_ORG = 2
# One pool for issueBulk contextIds and earn earnedFromIds: both key the instances (713 when mixed).
EVENT_IDS = ("E1", "E2", "E3")
# A customer named by a step: one of the acting org's, the other org's, or nobody's.
CUSTOMER_PICKS = ("c0", "c1", "c0", "c1", "foreign", "unknown")
OWN_CUSTOMERS = ("c0", "c1")
UNKNOWN_CUSTOMER_ID = 999_999_999_999
# What the histories did (printed at the end): how often each kind of step wrote or was refused.
TALLY: Counter[str] = Counter()


# --- What a history is made of -----------------------------------------------------------------------


def promotion_configs(role: str):
    """A promotion's limits: up to three of the Cart, Customer and Promotion ones and, for the
    promotions that can be earned, its Earn limits."""
    levels = [Level.CART, Level.CUSTOMER, Level.PROMOTION]
    restriction = st.tuples(st.sampled_from(levels), st.sampled_from(list(Kpi)), st.integers(1, 3))
    # Each Earn limit present or not (None), drawn apart: instances usable 2 or 3 times with a
    # discount budget of 40 or 80 are common.
    earn_limits = st.tuples(
        st.sampled_from([2, 3, None, 1]).map(lambda n: (Level.EARN, Kpi.REDEMPTION, n)),
        st.sampled_from([1, 2, None]).map(lambda n: (Level.EARN, Kpi.DISCOUNT, n)),
        st.sampled_from([None, 2, 3]).map(lambda n: (Level.EARN, Kpi.TRANSACTION, n)),
    ).map(lambda limits: [limit for limit in limits if limit[2] is not None])
    return st.fixed_dictionaries(
        {
            "max_issuance": st.sampled_from([1, 2, -1]),
            "max_earning": st.sampled_from([None, 1, 2]),
            "validity_days": st.sampled_from([None, 1, 5]),
            "restrictions": st.lists(restriction, max_size=3, unique_by=lambda r: (r[0], r[1])),
            "earn_limits": earn_limits if role in ("earning", "reward") else st.just([]),
        }
    )


# The CODE promotion of each org: Code limits (per code), and maybe a Promotion limit.
code_configs = st.fixed_dictionaries(
    {
        "code_limits": st.lists(
            st.tuples(st.just(Level.CODE), st.sampled_from(list(Kpi)), st.integers(1, 3)),
            min_size=1,
            max_size=3,
            unique_by=lambda r: r[1],
        ),
        "others": st.lists(
            st.tuples(
                st.sampled_from([Level.CART, Level.PROMOTION]), st.sampled_from(list(Kpi)), st.integers(2, 4)
            ),
            max_size=1,
        ),
    }
)
org_configs = st.fixed_dictionaries(
    {**{role: promotion_configs(role) for role in ROLES}, "code": code_configs}
)
# The code a code step names: the org's unlinked ones, the one linked to its first customer, a
# deactivated one, the other org's, an unknown one, or none.
CODE_PICKS = ("open0", "open1", "open0", "linked", "linked", "off", "theirs", "unknown", "none")
# No discount and 40 (an Earn DISCOUNT budget is 40 or 80) most of the time.
discounts = st.sampled_from([0, 40, 0, 40, 10])
# An explicit earnedPromotionId: the k-th instance the customer holds of the line's promotion
# ("own"), the k-th instance of anyone in either org ("any"), or None (the service chooses).
instance_picks = st.one_of(
    st.none(), st.tuples(st.sampled_from(["own", "own", "own", "any"]), st.integers(0, 3))
)
line_items = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(list(ROLES)),
            "instance": instance_picks,
            "count": st.integers(1, 3),
            "discount": discounts,
        }
    ),
    max_size=2,
)
cart_lines = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(list(ROLES)), "count": st.integers(1, 3), "discount": discounts}
    ),
    max_size=2,
)
orgs = st.integers(0, 1)
picks = st.integers(0, 1000)


def limit_value(kpi: str, n: int) -> Decimal:
    return Decimal(n * 40 if kpi == Kpi.DISCOUNT else n)


# --- The machine's view of the stored state --------------------------------------------------------


@dataclass
class World:
    """One org as the history sees it: its API client, customers and promotions by role."""

    org: object
    api: APIClient
    customers: list[Customer]
    promotions: dict[str, Promotion]
    # The CODE promotion's codes by pick (CODE_PICKS): (code, PromoCode id).
    codes: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class Snapshot:
    rows: dict[tuple[str, int], int]
    counters: dict[tuple[int, str], Decimal]
    instances: dict[str, tuple[str, int, int, Decimal]]


@dataclass
class Recorded:
    """A redemption the history recorded: its request, its first answer, what it touched."""

    org_index: int
    body: dict
    content: bytes
    involved_before: dict
    involved_after: dict
    reversed: bool = False
    keys: set = field(default_factory=set)


ROW_COUNTS = " UNION ALL ".join(
    f"SELECT '{label}', {org_column}, count(*) FROM {table} {join} WHERE {org_column} = ANY(%(orgs)s) GROUP BY 2"
    for label, table, join, org_column in (
        ("redemption", Redemption._meta.db_table, "", "org_id"),
        (
            "line",
            RedemptionLine._meta.db_table,
            f"l JOIN {Redemption._meta.db_table} red ON red.id = l.redemption_id",
            "red.org_id",
        ),
        ("reversal", RedemptionReversal._meta.db_table, "", "org_id"),
        ("counter", RedemptionCounter._meta.db_table, "", "org_id"),
        ("earned", EarnedPromotion._meta.db_table, "", "org_id"),
        ("audit", AuditEvent._meta.db_table, "", "org_id"),
        ("customer", Customer._meta.db_table, "", "org_id"),
        ("promotion", Promotion._meta.db_table, "", "org_id"),
    )
)


def snapshot(org_ids: list[int]) -> Snapshot:
    with connection.cursor() as cursor:
        cursor.execute(ROW_COUNTS, {"orgs": org_ids})
        rows = {(label, org_id): n for label, org_id, n in cursor.fetchall()}
    counters = {
        (restriction_id, scope): used
        for restriction_id, scope, used in RedemptionCounter.objects.filter(org_id__in=org_ids).values_list(
            "restriction_id", "scope", "used"
        )
    }
    instances = {
        pk: (status, rc, tc, dt_)
        for pk, status, rc, tc, dt_ in EarnedPromotion.objects.filter(org_id__in=org_ids).values_list(
            "pk", "status", "redemption_count", "transaction_count", "discount_total"
        )
    }
    return Snapshot(rows, counters, instances)


def involved(state: Snapshot, keys: set) -> dict:
    """The state of some counters and instances; a counter not yet created holds 0."""
    return {
        key: state.counters.get(key[1], Decimal(0)) if key[0] == "counter" else state.instances[key[1]]
        for key in keys
    }


def assert_error_envelope(response, *statuses: int) -> list[int]:
    """A refused request: one of the expected statuses, the JSON envelope; the codes."""
    assert response.status_code in statuses, (response.status_code, response.content[:500])
    errors = response.json()["errors"]
    assert errors and all({"code", "message"} <= set(error) for error in errors), errors
    return [error["code"] for error in errors]


class RandomHistories(RuleBasedStateMachine):
    """Issue, earn, redeem, replay, reverse, revoke and expire at random across two orgs."""

    def __init__(self):
        super().__init__()
        self.worlds: list[World] = []
        self.restrictions: dict[str, list[PromotionRestriction]] = {}
        self.recorded: dict[str, Recorded] = {}
        self.transaction_numbers = itertools.count(1)
        self.issued: dict[tuple, str] = {}
        self.earned: dict[tuple, list[str]] = {}
        self.state: Snapshot | None = None

    # --- setup ----------------------------------------------------------------------------------

    @initialize(configs=st.lists(org_configs, min_size=2, max_size=2))
    def two_orgs(self, configs):
        now = timezone.now()
        for config in configs:
            org = OrganizationFactory()
            client = ApiClientFactory(org=org)
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
            promotions = {}
            for role, promotion_type in ROLES.items():
                spec = config[role]
                promotion = PromotionFactory(
                    org=org,
                    type=promotion_type,
                    start_date=now - dt.timedelta(days=10),
                    end_date=now + dt.timedelta(days=30),
                    max_issuance_per_customer=spec["max_issuance"],
                    max_earning_per_customer=spec["max_earning"],
                    earned_validity_days=spec["validity_days"],
                )
                self.restrictions[promotion.pk] = [
                    PromotionRestrictionFactory(
                        promotion=promotion, level=level, kpi=kpi, limit=limit_value(kpi, n)
                    )
                    for level, kpi, n in spec["restrictions"] + spec["earn_limits"]
                ]
                promotions[role] = promotion
            customers = [CustomerFactory(org=org) for _ in range(CUSTOMERS_PER_ORG)]
            # The CODE promotion and its codes (redeemed by `redeem_with_code`).
            coded = PromotionFactory(
                org=org, type=PromotionType.CODE, start_date=now - dt.timedelta(days=10),
                end_date=now + dt.timedelta(days=30),
            )  # fmt: skip
            self.restrictions[coded.pk] = [
                PromotionRestrictionFactory(promotion=coded, level=level, kpi=kpi, limit=limit_value(kpi, n))
                for level, kpi, n in config["code"]["code_limits"] + config["code"]["others"]
            ]
            promotions["code"] = coded
            codes = {}
            for pick, owner, active in (
                ("open0", None, True),
                ("open1", None, True),
                ("linked", customers[0], True),
                ("off", None, False),
            ):
                code = PromoCode.objects.create(
                    org=org,
                    promotion=coded,
                    code=f"O{org.pk}{pick.upper()}",
                    customer=owner,
                    linked_on=now if owner else None,
                    active=active,
                )
                codes[pick] = (code.code, code.pk)
            self.worlds.append(World(org, api, customers, promotions, codes))
            # Wallets do not start empty: everyone holds an instance of each wallet promotion.
            for role in ("customer", "earning"):
                earned_promotions_issue(
                    promotion=promotions[role],
                    customer_ids=[customer.pk for customer in customers],
                    context_id="E0",
                    actor=Actor.system("invariants"),
                )
            for customer in customers:
                earned_promotions_earn(
                    customer=customer,
                    requests=[EarnRequest(promotion=promotions["reward"], earn_count=1, earned_from_id="E0")],
                    earned_from_type="REWARD",
                    event_time=now,
                    event_details={},
                    actor=Actor.system("invariants"),
                )
        self.state = snapshot(self.org_ids)

    @property
    def org_ids(self) -> list[int]:
        return [world.org.pk for world in self.worlds]

    def other(self, index: int) -> World:
        return self.worlds[1 - index]

    def customer_id(self, index: int, pick: str) -> int:
        if pick == "foreign":
            return self.other(index).customers[0].pk
        if pick == "unknown":
            return UNKNOWN_CUSTOMER_ID
        return self.worlds[index].customers[int(pick[1:])].pk

    def step(self, outcome: str) -> tuple[Snapshot, Snapshot]:
        """(the state before this step, the state after it); the state after becomes current."""
        TALLY[outcome] += 1
        before, self.state = self.state, snapshot(self.org_ids)
        return before, self.state

    def assert_nothing_written(self, outcome: str):
        before, after = self.step(outcome)
        assert after == before, "a refused or replayed request changed the stored state"

    # --- issue and earn -------------------------------------------------------------------------

    @rule(
        index=orgs,
        role=st.sampled_from(list(ROLES)),
        picks=st.lists(st.sampled_from(CUSTOMER_PICKS), min_size=1, max_size=4),
        context_id=st.sampled_from(EVENT_IDS),
    )
    def issue(self, index, role, picks, context_id):
        promotion = self.worlds[index].promotions[role]
        customer_ids = [self.customer_id(index, pick) for pick in picks]
        try:
            outcome = earned_promotions_issue(
                promotion=promotion,
                customer_ids=customer_ids,
                context_id=context_id,
                actor=Actor.system("invariants"),
            )
        except PromotionError as error:
            assert role in ("pos", "reward") and error.code == 707, error
            self.assert_nothing_written("issue: refused 707")
            return
        assert role in ("customer", "earning")
        refused = {error["customerId"]: error["code"] for error in outcome.errors}
        for customer_id, pick in zip(customer_ids, picks, strict=True):
            if pick in ("foreign", "unknown"):
                assert refused.get(customer_id) == 1007, (pick, outcome.errors)
        for customer_id, instance in outcome.issued.items():
            # A retry with the same contextId returns the instance the first call created.
            key = (promotion.pk, customer_id, context_id)
            assert self.issued.setdefault(key, instance.id) == instance.id
        self.step(f"issue: {outcome.created} created")

    def earn_body(self, index, pick, earned_from_type, event_hours_ago):
        return {
            "customerId": self.customer_id(index, pick),
            "earnedFromType": earned_from_type,
            "eventTime": to_epoch_ms(timezone.now() - dt.timedelta(hours=event_hours_ago)),
            "eventDetails": {"id": "event", "type": "TransactionAdd"},
        }

    def remember_earned(self, promotion_id, customer_id, earned_from_id, instances):
        """earn and earn/bulk retries return the instances the first call unlocked and created, in
        that order; a first earn unlocks the customer's LOCKED instances before it creates any."""
        key = (promotion_id, customer_id, earned_from_id)
        ids = [instance["id"] for instance in instances]
        known = self.earned.get(key, [])
        shared = min(len(known), len(ids))
        assert ids[:shared] == known[:shared], (key, known, ids)
        if (
            not known
            and EarnedPromotion.objects.filter(pk__in=ids, kind=EarnedPromotion.Kind.EARNED).exists()
        ):
            still_locked = EarnedPromotion.objects.filter(
                promotion_id=promotion_id,
                customer_id=customer_id,
                locked=True,
                status=Status.ACTIVE,
                valid_till__gt=timezone.now(),
            )
            assert not still_locked.exists(), "an earn created an instance while a LOCKED one waited"
        if ids and EarnedPromotion.objects.filter(pk__in=ids, locked=True).exists():
            raise AssertionError("an earn answered a LOCKED instance")
        if len(ids) > len(known):
            self.earned[key] = ids

    @rule(
        index=orgs,
        role=st.sampled_from(list(ROLES)),
        pick=st.sampled_from((*OWN_CUSTOMERS, "foreign")),
        earned_from_id=st.sampled_from(EVENT_IDS),
        earned_from_type=st.sampled_from(["ACTIVITY", "ACTIVITY", "MILESTONE"]),
        event_hours_ago=st.sampled_from([0, 24, 96]),
    )
    def earn(self, index, role, pick, earned_from_id, earned_from_type, event_hours_ago):
        world = self.worlds[index]
        promotion = world.promotions[role]
        body = self.earn_body(index, pick, earned_from_type, event_hours_ago)
        body["earnedFromId"] = earned_from_id
        response = world.api.post(f"{API}/{promotion.pk}/earn", body, format="json")
        if response.status_code == 200:
            assert role in ("earning", "reward") and pick != "foreign"
            self.remember_earned(promotion.pk, body["customerId"], earned_from_id, [response.json()["data"]])
            self.step("earn: earned")
            return
        codes = assert_error_envelope(response, 400, 404, 409)
        if pick == "foreign":
            assert codes == [404]
        elif role in ("pos", "customer"):
            assert codes == [714]
        else:
            assert codes[0] in (708, 713), codes
        self.assert_nothing_written(f"earn: refused {codes[0]}")

    @rule(
        index=orgs,
        pick=st.sampled_from((*OWN_CUSTOMERS, "foreign")),
        entries=st.lists(
            st.tuples(st.sampled_from(["earning", "reward"]), st.sampled_from(EVENT_IDS), st.integers(1, 3)),
            min_size=1,
            max_size=3,
            unique_by=lambda e: (e[0], e[1]),
        ),
        earned_from_type=st.sampled_from(["ACTIVITY", "MILESTONE", "REWARD"]),
        event_hours_ago=st.sampled_from([0, 24, 96]),
    )
    def earn_bulk(self, index, pick, entries, earned_from_type, event_hours_ago):
        world = self.worlds[index]
        body = self.earn_body(index, pick, earned_from_type, event_hours_ago)
        body["eventDetails"] = {"id": "event", "type": earned_from_type}
        body["earnedPromotions"] = [
            {"promotionId": world.promotions[role].pk, "earnedFromId": efid, "earnCount": count}
            for role, efid, count in entries
        ]
        response = world.api.post(f"{API}/earn/bulk", body, format="json")
        if pick == "foreign":
            assert assert_error_envelope(response, 404) == [404]
            self.assert_nothing_written("earn/bulk: refused 404")
            return
        assert response.status_code == 200, response.content[:500]
        for result, (_, efid, count) in zip(response.json()["data"], entries, strict=True):
            earned = result["customerEarnedPromotions"]
            assert len(earned) == result["successfulEarnCount"] <= count
            if result["failedEarnCount"]:
                assert result["errorDetails"]["errorCode"] in (708, 713)
            self.remember_earned(result["promotionId"], body["customerId"], efid, earned)
        self.step("earn/bulk: answered")

    # --- redeem, replay, reverse ----------------------------------------------------------------

    def instance_id(self, customer_id: int, promotion: Promotion, choice) -> str | None:
        if choice is None:
            return None
        scope, k = choice
        instances = EarnedPromotion.objects.filter(org_id__in=self.org_ids)
        if scope == "own":
            instances = instances.filter(customer_id=customer_id, promotion=promotion)
        ids = list(instances.order_by("pk").values_list("pk", flat=True))
        return ids[k % len(ids)] if ids else None

    def redemption_body(self, index, pick, by_mobile, items, carts, days_ago, txn):
        world = self.worlds[index]
        customer_id = self.customer_id(index, pick)
        body = {
            "transactionIdentifier": txn,
            "transactionNumber": f"BILL-{txn}",
            "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(days=days_ago, minutes=5)),
            "amount": 200,
        }
        if by_mobile and pick not in ("foreign", "unknown"):
            body["customerIdentifierType"] = "mobile"
            body["customerIdentifierValue"] = Customer.objects.get(pk=customer_id).mobile
        else:
            body["customerId"] = str(customer_id)
        if items:
            body["lineItems"] = []
            for position, item in enumerate(items):
                promotion = world.promotions[item["role"]]
                line = {
                    "sku": f"SKU-{position}",
                    "promotionId": promotion.pk,
                    "redemptionCount": item["count"],
                    "discount": item["discount"],
                    "discountAppliedOnQuantity": 1,
                    "promotionAppliedOnQuantity": 1,
                }
                instance_id = self.instance_id(customer_id, promotion, item["instance"])
                if instance_id is not None:
                    line["earnedPromotionId"] = instance_id
                if item.get("code"):
                    line["promoCode"] = item["code"]
                body["lineItems"].append(line)
        if carts:
            body["redemptions"] = [
                {
                    "promotionId": world.promotions[cart["role"]].pk,
                    "redemptionCount": cart["count"],
                    "discount": cart["discount"],
                    "discountAppliedOnQuantity": 1,
                    "promotionAppliedOnQuantity": 1,
                    **({"promoCode": cart["code"]} if cart.get("code") else {}),
                }
                for cart in carts
            ]
        return body

    @rule(
        index=orgs,
        pick=st.sampled_from(CUSTOMER_PICKS),
        by_mobile=st.booleans(),
        items=line_items,
        carts=cart_lines,
        days_ago=st.sampled_from([0, 0, 2]),
        reuse_other_orgs_key=st.integers(0, 9).map(lambda n: n == 0),
    )
    def redeem(self, index, pick, by_mobile, items, carts, days_ago, reuse_other_orgs_key):
        self.record(index, pick, by_mobile, items, carts, days_ago, reuse_other_orgs_key)

    @rule(
        index=orgs,
        pick=st.sampled_from(OWN_CUSTOMERS),
        role=st.sampled_from(["pos", "customer", "earning", "reward", "earning", "reward"]),
        sales=st.lists(
            st.fixed_dictionaries(
                {"count": st.integers(1, 2), "discount": discounts, "cart_level": st.booleans()}
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def redeem_one_promotion(self, index, pick, role, sales):
        """The common case: a customer's sales of one promotion in a row, each its own transaction,
        the instance (if any) chosen by the service, so an instance usable more than once is met
        again. Each sale is checked as a step of its own."""
        for i, sale in enumerate(sales):
            if i:
                self.check_invariants_now()
            line = {"role": role, "count": sale["count"], "discount": sale["discount"]}
            if sale["cart_level"]:
                self.record(index, pick, False, [], [line], 0, False)
            else:
                self.record(index, pick, False, [line | {"instance": None}], [], 0, False)

    @rule(
        index=orgs,
        pick=st.sampled_from(CUSTOMER_PICKS),
        code_pick=st.sampled_from(CODE_PICKS),
        lower=st.booleans(),
        sales=st.lists(
            st.fixed_dictionaries(
                {"count": st.integers(1, 2), "discount": discounts, "cart_level": st.booleans()}
            ),
            min_size=1,
            max_size=3,
        ),
        with_pos=st.booleans(),
    )
    def redeem_with_code(self, index, pick, code_pick, lower, sales, with_pos):
        """Sales of the org's CODE promotion through a code (docs/code-redemption.md), each its own
        transaction: an unlinked code, the one linked to the first customer, a deactivated one, the
        other org's, an unknown one, or none; sometimes with a POS line beside it. A refusal names
        the code's fault; a sale at a Code limit is 1004 and true (`assert_limit_reached`)."""
        world = self.worlds[index]
        code = {
            "theirs": self.other(index).codes["open0"][0],
            "unknown": "NOSUCHCODE",
            "none": None,
        }[code_pick] if code_pick in ("theirs", "unknown", "none") else world.codes[code_pick][0]  # fmt: skip
        if code and lower:
            code = code.lower()
        for i, sale in enumerate(sales):
            if i:
                self.check_invariants_now()
            line = {"role": "code", "count": sale["count"], "discount": sale["discount"], "code": code}
            pos = [{"role": "pos", "count": 1, "discount": 0}] if with_pos else []
            if sale["cart_level"]:
                outcome = self.record(index, pick, False, [], [line, *pos], 0, False)
            else:
                outcome = self.record(index, pick, False, [line | {"instance": None}], pos, 0, False)
            if pick in ("foreign", "unknown"):
                continue
            expected = {"none": 1001, "unknown": 1001, "theirs": 1001, "off": 1009}.get(code_pick)
            if code_pick == "linked" and pick != "c0":
                expected = 1005
            if expected is not None:
                assert outcome == [expected], (code_pick, pick, outcome)
            else:
                assert outcome == "recorded" or outcome in ([409], [1004]), (code_pick, pick, outcome)

    def record(self, index, pick, by_mobile, items, carts, days_ago, reuse_other_orgs_key):
        """Redeem through the API; a recorded redemption is remembered with what it touched."""
        world = self.worlds[index]
        txn = f"T{next(self.transaction_numbers)}"
        own = {r.body["transactionIdentifier"] for r in self.recorded.values() if r.org_index == index}
        others = sorted(
            r.body["transactionIdentifier"]
            for r in self.recorded.values()
            if r.org_index != index and r.body["transactionIdentifier"] not in own
        )
        if reuse_other_orgs_key and others:
            # transactionIdentifier is unique per org: the other org's key is a new transaction here.
            txn = others[0]
        body = self.redemption_body(index, pick, by_mobile, items, carts, days_ago, txn)
        response = world.api.post(f"{API}/redemptions", body, format="json")
        if response.status_code != 200:
            codes = assert_error_envelope(response, 400, 404, 409)
            assert 800 not in codes, "another org's transactionIdentifier was taken for a replay"
            lines = body.get("lineItems", []) + body.get("redemptions", [])
            well_formed = lines and sum(line["discount"] for line in lines) <= body["amount"]
            if pick in ("foreign", "unknown") and well_formed:
                assert codes == [404]  # the customer is looked up before anything else
            if codes in ([409], [1004]):
                self.assert_limit_reached(index, body, response.json()["errors"][0]["message"])
            self.assert_nothing_written(f"redeem: refused {codes[0]}")
            return codes
        assert pick not in ("foreign", "unknown")
        before, after = self.step("redeem: recorded")
        customer_id = int(response.json()["data"]["customerId"])
        lines = RedemptionLine.objects.filter(
            redemption__org=world.org, redemption__transaction_identifier=txn
        ).values_list("promotion_id", "earned_promotion_id", "promo_code_id")
        keys = {("instance", instance_id) for _, instance_id, _ in lines if instance_id}
        for promotion_id, _, code_id in lines:
            for restriction in self.restrictions[promotion_id]:
                if restriction.level in (Level.CUSTOMER, Level.PROMOTION):
                    scope = str(customer_id) if restriction.level == Level.CUSTOMER else ""
                    keys.add(("counter", (restriction.pk, scope)))
                elif restriction.level == Level.CODE:
                    assert code_id is not None, "a CODE promotion's line recorded without its code"
                    keys.add(("counter", (restriction.pk, code_scope(code_id))))
        self.recorded[f"{index}/{txn}"] = Recorded(
            index, body, response.content, involved(before, keys), involved(after, keys), keys=keys
        )
        return "recorded"

    def assert_limit_reached(self, index, body, message):
        """A 409 limit refusal names a limit that this transaction would really exceed."""
        match = re.fullmatch(r"(\w+) (\w+) limit of ([\d.]+) reached for promotion (\w+)\.", message)
        code_match = re.fullmatch(
            r"Code already redeemed: the code's (Code) (\w+) limit of ([\d.]+) is reached for promotion (\w+)\.",
            message,
        )
        assert match or code_match, message
        level, kpi, limit, promotion_id = (match or code_match).groups()
        lines = [
            line
            for line in body.get("lineItems", []) + body.get("redemptions", [])
            if line["promotionId"] == promotion_id
        ]
        use = {
            Kpi.REDEMPTION: Decimal(sum(line["redemptionCount"] for line in lines)),
            Kpi.DISCOUNT: Decimal(sum(line["discount"] for line in lines)),
            Kpi.TRANSACTION: Decimal(1),
        }[kpi]
        [restriction] = [r for r in self.restrictions[promotion_id] if (r.level, r.kpi) == (level, kpi)]
        assert restriction.limit == Decimal(limit)
        used = Decimal(0)
        if level != Level.CART:
            customer_id = body.get("customerId") or str(
                Customer.objects.get(org=self.worlds[index].org, mobile=body["customerIdentifierValue"]).pk
            )
            scope = customer_id if level == Level.CUSTOMER else ""
            if level == Level.CODE:
                [code] = {line["promoCode"] for line in lines}
                scope = code_scope(PromoCode.objects.get(org=self.worlds[index].org, code=code.upper()).pk)
            used = self.state.counters.get((restriction.pk, scope), Decimal(0))
        assert used + use > restriction.limit, (message, used, use)

    def pick_recorded(self, pick: int) -> Recorded:
        keys = sorted(self.recorded)
        return self.recorded[keys[pick % len(keys)]]

    @precondition(lambda self: self.recorded)
    @rule(
        pick=picks,
        change=st.sampled_from([None, None, "amount", "transactionNumber", "redemptionCount"]),
    )
    def replay(self, pick, change):
        """The same request again (a till's retry), or another body under the same key (800)."""
        recorded = self.pick_recorded(pick)
        api = self.worlds[recorded.org_index].api
        if change is None:
            response = api.post(f"{API}/redemptions", recorded.body, format="json")
            assert response.status_code == 200
            assert response.content == recorded.content, "a replay answered something else"
            self.assert_nothing_written("replay: same answer")
            return
        body = copy.deepcopy(recorded.body)
        if change == "amount":
            body["amount"] += 1
        elif change == "transactionNumber":
            body["transactionNumber"] += "-2"
        else:
            (body.get("lineItems") or body["redemptions"])[0]["redemptionCount"] += 1
        response = api.post(f"{API}/redemptions", body, format="json")
        assert assert_error_envelope(response, 409) == [800]
        self.assert_nothing_written("replay with another body: 800")

    @precondition(lambda self: self.recorded)
    @rule(pick=st.one_of(st.sampled_from(["latest", "earliest"]), picks))
    def reverse(self, pick):
        """A return: of the latest sale not reversed (the reversal must then restore the state
        exactly), of the earliest (while later sales stand), or of any, reversed already or not."""
        if pick in ("latest", "earliest"):
            unreversed = [key for key, r in self.recorded.items() if not r.reversed] or list(self.recorded)
            pick = sorted(self.recorded).index(unreversed[-1 if pick == "latest" else 0])
        self.reverse_recorded(self.pick_recorded(pick))

    def reverse_recorded(self, recorded: Recorded):
        txn = recorded.body["transactionIdentifier"]
        response = self.worlds[recorded.org_index].api.post(
            f"{API}/redemptions/reverse", {"transactionIdentifier": txn, "reason": "return"}, format="json"
        )
        assert response.status_code == 200, response.content[:500]
        data = response.json()["data"]
        assert data["reversed"] is True
        assert data["redemption"] == _data(recorded.content), "the reversal names another redemption"
        if recorded.reversed:
            self.assert_nothing_written("reverse: again, a no-op")  # reversing twice is a no-op
            return
        before, after = self.step("reverse: reversed")
        recorded.reversed = True
        was, now = involved(before, recorded.keys), involved(after, recorded.keys)
        took = _difference(recorded.involved_after, recorded.involved_before)
        assert _difference(now, was) == _negated(took), "a reversal gave back another amount"
        if was == recorded.involved_after:
            # Nothing touched them since the redemption: the reversal restores them exactly.
            TALLY["reverse: restored exactly"] += 1
            assert now == recorded.involved_before, (now, recorded.involved_before)

        def untouched(state):
            counters = {k: v for k, v in state.counters.items() if ("counter", k) not in recorded.keys}
            instances = {k: v for k, v in state.instances.items() if ("instance", k) not in recorded.keys}
            return counters, instances

        assert untouched(before) == untouched(after), "a reversal changed what its redemption did not take"

    # --- revoke and expire ----------------------------------------------------------------------

    @rule(
        index=orgs,
        pick=st.sampled_from(OWN_CUSTOMERS),
        entries=st.lists(
            st.tuples(st.sampled_from(list(ROLES)), st.lists(instance_picks, min_size=1, max_size=2)),
            min_size=1,
            max_size=2,
            unique_by=lambda e: e[0],
        ),
    )
    def revoke(self, index, pick, entries):
        world = self.worlds[index]
        customer_id = self.customer_id(index, pick)
        details = []
        for role, choices in entries:
            promotion = world.promotions[role]
            ids = [self.instance_id(customer_id, promotion, choice or ("own", 0)) for choice in choices]
            details.append({"promotionId": promotion.pk, "earnIds": [i or "0" * 24 for i in ids]})
        body = {"customerId": customer_id, "earnRevokeDetails": details}
        response = world.api.post(f"{API}/revokeEarn", body, format="json")
        if response.status_code != 200:
            assert set(assert_error_envelope(response, 400, 404)) <= {404, 729, 730, 731}
            self.assert_nothing_written("revoke: refused")
            return
        revoked = [
            i for detail in response.json()["data"]["revokedDetails"] for i in detail["revokedEarnIds"]
        ]
        statuses = set(EarnedPromotion.objects.filter(pk__in=revoked).values_list("status", flat=True))
        assert statuses <= {Status.REVOKED}
        self.step("revoke: revoked")

    @rule(scope=st.sampled_from(["org0", "org1", "all"]), days_ahead=st.sampled_from([0, 0, 0, 2]))
    def expire(self, scope, days_ahead):
        now = timezone.now() + dt.timedelta(days=days_ahead)
        org = None if scope == "all" else self.worlds[int(scope[-1])].org
        earned_promotions_expire(org=org, now=now)
        due = EarnedPromotion.objects.filter(
            org_id__in=self.org_ids, status=Status.ACTIVE, valid_till__lte=now
        )
        if org is not None:
            due = due.filter(org=org)
        assert not due.exists(), "an ACTIVE instance past its validTill was not expired"
        before, after = self.step("expire: ran")
        for pk, state in after.instances.items():
            if state != before.instances[pk]:
                assert (before.instances[pk][0], state[0]) == (Status.ACTIVE, Status.EXPIRED)
                assert state[1:] == before.instances[pk][1:]
        assert after.counters == before.counters

    # --- the other org's objects are out of reach -----------------------------------------------

    @rule(
        index=orgs,
        attempt=st.sampled_from(
            [
                "redeem for their customer",
                "redeem their promotion",
                "redeem their instance",
                "reverse their transaction",
                "revoke for their customer",
                "revoke their instance",
                "earn their promotion",
                "earn for their customer",
                "issue their promotion",
                "read their customer's wallet",
            ]
        ),
    )
    def reach_into_the_other_org(self, index, attempt):
        world, other = self.worlds[index], self.other(index)
        theirs = EarnedPromotion.objects.filter(org=other.org).order_by("pk").values_list("pk", flat=True)
        their_instance = theirs.first() or "f" * 24
        txn = f"T{next(self.transaction_numbers)}"
        mine, their_customer = world.customers[0].pk, other.customers[0].pk

        def redeem(customer_id, promotion, **extra):
            line = {
                "promotionId": promotion.pk,
                "redemptionCount": 1,
                "discount": 0,
                "discountAppliedOnQuantity": 1,
                "promotionAppliedOnQuantity": 1,
                **extra,
            }
            body = {
                "customerId": str(customer_id),
                "transactionIdentifier": txn,
                "transactionNumber": txn,
                "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(minutes=5)),
                "amount": 10,
                "lineItems": [line],
            }
            return world.api.post(f"{API}/redemptions", body, format="json")

        def revoke(customer_id, promotion, earn_id):
            body = {
                "customerId": customer_id,
                "earnRevokeDetails": [{"promotionId": promotion.pk, "earnIds": [earn_id]}],
            }
            return world.api.post(f"{API}/revokeEarn", body, format="json")

        def earn(customer_id, promotion):
            body = self.earn_body(index, "c0", "ACTIVITY", 0) | {
                "customerId": customer_id,
                "earnedFromId": "E1",
            }
            return world.api.post(f"{API}/{promotion.pk}/earn", body, format="json")

        # A transactionIdentifier only they have (the same key can be a transaction of both orgs).
        own_txns = {r.body["transactionIdentifier"] for r in self.recorded.values() if r.org_index == index}
        their_txns = sorted(
            r.body["transactionIdentifier"]
            for r in self.recorded.values()
            if r.org_index != index and r.body["transactionIdentifier"] not in own_txns
        )
        their_txn = their_txns[0] if their_txns else "none"
        calls = {
            "redeem for their customer": (lambda: redeem(their_customer, world.promotions["pos"]), 404),
            "redeem their promotion": (lambda: redeem(mine, other.promotions["pos"]), 400),
            "redeem their instance": (
                lambda: redeem(mine, world.promotions["customer"], earnedPromotionId=their_instance),
                715,
            ),
            "reverse their transaction": (
                lambda: world.api.post(
                    f"{API}/redemptions/reverse", {"transactionIdentifier": their_txn}, format="json"
                ),
                404,
            ),
            "revoke for their customer": (
                lambda: revoke(their_customer, other.promotions["customer"], their_instance),
                404,
            ),
            "revoke their instance": (
                lambda: revoke(mine, world.promotions["customer"], their_instance),
                731,
            ),
            "earn their promotion": (lambda: earn(mine, other.promotions["earning"]), 404),
            "earn for their customer": (lambda: earn(their_customer, world.promotions["earning"]), 404),
            "issue their promotion": (
                lambda: world.api.post(
                    f"{API}/{other.promotions['customer'].pk}/issueBulk?contextId=E1",
                    [mine, their_customer],
                    format="json",
                ),
                404,
            ),
            "read their customer's wallet": (lambda: world.api.get(f"{API}/customer/{their_customer}"), 404),
        }
        call, code = calls[attempt]
        response = call()
        assert code in assert_error_envelope(response, 400, 404), (attempt, response.content[:500])
        self.assert_nothing_written("reach into the other org: refused")

    # --- after every step -----------------------------------------------------------------------

    def check_invariants_now(self):
        self.stored_rows_keep_the_invariants()
        self.redemptions_are_those_the_history_recorded()

    @invariant()
    def stored_rows_keep_the_invariants(self):
        if self.worlds:
            assert violations(self.org_ids) == []

    @invariant()
    def redemptions_are_those_the_history_recorded(self):
        if not self.worlds:
            return
        stored = {
            f"{self.org_ids.index(org_id)}/{txn}": reversal_id is not None
            for org_id, txn, reversal_id in Redemption.objects.filter(org_id__in=self.org_ids).values_list(
                "org_id", "transaction_identifier", "reversal__id"
            )
        }
        assert stored == {key: r.reversed for key, r in self.recorded.items()}


def _data(content: bytes) -> dict:
    return json.loads(content)["data"]


def _difference(after: dict, before: dict) -> dict:
    """Per counter, its change; per instance, the change of its three counters."""
    changes = {}
    for key, value in after.items():
        if key[0] == "counter":
            changes[key] = value - before[key]
        else:
            changes[key] = tuple(a - b for a, b in zip(value[1:], before[key][1:], strict=True))
    return changes


def _negated(changes: dict) -> dict:
    return {k: tuple(-x for x in v) if isinstance(v, tuple) else -v for k, v in changes.items()}


def _profile() -> settings:
    name = os.environ.get("HYPOTHESIS_PROFILE", "ci")
    if name not in PROFILES:
        raise pytest.UsageError(f"HYPOTHESIS_PROFILE={name}: expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_invariants_hold_under_random_histories():
    history_seed = int(os.environ.get("HYPOTHESIS_SEED") or random.randrange(2**32))
    # Shown with the failing history when the test fails: HYPOTHESIS_SEED=<n> replays the run.
    print(f"hypothesis seed: {history_seed} (HYPOTHESIS_SEED={history_seed} replays this run)")

    def machine():
        return RandomHistories()

    TALLY.clear()
    run_state_machine_as_test(seed(history_seed)(machine), settings=_profile())
    print("steps:", ", ".join(f"{outcome} {n}" for outcome, n in sorted(TALLY.items())))
