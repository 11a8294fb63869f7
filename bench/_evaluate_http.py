"""`bench/evaluate.py --http`: the evaluate API under gunicorn, loaded by wrk, against two references.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/evaluate.py --http

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_evaluate`), created and migrated at the start and dropped at the end. wrk
drives the load (BENCH_WRK, default /usr/bin/wrk: `apt-get install -y wrk`).

Fixtures: an org with 250 active promotions of the `--core` mode's mix (product, cart, free product,
per-unit, combo at a fixed price, buy X get Y, tender and payment-mode kinds; POS, CUSTOMER and EARNING
types, a fifth exclusive), each created through the create service (so each is one the engine
evaluates), running from yesterday for 30 days; a customer holding an earned instance of every wallet
promotion; BENCH_CARTS (default 200) distinct carts of 50 lines over the `--core` catalogue, each with
one tender (CreditCard, DebitCard or POINTS) for half its amount.

Three gunicorn servers with the same settings (BENCH_WORKERS sync workers, default one per core, or
gthread with BENCH_THREADS > 1; DEBUG off):

    bare        POST /bare/evaluate (bench/_app/bare_settings.py): Django and DRF with no middleware, no
                authentication and no database, one view doing the same JSON work (parse and validate
                the cart, render an answer of the same keys and size)
    reference   POST /reference/write (bench/_app/reference_settings.py): the minimal write every HTTP
                bench compares with (one conditional UPDATE of a hot counter, one INSERT), outside the
                app's stack
    evaluate    POST /api_gateway/v1/promotions/evaluate, the app (Basic auth of a read-only API
                client, the customer named)

wrk (`-t` one thread per core, `-c` BENCH_CLIENTS connections, default 8; the carts sent in turn, the
reference's writes each once) drives one server at a time: BENCH_WARMUP_SECONDS (default 3) each (the
app's workers compile the rules once), then BENCH_ROUNDS (default 5) rounds of BENCH_SECONDS /
BENCH_ROUNDS (default 10 s in all) per endpoint in turn.

Prints, per endpoint, requests/s (the median of the slices), p50 and p99 (the medians of the slices';
the worst slice's p99 too), non-2xx answers and socket errors, and CPU per request (gunicorn,
PostgreSQL, wrk); then the ratios evaluate/bare and evaluate/reference (the medians of the rounds'
ratios; target >= 0.5 each), the evaluate p99 (target < 50 ms), the errors, and that one Evaluation
was stored per answered evaluation (up to the requests wrk left in flight). Exits 1 when a target is
missed, 2 when the bench cannot run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench._common import (
    BENCH_ORG_ID,
    REFERENCE_PATH,
    REFERENCE_SETTINGS,
    CpuMeter,
    Endpoint,
    RequestPool,
    alternate,
    analyze,
    bench_database,
    endpoint_report,
    gunicorn,
    gunicorn_description,
    load_settings,
    paired_ratio,
    reference_counter,
    reference_pool,
    reference_problems,
    verdict,
    wrk_command,
    wrk_threads,
)

MARKER = "scratch database of bench/evaluate.py --http"
EVALUATE_PATH = "/api_gateway/v1/promotions/evaluate"
BARE_PATH = "/bare/evaluate"
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
CLIENTS, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=10, warmup_seconds=3)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CARTS = int(os.environ.get("BENCH_CARTS", "200"))


# --- Fixtures ------------------------------------------------------------------------------------------


@dataclass
class Fixtures:
    auth: str
    customer_id: int
    cart_bodies: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def make_fixtures(promotions: int, lines: int, seed: int) -> Fixtures:
    """The org, its promotions (bench/evaluate.py's mix, stored through the create service, running
    from yesterday for 30 days), the customer holding an instance of each wallet promotion, a
    read-only API client, and the carts as JSON bodies."""
    from django.utils import timezone

    from bench._common import basic_auth, bench_org
    from bench.evaluate import Catalogue, promotion
    from promotions.audit import Actor
    from promotions.services import api_client_create, promotion_create
    from wallets.models import Customer, EarnedPromotion

    rng = random.Random(seed)
    catalogue = Catalogue(rng)
    org = bench_org()
    client, secret = api_client_create(org=org, username="bench.evaluate", access="READ")
    customer = Customer.objects.create(org=org, mobile="919900000001")
    now = timezone.now()
    kinds: dict[str, int] = {}
    for number in range(promotions):
        body = promotion(number, rng, catalogue)
        created = promotion_create(
            org=org,
            fields={
                "name": body["name"], "type": body["type"], "priority": body["priority"],
                "is_stackable": body["isStackable"], "message_label": f"bench {number}",
                "start_date": now - dt.timedelta(days=1), "end_date": now + dt.timedelta(days=30),
                "condition": body["condition"], "action": body["action"],
            },
            restrictions=[],
            actor=Actor.system(),
        )  # fmt: skip
        kind = f"{body['condition']['type']}/{body['action']['type']}"
        kinds[kind] = kinds.get(kind, 0) + 1
        if created.type != "POS":  # an earned (unlocked) instance: EARNING and CUSTOMER alike apply
            EarnedPromotion.objects.create(
                org=org, customer=customer, promotion=created, kind="EARNED", earned_from_type="ACTIVITY",
                earned_from_id=f"bench-{number}", event_time=now, valid_till=now + dt.timedelta(days=30),
            )  # fmt: skip
    carts = []
    for _ in range(CARTS):
        items = []
        for _ in range(lines):
            sku, price, category, brand = rng.choice(catalogue.products)
            qty = rng.choice((1, 1, 1, 2, 3))
            items.append(
                {"sku": sku, "amount": f"{price * qty:.2f}", "qty": str(qty), "categoryList": [category], "brandList": [brand]}
            )  # fmt: skip
        total = sum(Decimal(item["amount"]) for item in items)
        tender = rng.choice(("CreditCard", "DebitCard", "POINTS"))
        body = {
            "amount": f"{total:.2f}",
            "customerId": customer.pk,
            "cartItems": items,
            "cartTenders": [{"identifier": tender, "amount": f"{total / 2:.2f}"}],
        }
        carts.append(json.dumps(body, separators=(",", ":")))
    return Fixtures(basic_auth(client.username, secret), customer.pk, carts, kinds)


# --- Main ----------------------------------------------------------------------------------------------


def http_main(*, promotions: int = 250, lines: int = 50, seed: int = 1) -> int:
    wrk_command()  # before the fixtures: stops here when wrk is missing
    threads = wrk_threads(CLIENTS)
    with bench_database("promotions_bench_evaluate", marker=MARKER) as bench_url:
        from django.db import connection

        from promotions.models import Organization
        from redemptions.models import Evaluation

        fixtures = make_fixtures(promotions, lines, seed)
        analyze()
        counter_id = reference_counter(Organization.objects.get(pk=BENCH_ORG_ID))
        connection.close()
        carts = [("POST", EVALUATE_PATH, body) for body in fixtures.cart_bodies]
        bare_carts = [("POST", BARE_PATH, body) for body in fixtures.cart_bodies]
        with (
            tempfile.TemporaryDirectory() as directory,
            gunicorn(bench_url, workers=WORKERS, threads=THREADS, ready_path=EVALUATE_PATH) as (app_port, app_pid),
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings="bench._app.bare_settings", ready_path=BARE_PATH,
            ) as (bare_port, bare_pid),
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings=REFERENCE_SETTINGS, ready_path=REFERENCE_PATH,
            ) as (reference_port, reference_pid),
        ):  # fmt: skip
            work = Path(directory)
            bare = Endpoint(
                "bare",
                bare_port,
                bare_pid,
                RequestPool(work, "bare", bare_carts, threads=threads, once=False),
            )
            reference = Endpoint(
                "reference",
                reference_port,
                reference_pid,
                reference_pool(work, counter_id, threads=threads),
                pool_setting="BENCH_REFERENCE_POOL",
            )
            evaluate = Endpoint(
                "evaluate", app_port, app_pid, RequestPool(work, "evaluate", carts, threads=threads, once=False),
                auth=fixtures.auth,
            )  # fmt: skip
            meter = CpuMeter(app_pid, bench_url)
            try:
                alternate(
                    [bare, reference, evaluate],
                    clients=CLIENTS, seconds=SECONDS, warmup_seconds=WARMUP_SECONDS, rounds=ROUNDS, meter=meter,
                )  # fmt: skip
            finally:
                meter.close()
        stored = Evaluation.objects.count()
        problems = reference_problems(reference, counter_id)
        connection.close()
    endpoints = [bare, reference, evaluate]
    to_bare, to_reference = paired_ratio(evaluate, bare), paired_ratio(evaluate, reference)
    errors = sum(e.non_2xx + e.socket_errors for e in endpoints)
    # wrk stops each run with requests in flight: stored, maybe, and not answered.
    answered = evaluate.ok
    verdicts = {
        "ratio to bare": to_bare >= TARGET_RATIO,
        "ratio to reference": to_reference >= TARGET_RATIO,
        "p99": evaluate.p99_ms < TARGET_P99_MS,
        "errors": errors == 0,
        "stored": answered <= stored <= answered + evaluate.unanswered and not problems,
    }
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(fixtures.kinds.items()))
    print(
        f"evaluate ({promotions} active promotions: {kinds}; carts of {lines} lines) against a bare JSON "
        f"endpoint and the minimal write, both outside the app's stack: {gunicorn_description(WORKERS, THREADS)}"
        f" per server, wrk -t{threads} -c{CLIENTS}, {SECONDS:g} s per endpoint in {ROUNDS} alternating slices"
        f" after {WARMUP_SECONDS:g} s warm-up ({os.cpu_count()} cores shared by the servers, PostgreSQL and wrk)"
    )
    for endpoint in endpoints:
        endpoint_report(endpoint)
    print(
        f"  ratio evaluate/bare: {to_bare:.3f}  {verdict(verdicts['ratio to bare'])} (target >= {TARGET_RATIO})"
    )
    print(
        f"  ratio evaluate/reference: {to_reference:.3f}  {verdict(verdicts['ratio to reference'])}"
        f" (target >= {TARGET_RATIO})"
    )
    print(
        f"  evaluate p99: {evaluate.p99_ms:.1f} ms  {verdict(verdicts['p99'])} (target < {TARGET_P99_MS:g} ms;"
        " the median of the slices')"
    )
    print(f"  errors (non-2xx or socket, warm-up included): {errors}  {verdict(verdicts['errors'])}")
    print(
        f"  evaluations stored: {stored:,} for {answered:,} answers 200 and {evaluate.unanswered} unanswered"
        f"{'; ' + '; '.join(problems) if problems else ''}  {verdict(verdicts['stored'])}"
    )
    return 0 if all(verdicts.values()) else 1
