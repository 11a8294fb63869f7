"""The promotion engine's evaluation, in-process (`--core`, the default): how long one cart takes; and
the evaluate API under gunicorn against a bare JSON endpoint and the minimal write reference (`--http`,
bench/_evaluate_http.py).

    python bench/evaluate.py [--core] [--promotions 250] [--lines 50] [--carts 2000] [--seed 1]
    DATABASE_URL=postgres://... python bench/evaluate.py --http [--promotions 250] [--lines 50] [--seed 1]

No database and no Django: an org of BENCH promotions of mixed kinds (cart and product conditions on SKUs,
categories and brands, combos, tenders and payment modes; cart, product, free product, fixed price, per
unit and tender actions; POS, CUSTOMER and EARNING types, a fifth of them exclusive, priorities and end
dates mixed) is built as the API echoes promotions, compiled with `compile_rule` into one `RuleSet` (as
the API caches it per org), and random carts of BENCH lines over a catalogue of 5,000 SKUs in 50
categories and 30 brands are evaluated one after the other, after a warm-up.

Prints the median and 99th percentile per evaluation, wall clock and this thread's CPU time (the target is
judged on CPU time, which other processes of a shared machine inflate far less), the candidates the index
offered and the promotions applied per cart on average, and the ratio of the median to the target
(<= 2 ms). `--exclusive` sets the share of exclusive promotions (default 0.2; 0 stacks everything, the
worst case: dozens of promotions apply to each cart). Exits 1 when the median misses the target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promotions.engine import (
    Cart,
    Context,
    Line,
    RuleSet,
    Tender,
    compile_rule,
    evaluate,
)

TARGET_MEDIAN_MS = 2.0
SKUS = 5000
CATEGORIES = 50
BRANDS = 30
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
START_MS = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


class Catalogue:
    def __init__(self, rng: random.Random):
        self.products = []
        for number in range(SKUS):
            price = Decimal(rng.choice((99, 149, 199, 250, 499, 999, 1299, 2499, 4999, 12999))) / 100
            self.products.append(
                (
                    f"SKU{number:05d}",
                    price,
                    f"CAT{rng.randrange(CATEGORIES):02d}",
                    f"BRAND{rng.randrange(BRANDS):02d}",
                )
            )


def _value(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high)}.000000"


def _criteria(rng: random.Random, catalogue: Catalogue) -> dict:
    entity = rng.choice(("SKU", "CATEGORY", "CATEGORY", "BRAND"))
    if entity == "SKU":
        values = [rng.choice(catalogue.products)[0] for _ in range(rng.randint(1, 40))]
    elif entity == "CATEGORY":
        values = [f"CAT{rng.randrange(CATEGORIES):02d}" for _ in range(rng.randint(1, 3))]
    else:
        values = [f"BRAND{rng.randrange(BRANDS):02d}" for _ in range(rng.randint(1, 2))]
    return {"entity": entity, "operator": "IN", "values": sorted(set(values))}


def _product(rng, catalogue, kpi=None) -> dict:
    kpi = kpi or rng.choice(("NONE", "QUANTITY", "AMOUNT"))
    condition = {"criteriaList": [_criteria(rng, catalogue)], "kpi": kpi}
    if kpi == "QUANTITY":
        condition.update(operator="GREATER_THAN_OR_EQUAL", value=_value(rng, 1, 3))
    elif kpi == "AMOUNT":
        condition.update(operator="GREATER_THAN_OR_EQUAL", value=_value(rng, 5, 60))
    else:
        condition.update(operator="NONE", value="0.000000")
    return condition


def promotion(number: int, rng: random.Random, catalogue: Catalogue, exclusive: float = 0.2) -> dict:
    """One API-shaped promotion of a random kind."""
    kind = rng.choices(
        ("product", "cart", "free", "per_unit", "combo_fixed", "buy_x_get_y", "tender", "payment"),
        weights=(30, 12, 10, 12, 8, 14, 7, 7),
    )[0]
    include = {"includeItemsFromConditionSet": True}
    if kind == "product":
        condition = {"type": "PRODUCT", "productCondition": _product(rng, catalogue)}
        discount = rng.choice((("PERCENTAGE", _value(rng, 5, 30)), ("ABSOLUTE", _value(rng, 1, 5))))
        action = {
            "type": "PRODUCT_BASED",
            "productBasedAction": {"type": discount[0], "value": discount[1], **include},
        }
    elif kind == "cart":
        condition = {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL",
                                                        "value": _value(rng, 50, 400)}}  # fmt: skip
        discount = rng.choice((("PERCENTAGE", _value(rng, 2, 10)), ("ABSOLUTE", _value(rng, 5, 20))))
        action = {"type": "CART_BASED", "cartBasedAction": {"type": discount[0], "value": discount[1]}}
    elif kind == "free":
        condition = {"type": "PRODUCT", "productCondition": _product(rng, catalogue, "QUANTITY")}
        action = {"type": "FREE_PRODUCT", "freeProductAction": dict(include)}
    elif kind == "per_unit":
        condition = {"type": "PRODUCT", "productCondition": _product(rng, catalogue, "NONE")}
        reward = rng.choice(
            (
                {
                    "type": "PRODUCT_BASED",
                    "productBasedAction": {"type": "ABSOLUTE", "value": "1.000000", **include},
                },
                {"type": "FREE_PRODUCT", "freeProductAction": dict(include)},
            )
        )
        action = {"type": "PER_UNIT", "perUnitAction": {"rewardAction": reward, "perUnitKPI": "QUANTITY",
                                                        "perUnitDivider": _value(rng, 2, 3), **include}}  # fmt: skip
    elif kind == "combo_fixed":
        parts = [_product(rng, catalogue, "QUANTITY") for _ in range(2)]
        condition = {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": parts}}
        target_parts = [{**part, "operator": "EQUALS", "value": "1.000000"} for part in parts]
        action = {"type": "FIXED_PRICE", "fixedPriceAction": {
            "value": _value(rng, 10, 40), "includeItemsFromConditionSet": False,
            "productBasedCondition": {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": target_parts}},
        }}  # fmt: skip
    elif kind == "buy_x_get_y":
        condition = {"type": "PRODUCT", "productCondition": _product(rng, catalogue, "QUANTITY")}
        target = {**_product(rng, catalogue, "QUANTITY"), "operator": "EQUALS", "value": "1.000000"}
        action = {"type": "PRODUCT_BASED", "productBasedAction": {
            "type": "PERCENTAGE", "value": "50.000000", "includeItemsFromConditionSet": False,
            "productBasedCondition": {"type": "PRODUCT", "productCondition": target},
        }}  # fmt: skip
    elif kind == "tender":
        condition = {"type": "TENDER", "tenderCondition": {
            "tenderModes": [{"type": "CARD", "identifiers": [rng.choice(("CreditCard", "DebitCard"))]}],
            "condition": {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN",
                                                            "value": _value(rng, 20, 200)}},
        }}  # fmt: skip
        action = {"type": "TENDER", "tenderBasedAction": {"type": "PERCENTAGE", "value": _value(rng, 1, 5)}}
    else:
        condition = {"type": "PAYMENT_MODE_SCOPE", "paymentModeCondition": {"operator": "IN", "values": ["POINTS"]},
                     "productCondition": _product(rng, catalogue)}  # fmt: skip
        action = {
            "type": "PRODUCT_BASED",
            "productBasedAction": {"type": "PERCENTAGE", "value": "5.000000", **include},
        }
    end = dt.datetime(2026, 7, 1, tzinfo=dt.UTC) + dt.timedelta(days=rng.randrange(365))
    return {
        "id": f"bench{number:04d}",
        "name": f"bench promotion {number}",
        "messageLabel": "",
        "type": rng.choices(("POS", "CUSTOMER", "EARNING"), weights=(80, 10, 10))[0],
        "mode": "DISCOUNT",
        "active": True,
        "priority": rng.choice((0, 0, 0, 1, 2)),
        "isStackable": rng.random() >= exclusive,
        "startDate": START_MS,
        "endDate": int(end.timestamp() * 1000),
        "condition": condition,
        "action": action,
        "promotionRestrictions": {},
    }


def random_cart(rng: random.Random, catalogue: Catalogue, lines: int) -> Cart:
    items = []
    for number in range(lines):
        sku, price, category, brand = rng.choice(catalogue.products)
        qty = rng.choice((1, 1, 1, 2, 3))
        items.append(
            Line(f"line{number}", sku, price * qty, Decimal(qty), frozenset({category}), frozenset({brand}))
        )
    total = sum((line.amount for line in items), Decimal(0))
    tenders = (Tender(rng.choice(("CreditCard", "DebitCard", "POINTS", "CASH")), total),)
    return Cart(tuple(items), tenders)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", action="store_true", help="the engine in-process (the default)")
    parser.add_argument(
        "--http", action="store_true", help="the evaluate API under gunicorn and wrk, against a bare endpoint"
    )
    parser.add_argument("--promotions", type=int, default=250)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--carts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--exclusive", type=float, default=0.2, help="share of exclusive (isStackable false) promotions"
    )
    args = parser.parse_args()
    if args.http:
        from bench._evaluate_http import http_main

        return http_main(promotions=args.promotions, lines=args.lines, seed=args.seed)
    rng = random.Random(args.seed)
    catalogue = Catalogue(rng)
    bodies = [promotion(number, rng, catalogue, args.exclusive) for number in range(args.promotions)]
    started = time.perf_counter()
    rules = RuleSet(compile_rule(body) for body in bodies)
    compiled_ms = (time.perf_counter() - started) * 1000
    wallet = {
        body["id"]: f"earned-{body['id']}" for body in bodies if body["type"] != "POS" and rng.random() < 0.5
    }
    context = Context(now=NOW, timezone="Europe/London", wallet=wallet)
    carts = [random_cart(rng, catalogue, args.lines) for _ in range(args.carts)]
    for the_cart in carts[:200]:  # warm-up
        evaluate(the_cart, rules, context)
    wall: list[float] = []
    cpu: list[float] = []
    candidates = applied = 0
    for the_cart in carts:
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        result = evaluate(the_cart, rules, context)
        cpu.append((time.thread_time_ns() - started_cpu) / 1e6)
        wall.append((time.perf_counter_ns() - started) / 1e6)
        applied += len(result.applied)
        candidates += len(result.applied) + len(result.skipped)
    wall.sort()
    cpu.sort()

    def p99(values: list[float]) -> float:
        return values[max(0, int(len(values) * 0.99) - 1)]

    median = statistics.median(cpu)
    ok = median <= TARGET_MEDIAN_MS
    print(
        f"bench/evaluate.py --core: {args.promotions} promotions ({args.exclusive:.0%} exclusive), "
        f"carts of {args.lines} lines, {len(carts)} carts"
    )
    print(f"  compile + index: {compiled_ms:.1f} ms for the org")
    print(
        f"  per cart: {candidates / len(carts):.1f} candidates considered, {applied / len(carts):.2f} applied"
    )
    print(
        f"  wall per evaluation: median {statistics.median(wall):.3f} ms, p99 {p99(wall):.3f} ms, max {wall[-1]:.3f} ms"
    )
    print(f"  CPU per evaluation:  median {median:.3f} ms, p99 {p99(cpu):.3f} ms, max {cpu[-1]:.3f} ms")
    print(
        f"  load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (wall times grow on a shared machine)"
    )
    print(
        f"  CPU median / target: {median / TARGET_MEDIAN_MS:.2f}  {'PASS' if ok else 'FAIL'} "
        f"(target <= {TARGET_MEDIAN_MS} ms)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
