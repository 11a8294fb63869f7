"""Soak: a fixed-time mixed load on the app under gunicorn, then the invariants checked in the database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/soak.py

DATABASE_URL names the PostgreSQL server; the soak runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_soak`), created and migrated at the start and dropped at the end (only
one this script created: it carries a marker comment).

The app runs under gunicorn on 127.0.0.1 (BENCH_WORKERS sync workers, default one per core, or gthread
workers with BENCH_THREADS > 1) with the production settings (DEBUG off, real password hashing, persistent
database connections) and the per-client rate limit set out of reach (API_RATE_LIMIT, as every
bench sets it). Two orgs, each with BENCH_CUSTOMERS customers
(default 200), an API client and three promotions: a CUSTOMER one (each customer issued one instance
at the start; at most 3 issued; Customer REDEMPTION limit 2), an EARNING one (each customer holds
one earned instance at the start; at most 4 earned; an instance serves 2 redemptions and at most 40
of discount; Customer DISCOUNT limit 100) and a POS one (Promotion REDEMPTION limit 60, Customer
TRANSACTION limit 3). Limits are small on purpose: they are reached during the run, so refusals
(expected 4xx) and reversals giving units back happen at the limit, under concurrency.

Two loads, one after the other. First the mixed load, driven by Python client threads: each request
may depend on earlier answers (replays and reversals of answered transactions, answers compared with
the first ones), which wrk cannot do, and it offers a fixed rate (an open loop), which wrk cannot
either. BENCH_CLIENTS threads (default 8; even ones use the first org's credentials, odd ones the
second's), each with its own HTTP/1.1 connection, send a random mix at BENCH_RATE requests per second
in all (default 80; each request timed from when it was due; 0: a closed loop, each client sending
again as soon as it is answered) for BENCH_WARMUP_SECONDS (default 10) of warm-up, then for
BENCH_SECONDS (default 60), the figures:

    wallet         30%  GET .../customer/{id} (half with includeRedemptions=true)
    earn           14%  POST .../{EARNING}/earn, a new earnedFromId (a fifth replay an earlier one)
    issueBulk       5%  POST .../{CUSTOMER}/issueBulk, 10 customers, a new contextId (a fifth replayed)
    redeem         33%  POST .../redemptions, a new transactionIdentifier: a CUSTOMER or EARNING line
                        (the instance chosen by the server), with a POS line in 3 of 10
    redeem replay   7%  the same body again under an answered transactionIdentifier: same answer
    reverse         7%  POST .../redemptions/reverse of an answered transaction (sometimes again)
    cross-org       4%  the other org's customer, promotion or transaction: must be 404

Then the throughput: wrk (BENCH_WRK, default /usr/bin/wrk: `apt-get install -y wrk`; `-t` one
thread per core, `-c` BENCH_CLIENTS) saturates the server for BENCH_THROUGHPUT_SECONDS (default 10; 0
leaves it out) with a mix prepared before the clock, each request sent once, both orgs' credentials:
wallet reads 30, new earns 14, new issueBulks of 10 customers 5 and new redemptions 40 (no replays,
reversals nor cross-org calls: they need answers or are checks), so that the load generator takes
no Python threads from the server's cores. Its requests' keys start with `W-`: the answer-based
checks below leave them out, the stored invariants cover them.

Prints throughput and p50/p99 per route, the answers (5xx and connection errors, unexpected answers,
expected refusals by code), the gunicorn workers' RSS (VmRSS) after the warm-up and at the end, and
the invariants: those of the stored data (`redemptions/invariants.py`, as `manage.py check_invariants`
checks them: counters equal the non-reversed redemptions they count, no limit exceeded, nothing
crosses orgs, one audit event per redemption and reversal), then what only the run's answers tell:
exactly one Redemption per transactionIdentifier answered 200, replays answered byte for byte the
same and creating nothing (nor earn/issueBulk replays), no answer with another org's data. Targets:
no 5xx (nor connection errors or unexpected answers), no invariant violation, redeem p99 < 100 ms,
RSS growth < 10%; and for the wrk load its rate, p50, p99, answers and CPU per request, with no 5xx
nor socket error. Exits 1 on any FAIL, 2 when the soak itself cannot run.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    CPU_GROUPS,
    TARGET_P99_MS,
    Call,
    CpuMeter,
    Endpoint,
    Load,
    RequestPool,
    Tally,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    endpoint_report,
    gunicorn,
    gunicorn_description,
    gunicorn_workers,
    http_load,
    load_settings,
    percentile,
    run_main,
    verdict,
    wrk_command,
    wrk_threads,
)

CLIENTS, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=60, warmup_seconds=10)
# Requests per second offered by all clients together (open loop, see http_load); 0: closed loop.
RATE = float(os.environ.get("BENCH_RATE", "80"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "200"))  # per org
SEED = int(os.environ.get("BENCH_SEED", "1"))
# The wrk load (0: none) and how many requests it has prepared, each sent once.
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_THROUGHPUT_SECONDS", "10"))
THROUGHPUT_POOL = int(os.environ.get("BENCH_THROUGHPUT_POOL", "30000"))
WRK_PREFIX = "W-"  # the keys of the wrk load's requests
TARGET_RSS_GROWTH = 0.10
MARKER = "scratch database of bench/soak.py"
ORG_IDS = (100001, 100002)
BASE = "/api_gateway/v1/promotions"
ISSUE_BULK_SIZE = 10

WALLET, EARN, ISSUE, REDEEM, REPLAY, REVERSE, CROSS = (
    "wallet",
    "earn",
    "issueBulk",
    "redeem",
    "redeem replay",
    "reverse",
    "cross-org",
)
MIX = {WALLET: 30, EARN: 14, ISSUE: 5, REDEEM: 33, REPLAY: 7, REVERSE: 7, CROSS: 4}
# What each route may answer besides 200: (HTTP status, error code) of a documented refusal.
REFUSALS = {
    EARN: {(409, 708)},  # maxEarningPerCustomer reached
    REDEEM: {(409, 409), (400, 715)},  # a Customer/Promotion limit reached; no usable instance left
    CROSS: {(404, 404)},
}


# --- Fixtures ----------------------------------------------------------------------------------------


@dataclass
class Org:
    """One org's fixtures and what its clients were answered (shared by its client threads)."""

    org_id: int
    headers: dict[str, str]
    customers: list[int]
    customer_promotion: str  # CUSTOMER: issued
    earning_promotion: str  # EARNING: earned
    pos_promotion: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    redeemed: list[str] = field(default_factory=list)  # transactionIdentifiers answered 200
    bodies: dict[str, bytes] = field(default_factory=dict)  # their request bodies
    answers: dict[str, bytes] = field(default_factory=dict)  # their first 200 answer
    line_counts: dict[str, int] = field(default_factory=dict)  # their lines
    reversed: set[str] = field(default_factory=set)  # transactionIdentifiers reversed with 200
    earns: list[bytes] = field(default_factory=list)  # earn bodies answered 200
    earned: dict[str, str] = field(default_factory=dict)  # earnedFromId -> instance id answered
    issues: list[tuple[str, bytes]] = field(default_factory=list)  # issueBulk (path, body) answered 200
    issued: dict[str, dict[str, str]] = field(default_factory=dict)  # contextId -> {customerId: id}
    violations: list[str] = field(default_factory=list)  # answers that break an invariant


def make_fixtures() -> list[Org]:
    from django.utils import timezone

    from promotions.models import Promotion, PromotionRestriction, PromotionType
    from wallets.models import Customer, EarnedPromotion

    now = timezone.now()
    Level, Kpi = PromotionRestriction.Level, PromotionRestriction.Kpi
    orgs = []
    for org_id in ORG_IDS:
        org = bench_org(org_id, f"Soak org {org_id}")
        auth = bench_api_client(org, f"soak.till.{org_id}")

        def promotion(name: str, kind: str, org=org, **limits) -> Promotion:
            return bench_promotion(org, name, kind, discount=100, **limits)

        issued = promotion("Soak customer promotion", PromotionType.CUSTOMER, max_issuance_per_customer=3)
        earning = promotion(
            "Soak earning promotion",
            PromotionType.EARNING,
            max_issuance_per_customer=-1,
            max_earning_per_customer=4,
        )
        pos = promotion("Soak POS promotion", PromotionType.POS, max_issuance_per_customer=-1)
        PromotionRestriction.objects.bulk_create(
            PromotionRestriction(promotion=p, level=level, kpi=kpi, limit=limit)
            for p, level, kpi, limit in [
                (issued, Level.CUSTOMER, Kpi.REDEMPTION, 2),
                (earning, Level.EARN, Kpi.REDEMPTION, 2),
                (earning, Level.EARN, Kpi.DISCOUNT, 40),
                (earning, Level.CUSTOMER, Kpi.DISCOUNT, 100),
                (pos, Level.PROMOTION, Kpi.REDEMPTION, 60),
                (pos, Level.CUSTOMER, Kpi.TRANSACTION, 3),
            ]
        )
        customers = Customer.objects.bulk_create(
            [Customer(org=org, mobile=f"9{org_id % 10}{n:08d}") for n in range(CUSTOMERS)]
        )
        EarnedPromotion.objects.bulk_create(
            EarnedPromotion(
                org=org,
                customer=customer,
                promotion=p,
                kind=kind,
                earned_from_type=source,
                earned_from_id="seed",
                event_time=now,
                valid_till=p.end_date,
            )
            for customer in customers
            for p, kind, source in [
                (issued, EarnedPromotion.Kind.ISSUED, EarnedPromotion.EarnedFromType.BULK_ISSUE),
                (earning, EarnedPromotion.Kind.EARNED, EarnedPromotion.EarnedFromType.ACTIVITY),
            ]
        )
        orgs.append(
            Org(
                org_id=org.pk,
                headers={
                    "Authorization": auth,
                    "Content-Type": "application/json",
                },
                customers=[c.pk for c in customers],
                customer_promotion=issued.pk,
                earning_promotion=earning.pk,
                pos_promotion=pos.pk,
            )
        )
    return orgs


# --- The load ------------------------------------------------------------------------------------------


def epoch_ms(seconds_ago: float = 0) -> int:
    return int((time.time() - seconds_ago) * 1000)


def error_code(content: bytes) -> int | None:
    """The first error code of an error envelope; None when the body is not one."""
    try:
        return json.loads(content)["errors"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@dataclass
class Client:
    """One client thread's own state: its org, its random stream, the call in flight, what it saw."""

    index: int
    org: Org
    other: Org
    rng: random.Random
    sent: int = 0
    pending: tuple = ()  # what the call in flight is about, for `answered`
    refusals: Counter = field(default_factory=Counter)  # (route, status, code) of expected refusals
    unexpected: Counter = field(default_factory=Counter)  # (route, status, code) of the others

    def unique(self, prefix: str) -> str:
        self.sent += 1
        return f"{prefix}-{self.org.org_id}-{self.index}-{self.sent}"

    # -- The calls --

    def next_call(self) -> Call:
        route = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        with self.org.lock:
            answered = list(self.org.redeemed[-2000:]) if route in (REPLAY, REVERSE) else []
        if route in (REPLAY, REVERSE) and not answered:
            route = REDEEM
        org, rng = self.org, self.rng
        if route == WALLET:
            customer = rng.choice(org.customers)
            query = "?includeRedemptions=true" if rng.random() < 0.5 else ""
            self.pending = (route, customer)
            return Call(route, "GET", f"{BASE}/customer/{customer}{query}", None, org.headers)
        if route == EARN:
            with org.lock:
                earns = org.earns[-2000:]
            if earns and rng.random() < 0.2:
                body = rng.choice(earns)
                self.pending = (route, json.loads(body)["earnedFromId"], body, False)
            else:
                earned_from = self.unique("E")
                body = json.dumps(
                    {
                        "customerId": rng.choice(org.customers),
                        "earnedFromType": "ACTIVITY",
                        "earnedFromId": earned_from,
                        "eventTime": epoch_ms(60),
                        "eventDetails": {"id": earned_from, "type": "TransactionAdd"},
                    }
                ).encode()
                self.pending = (route, earned_from, body, True)
            return Call(route, "POST", f"{BASE}/{org.earning_promotion}/earn", body, org.headers)
        if route == ISSUE:
            with org.lock:
                issues = org.issues[-500:]
            replay = bool(issues) and rng.random() < 0.2
            if replay:
                path, body = rng.choice(issues)
            else:
                customers = rng.sample(org.customers, ISSUE_BULK_SIZE)
                path = f"{BASE}/{org.customer_promotion}/issueBulk?contextId={self.unique('C')}"
                body = json.dumps(customers).encode()
            self.pending = (route, path.rsplit("=", 1)[1], path, body, not replay)
            return Call(route, "POST", path, body, org.headers)
        if route == REDEEM:
            return self.redeem_call(org, rng.choice(org.customers), route)
        if route == REPLAY:
            transaction = rng.choice(answered)
            with org.lock:
                body = org.bodies[transaction]
            self.pending = (route, transaction)
            return Call(route, "POST", f"{BASE}/redemptions", body, org.headers)
        if route == REVERSE:
            transaction = rng.choice(answered)
            body = json.dumps({"transactionIdentifier": transaction, "reason": "soak"}).encode()
            self.pending = (route, transaction)
            return Call(route, "POST", f"{BASE}/redemptions/reverse", body, org.headers)
        return self.cross_org_call()

    def redeem_call(self, org: Org, customer: int, route: str) -> Call:
        rng = self.rng
        transaction = self.unique("T")
        wallet_promotion = rng.choice([org.customer_promotion, org.earning_promotion])
        discount = 100 if wallet_promotion == org.customer_promotion else rng.choice([10, 20, 30])
        lines = [(wallet_promotion, discount)]
        if rng.random() < 0.3:
            lines.append((org.pos_promotion, 5))
        body = json.dumps(
            {
                "customerId": str(customer),
                "transactionIdentifier": transaction,
                "transactionNumber": f"BILL-{transaction}",
                "transactionDate": epoch_ms(60),
                "amount": 1000,
                "lineItems": [
                    {
                        "sku": f"SKU-{n}",
                        "promotionId": promotion,
                        "redemptionCount": 1,
                        "discount": discount,
                        "discountAppliedOnQuantity": 1,
                        "promotionAppliedOnQuantity": 1,
                    }
                    for n, (promotion, discount) in enumerate(lines)
                ],
            }
        ).encode()
        self.pending = (route, transaction, body, len(lines))
        return Call(route, "POST", f"{BASE}/redemptions", body, org.headers)

    def cross_org_call(self) -> Call:
        """This org's credentials, the other org's ids: 404 whatever the route, and nothing written."""
        org, other, rng = self.org, self.other, self.rng
        kind = rng.choice(["wallet", "earn", "issueBulk", "redeem", "reverse"])
        self.pending = (CROSS, kind)
        if kind == "wallet":
            path, body = f"{BASE}/customer/{rng.choice(other.customers)}", None
            return Call(CROSS, "GET", path, body, org.headers)
        if kind == "earn":  # this org's customer, the other org's promotion
            body = {
                "customerId": rng.choice(org.customers),
                "earnedFromType": "ACTIVITY",
                "earnedFromId": self.unique("X"),
                "eventTime": epoch_ms(60),
                "eventDetails": {"id": "cross", "type": "TransactionAdd"},
            }
            path = f"{BASE}/{other.earning_promotion}/earn"
        elif kind == "issueBulk":  # the other org's promotion and customers
            path = f"{BASE}/{other.customer_promotion}/issueBulk?contextId={self.unique('X')}"
            body = rng.sample(other.customers, 2)
        elif kind == "redeem":  # the other org's customer
            call = self.redeem_call(org, rng.choice(other.customers), CROSS)
            self.pending = (CROSS, kind)
            return call
        else:  # the other org's transaction
            with other.lock:
                transaction = rng.choice(other.redeemed) if other.redeemed else "T-none"
            path, body = f"{BASE}/redemptions/reverse", {"transactionIdentifier": transaction}
        return Call(CROSS, "POST", path, json.dumps(body).encode(), org.headers)

    # -- The answers --

    def answered(self, call: Call, status: int, content: bytes) -> bool:
        """Record the answer; True when it is one the route may give."""
        route, *about = self.pending
        org = self.org
        if status == 200 and route != CROSS:
            self.recorded(route, about, content)
            return True
        code = error_code(content) if 400 <= status < 500 else None
        if (status, code) in REFUSALS.get(route, ()):
            self.refusals[route, status, code] += 1
            return True
        self.unexpected[route, status, code] += 1
        if route == CROSS and status < 500:
            with org.lock:
                org.violations.append(f"cross-org {about[0]} answered {status}: {content[:120]!r}")
        return False

    def recorded(self, route: str, about: list, content: bytes) -> None:
        org = self.org
        data = json.loads(content)["data"]
        problem = None
        if route == WALLET:
            (customer,) = about
            others = [item["customerId"] for item in data if item["customerId"] != customer]
            if others:
                problem = f"the wallet of {customer} listed customers {others[:3]}"
        elif route == EARN:
            earned_from, body, new = about
            with org.lock:
                first = org.earned.setdefault(earned_from, data["id"])
                if new:
                    org.earns.append(body)
            if first != data["id"]:
                problem = f"earn {earned_from} answered {data['id']}, first {first}"
        elif route == ISSUE:
            context, path, body, new = about
            instances = {customer: item["id"] for customer, item in data.items()}
            with org.lock:
                first = org.issued.setdefault(context, instances)
                if new:
                    org.issues.append((path, body))
            if first != instances:
                problem = f"issueBulk {context} answered {instances}, first {first}"
        elif route == REDEEM:
            transaction, body, lines = about
            with org.lock:
                org.redeemed.append(transaction)
                org.bodies[transaction] = body
                org.answers[transaction] = content
                org.line_counts[transaction] = lines
        elif route == REPLAY:
            (transaction,) = about
            with org.lock:
                first = org.answers[transaction]
            if content != first:
                problem = f"the replay of {transaction} answered another body: {content[:120]!r}"
        elif route == REVERSE:
            (transaction,) = about
            with org.lock:
                org.reversed.add(transaction)
        if problem:
            with org.lock:
                org.violations.append(problem)


def drive(port: int, clients: list[Client], seconds: float, meter: CpuMeter) -> tuple[Load, Counter]:
    """The clients' mix for `seconds`: what was answered, and the CPU seconds spent (per CPU_GROUPS)."""
    before = []
    load = http_load(
        port,
        clients=len(clients),
        seconds=seconds,
        next_call=lambda n: clients[n].next_call(),
        expected=lambda n, call, status, content: clients[n].answered(call, status, content),
        before_start=lambda: before.append(meter.sample()),
        rate=RATE or None,
    )
    return load, CpuMeter.spent(before[0], meter.sample())


def throughput_requests(orgs: list[Org], count: int) -> list[tuple[str, str, str, str]]:
    """The wrk load's requests (method, path, body, Authorization): a mix of wallet reads, new earns,
    new issueBulks and new redemptions over both orgs, each with its own key (`W-`...)."""
    rng = random.Random(SEED * 1000 + 999)
    mix = {WALLET: 30, EARN: 14, ISSUE: 5, REDEEM: 40}
    requests = []
    for n in range(count):
        org = orgs[n % len(orgs)]
        auth = org.headers["Authorization"]
        key = f"{WRK_PREFIX}{n}"
        route = rng.choices(list(mix), weights=list(mix.values()))[0]
        if route == WALLET:
            requests.append(("GET", f"{BASE}/customer/{rng.choice(org.customers)}", "", auth))
            continue
        if route == EARN:
            path = f"{BASE}/{org.earning_promotion}/earn"
            body = {
                "customerId": rng.choice(org.customers), "earnedFromType": "ACTIVITY", "earnedFromId": key,
                "eventTime": epoch_ms(60), "eventDetails": {"id": key, "type": "TransactionAdd"},
            }  # fmt: skip
        elif route == ISSUE:
            path = f"{BASE}/{org.customer_promotion}/issueBulk?contextId={key}"
            body = rng.sample(org.customers, ISSUE_BULK_SIZE)
        else:
            path = f"{BASE}/redemptions"
            promotion = rng.choice([org.customer_promotion, org.earning_promotion])
            lines = [(promotion, 100 if promotion == org.customer_promotion else rng.choice([10, 20, 30]))]
            if rng.random() < 0.3:
                lines.append((org.pos_promotion, 5))
            body = {
                "customerId": str(rng.choice(org.customers)), "transactionIdentifier": key,
                "transactionNumber": f"BILL-{key}", "transactionDate": epoch_ms(60), "amount": 1000,
                "lineItems": [
                    {"sku": f"SKU-{i}", "promotionId": p, "redemptionCount": 1, "discount": d,
                     "discountAppliedOnQuantity": 1, "promotionAppliedOnQuantity": 1}
                    for i, (p, d) in enumerate(lines)
                ],
            }  # fmt: skip
        requests.append(("POST", path, json.dumps(body), auth))
    return requests


# --- Memory --------------------------------------------------------------------------------------------


def workers_rss(master_pid: int) -> dict[int, int]:
    """VmRSS in kB of each gunicorn worker (Linux /proc)."""
    rss = {}
    for pid in gunicorn_workers(master_pid):
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss[pid] = int(line.split()[1])
        except OSError:
            pass
    return rss


# --- The invariants ------------------------------------------------------------------------------------


def invariant_problems(orgs: list[Org]) -> dict[str, list[str]]:
    """Each invariant's violations, [] when it holds: the stored data's (`redemptions.invariants`, as
    `manage.py check_invariants` checks them), then what only this run's answers tell."""
    from django.db import connection

    from redemptions.invariants import INVARIANTS, violations
    from redemptions.models import Redemption, RedemptionLine, RedemptionReversal
    from wallets.models import EarnedPromotion

    t = SimpleNamespace(  # the tables
        instance=EarnedPromotion._meta.db_table,
        redemption=Redemption._meta.db_table,
        line=RedemptionLine._meta.db_table,
        reversal=RedemptionReversal._meta.db_table,
    )

    def rows(sql: str, params=None) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def listed(found: list, what: str) -> list[str]:
        return [f"{len(found)} {what}, e.g. {found[:3]}"] if found else []

    problems: dict[str, list[str]] = {invariant: [] for invariant in INVARIANTS}
    for violation in violations():
        invariant, _, row = violation.partition(": ")
        problems[invariant].append(row)

    replays = []
    for org in orgs:
        label = f"org {org.org_id}:"
        recorded = dict(
            rows(
                f"""SELECT red.transaction_identifier, count(l.id) FROM {t.redemption} red
                    LEFT JOIN {t.line} l ON l.redemption_id = red.id WHERE red.org_id = %s
                    GROUP BY red.transaction_identifier""",
                [org.org_id],
            )
        )
        recorded = {key: n for key, n in recorded.items() if not key.startswith(WRK_PREFIX)}
        replays += listed(
            sorted(recorded.keys() - org.line_counts.keys()),
            f"{label} redemptions recorded without an answer 200",
        )
        replays += listed(
            sorted(org.line_counts.keys() - recorded.keys()),
            f"{label} answers 200 without a redemption recorded",
        )
        replays += listed(
            sorted(t_id for t_id, n in org.line_counts.items() if recorded.get(t_id, n) != n),
            f"{label} redemptions recorded with another number of lines than sent",
        )
        reversals = rows(
            f"""SELECT red.transaction_identifier FROM {t.reversal} v
                JOIN {t.redemption} red ON red.id = v.redemption_id WHERE v.org_id = %s""",
            [org.org_id],
        )
        replays += listed(
            sorted({r for (r,) in reversals} ^ org.reversed),
            f"{label} reversals recorded <> reversals answered 200",
        )
        for kind, answered, what in (
            ("EARNED", set(org.earned.values()), "earns"),
            ("ISSUED", {i for ids in org.issued.values() for i in ids.values()}, "issueBulks"),
        ):
            found = rows(
                f"""SELECT id FROM {t.instance} WHERE org_id = %s AND kind = %s AND earned_from_id <> 'seed'
                    AND earned_from_id NOT LIKE %s""",
                [org.org_id, kind, WRK_PREFIX + "%"],
            )
            replays += listed(
                sorted({i for (i,) in found} ^ answered),
                f"{label} {kind} instances <> those {what} answered 200",
            )
    crossing = [v for org in orgs for v in org.violations if v.startswith(("cross-org", "the wallet"))]
    differing = [v for org in orgs for v in org.violations if v not in crossing]
    problems["replays created nothing extra"] = replays + listed(
        differing, "replays answered otherwise than the first time"
    )
    problems["answers stayed in their org"] = listed(crossing, "answers with another org's data")
    return problems


# --- Main ----------------------------------------------------------------------------------------------


def summary(clients: list[Client], *tallies: Tally) -> tuple[int, int, Counter, Counter]:
    """(5xx and connection errors, answers 200, expected refusals, unexpected answers) over the tallies."""
    failures = ok = 0
    for tally in tallies:
        for statuses in tally.statuses.values():
            failures += sum(n for status, n in statuses.items() if status == 0 or status >= 500)
            ok += statuses[200]
    refusals, unexpected = Counter(), Counter()
    for client in clients:
        refusals.update(client.refusals)
        unexpected.update(client.unexpected)
    return failures, ok, refusals, unexpected


def main() -> int:
    if THROUGHPUT_SECONDS:
        wrk_command()  # before the fixtures: stops here when wrk is missing
    with bench_database("promotions_bench_soak", marker=MARKER) as bench_url:
        from django.db import connection

        orgs = make_fixtures()
        connection.close()
        clients = [
            Client(n, orgs[n % 2], orgs[(n + 1) % 2], random.Random(SEED * 1000 + n)) for n in range(CLIENTS)
        ]
        with gunicorn(
            bench_url,
            workers=WORKERS,
            threads=THREADS,
            ready_path=f"{BASE}/redemptions",
        ) as (port, pid):
            meter = CpuMeter(pid, bench_url)
            try:
                # Warm-up: each worker checks each client's secret once (the slow hash, then cached
                # per process), opens its database connection and runs every route's code.
                warm, _ = drive(port, clients, WARMUP_SECONDS, meter)
                rss_start = workers_rss(pid)
                load, cpu = drive(port, clients, SECONDS, meter)
                rss_end = workers_rss(pid)
                throughput = None
                if THROUGHPUT_SECONDS:
                    with tempfile.TemporaryDirectory() as directory:
                        requests = throughput_requests(orgs, THROUGHPUT_POOL)
                        pool = RequestPool(
                            Path(directory), "mix", requests, threads=wrk_threads(CLIENTS), once=True
                        )
                        throughput = Endpoint(
                            "wrk mix", port, pid, pool, pool_setting="BENCH_THROUGHPUT_POOL"
                        )
                        throughput.run(THROUGHPUT_SECONDS, clients=CLIENTS, meter=meter)
            finally:
                meter.close()
        problems = invariant_problems(orgs)

    tally = load.tally
    failures, ok, refusals, unexpected = summary(clients, warm.tally, tally)
    unexpected_other = sum(n for (_, status, _), n in unexpected.items() if 0 < status < 500)
    redeem_p99 = percentile(tally.latencies[REDEEM], 99) * 1000 if tally.latencies[REDEEM] else float("inf")
    same_workers = rss_start.keys() == rss_end.keys() and bool(rss_start)
    growth = sum(rss_end.values()) / sum(rss_start.values()) - 1 if same_workers else float("inf")
    violations = sum(len(found) for found in problems.values())
    verdicts = {
        "5xx": failures == 0,
        "unexpected": unexpected_other == 0,
        "p99": redeem_p99 < TARGET_P99_MS,
        "rss": growth < TARGET_RSS_GROWTH,
        "invariants": violations == 0,
    }
    if throughput is not None:
        verdicts["wrk 5xx"] = throughput.socket_errors == 0 and not any(
            status >= 500 for run in throughput.runs for status in run.statuses
        )

    def mark(passed: bool) -> str:
        return "PASS" if passed else "FAIL"

    total = sum(len(latencies) for latencies in tally.latencies.values())
    print(
        f"soak: {gunicorn_description(WORKERS, THREADS)}, {CLIENTS} client threads over 2 orgs"
        f" ({f'offering {RATE:g} requests/s in all' if RATE else 'closed loop'})"
        f" ({CUSTOMERS:,} customers each), {SECONDS:g} s after {WARMUP_SECONDS:g} s warm-up"
        f" (PostgreSQL, {os.cpu_count()} cores shared by server, database and load generator)"
    )
    print(f"  all routes {total / load.elapsed:7,.0f} req/s   {total:>7,} requests")
    cores = ", ".join(f"{group} {cpu[group] / load.elapsed:.2f}" for group in CPU_GROUPS)
    per_request = (cpu["gunicorn"] + cpu["PostgreSQL"]) / max(1, total) * 1000
    print(f"    CPU in cores: {cores}; gunicorn + PostgreSQL {per_request:.1f} ms per request")
    for route in MIX:
        latencies = tally.latencies[route]
        if not latencies:
            continue
        statuses = ", ".join(f"{status}: {n:,}" for status, n in sorted(tally.statuses[route].items()))
        print(
            f"  {route:<13} {len(latencies) / load.elapsed:6,.0f} req/s   p50 {percentile(latencies, 50) * 1000:6.1f} ms"
            f"   p99 {percentile(latencies, 99) * 1000:6.1f} ms   {len(latencies):>6,} requests ({statuses})"
        )
    print(f"  answers, warm-up included: {ok:,} 200")
    print(f"    5xx and connection errors: {failures}  {mark(verdicts['5xx'])} (target 0)")
    print(f"    other unexpected answers: {unexpected_other}  {mark(verdicts['unexpected'])} (target 0)")
    for (route, status, code), n in sorted(unexpected.items(), key=str):
        print(f"      {route} {status} (code {code}): {n:,}")
    for sample in (warm.tally.samples + tally.samples)[:5]:
        print(f"      {sample}")
    print(f"    expected refusals: {sum(refusals.values()):,}")
    for (route, status, code), n in sorted(refusals.items(), key=str):
        print(f"      {route} {status} (code {code}): {n:,}")
    print(
        f"  redeem p99: {redeem_p99:.1f} ms  {mark(verdicts['p99'])} (target < {TARGET_P99_MS:g} ms;"
        " new transactions, replays not included)"
    )
    workers = ", ".join(
        f"{rss_start[pid] / 1024:.1f} -> {rss_end[pid] / 1024:.1f}"
        for pid in sorted(rss_start)
        if pid in rss_end
    )
    print(
        f"  worker RSS after warm-up -> at the end (MiB): {workers or 'not readable'};"
        f" total growth {growth:+.1%}  {mark(verdicts['rss'])} (target < {TARGET_RSS_GROWTH:.0%})"
    )
    if not same_workers:
        print(f"    the workers changed during the run: {sorted(rss_start)} -> {sorted(rss_end)}")
    for org in orgs:
        print(
            f"  org {org.org_id}: {len(org.line_counts):,} redemptions answered 200, {len(org.reversed):,}"
            f" reversed, {len(org.earned):,} earns, {sum(len(i) for i in org.issued.values()):,} issued"
        )
    if throughput is not None:
        statuses = Counter()
        for run in throughput.runs:
            statuses.update(run.statuses)
        print(
            f"  throughput, wrk -t{wrk_threads(CLIENTS)} -c{CLIENTS} closed loop for {THROUGHPUT_SECONDS:g} s"
            " (wallet reads, new earns, issueBulks and redemptions; no replays nor reversals):"
        )
        endpoint_report(throughput)
        answers = ", ".join(f"{status}: {n:,}" for status, n in sorted(statuses.items()))
        print(
            f"    answers: {answers}; 5xx and socket errors: {verdict(verdicts['wrk 5xx'])} (target 0;"
            " limits reached answer 4xx)"
        )
    print(f"  invariants (after both loads): {mark(verdicts['invariants'])}")
    for invariant, found in problems.items():
        print(f"    {invariant}: {'PASS' if not found else 'FAIL: ' + '; '.join(found)}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    run_main(main)
