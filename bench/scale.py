"""Every admin page and API list at three sizes of one org: does a page's cost grow with the table?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/scale.py --sizes S,M

DATABASE_URL names the PostgreSQL server. Each size runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_scale`) with `_s`, `_m` or `_l` appended, created, migrated and filled at
the start and dropped at the end (only one this script created: it carries a marker comment), unless
`--keep` is given: then the database stays, and a later run with `--keep` reuses it as it is.

The sizes (customers / earned promotions / redemptions, one org, 50 promotions):

    S  10,000 / 50,000 / 20,000        M  100,000 / 500,000 / 200,000       L  1,000,000 / 5,000,000 / 2,000,000

Rows are written by `INSERT ... SELECT ... FROM generate_series` in the database (minutes, not hours:
about 2 minutes for M on 2 cores): customers with a mobile, an email and an external id each; earned
promotions spread over the 50 promotions, a third EARNED, the rest ISSUED; redemptions over the last
180 days, one CART line each and a second LINEITEM line for one in four (and the promotions each
redeemed, as the write path records them), one in twenty reversed; then
the write path's counters and summaries are brought up to date the way the app's own maintenance does
(`refresh_redemption_summaries`), and the tables are analysed.

The app runs under gunicorn (BENCH_WORKERS sync workers, default 2, production settings). Each page is
asked once to warm it, then BENCH_REPEAT times (default 5) one after another by one client, and the
median time to the last byte is reported: admin pages as a logged-in staff user of the org holding
every permission (the admin's own session cookie), API lists as an API client (Basic auth). Every
answer must be 200; the bench stops otherwise.

Prints one table: a row per page, a column per size (ms), and the ratio of the largest size to the
smallest. Targets: every admin page < 500 ms and every API list < 100 ms at the largest size measured;
exits 1 when a page misses its target at that size, 2 when the bench cannot run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    BENCH_ORG_ID,
    basic_auth,
    bench_database_url,
    fail,
    gunicorn,
    recreate_database,
    run_main,
    setup_django,
)

MARKER = "scratch database of bench/scale.py"
SIZES = {
    "S": (10_000, 50_000, 20_000),
    "M": (100_000, 500_000, 200_000),
    "L": (1_000_000, 5_000_000, 2_000_000),
}
PROMOTIONS = 50
REDEMPTION_DAYS = 180
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ADMIN_TARGET_MS = 500.0
API_TARGET_MS = 100.0
ADMIN_PAGE_SIZE = 100  # the admin's list_per_page
API_LIMIT = 10  # the redemption list's default limit
API_PASSWORD = "bench-api-client"


# --- The data --------------------------------------------------------------------------------------


def fill(customers: int, earned: int, redemptions: int) -> dict:
    """The org, its promotions, a staff user and an API client, then the big tables; what the timed
    pages need to know about them."""
    from django.contrib.auth.models import Permission
    from django.db import connection

    from bench._common import bench_api_client, bench_org, bench_promotion
    from promotions.models import User

    org = bench_org()
    promotions = [
        bench_promotion(org, f"Bench promotion {n:02d}", "CUSTOMER" if n % 2 else "EARNING")
        for n in range(PROMOTIONS)
    ]
    auth = bench_api_client(org, "bench-scale-client")
    user = User.objects.create_user(username="bench-staff", password="unused", org=org, is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    promotion_ids = "ARRAY[" + ",".join(f"'{p.pk}'" for p in promotions) + "]::varchar[]"
    client_id = connection.cursor().execute("SELECT id FROM promotions_apiclient LIMIT 1").fetchone()[0]
    statements = [
        (
            "customers",
            f"""INSERT INTO wallets_customer (org_id, mobile, email, external_id, first_name, last_name,
                source, created_at)
            SELECT {org.pk}, '9' || lpad(g::text, 9, '0'), 'customer' || g || '@example.com', 'EXT' || g,
                'First' || (g % 997), 'Last' || (g % 1009), 'INSTORE', now() - (g % 730) * interval '1 day'
            FROM generate_series(1, {customers}) g""",
        ),
        (
            "earned promotions",
            f"""INSERT INTO wallets_earnedpromotion (id, org_id, customer_id, promotion_id, kind,
                earned_from_type, earned_from_id, seq, event_time, event_details, valid_till, status,
                redemption_count, transaction_count, discount_total, created_at, status_changed_at,
                locked, unlocked_from_type, unlocked_from_id)
            SELECT lpad(to_hex(g), 24, '0'), {org.pk}, c.first + (g % {customers}),
                ({promotion_ids})[1 + g % {PROMOTIONS}],
                CASE WHEN g % 3 = 0 THEN 'EARNED' ELSE 'ISSUED' END,
                CASE WHEN g % 3 = 0 THEN 'ACTIVITY' ELSE 'BULK_ISSUE' END, 'ctx-' || (g / {customers}),
                1, now() - (g % 365) * interval '1 day', '{{}}'::jsonb,
                now() + (g % 400 - 100) * interval '1 day',
                CASE WHEN g % 10 = 0 THEN 'REDEEMED' WHEN g % 400 < 100 THEN 'EXPIRED' ELSE 'ACTIVE' END,
                0, 0, 0, now() - (g % 365) * interval '1 day', NULL, false, '', ''
            FROM generate_series(1, {earned}) g, (SELECT min(id) AS first FROM wallets_customer) c""",
        ),
        (
            "redemptions",
            f"""INSERT INTO redemptions_redemption (org_id, customer_id, customer_identifier_type,
                customer_identifier_value, transaction_identifier, transaction_number, transaction_date,
                amount, request_fingerprint, api_client_id, created_at)
            SELECT {org.pk}, c.first + (g * 7 % {customers}), '', '', 'TXN-' || g, 'N' || g,
                now() - ({redemptions} - g) * interval '1 second' * {REDEMPTION_DAYS * 86400 / redemptions},
                100, md5(g::text), {client_id},
                now() - ({redemptions} - g) * interval '1 second' * {REDEMPTION_DAYS * 86400 / redemptions}
            FROM generate_series(1, {redemptions}) g, (SELECT min(id) AS first FROM wallets_customer) c""",
        ),
        (
            "redemption lines",
            f"""INSERT INTO redemptions_redemptionline (redemption_id, level, position, sku, promotion_id,
                earned_promotion_id, redemption_count, discount, discount_applied_on_quantity,
                promotion_applied_on_quantity)
            SELECT r.id, line.level, 0, '', ({promotion_ids})[1 + (r.id + line.n) % {PROMOTIONS}], NULL, 1,
                10, 1, 1
            FROM redemptions_redemption r
            JOIN (VALUES (0, 'CART'), (1, 'LINEITEM')) AS line (n, level) ON line.n = 0 OR r.id % 4 = 0""",
        ),
        (
            "promotions redeemed",
            """INSERT INTO redemptions_redemptionpromotion (redemption_id, promotion_id, transaction_date)
            SELECT DISTINCT l.redemption_id, l.promotion_id, r.transaction_date
            FROM redemptions_redemptionline l JOIN redemptions_redemption r ON r.id = l.redemption_id""",
        ),
        (
            "reversals",
            """INSERT INTO redemptions_redemptionreversal (org_id, redemption_id, reason, api_client_id,
                created_at)
            SELECT org_id, id, 'bench', api_client_id, transaction_date + interval '1 hour'
            FROM redemptions_redemption WHERE id % 20 = 0""",
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")  # the app's 30 s bound is for requests, not a bulk load
        for name, statement in statements:
            started = time.perf_counter()
            cursor.execute(statement)
            print(
                f"    {name}: {cursor.rowcount:,} rows in {time.perf_counter() - started:.1f} s", flush=True
            )
    started = time.perf_counter()
    refresh_counters(org)
    print(f"    counters and summaries: {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        print(f"    vacuum analyze: {time.perf_counter() - started:.1f} s", flush=True)
    return {"auth": auth}


def refresh_counters(org) -> None:
    """Rows written behind the services' back: rebuild what the services keep up to date (the
    per-promotion counters, the closed days' summaries), as an operator would after a bulk load."""
    from django.core.management import call_command

    call_command("refresh_redemption_summaries", "--recount-tallies", verbosity=0)


def admin_pages(model) -> int:
    """The number of pages the admin's list of `model` shows (`EstimatedCountPaginator`)."""
    from promotions_site.admin_lists import EstimatedCountPaginator

    return EstimatedCountPaginator(
        model.objects.filter(org_id=BENCH_ORG_ID).order_by("pk"), ADMIN_PAGE_SIZE
    ).num_pages


def facts() -> dict:
    """What the pages ask for: ids, a mobile, a transaction number, page numbers."""
    from django.db import connection

    from redemptions.models import Redemption
    from wallets.models import Customer, EarnedPromotion

    def one(sql: str):
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]

    customers = one("SELECT count(*) FROM wallets_customer")
    earned = one("SELECT count(*) FROM wallets_earnedpromotion")
    redemptions = one("SELECT count(*) FROM redemptions_redemption")
    lines = one(
        "SELECT count(*) FROM redemptions_redemptionline l WHERE NOT EXISTS "
        "(SELECT 1 FROM redemptions_redemptionreversal v WHERE v.redemption_id = l.redemption_id)"
    )
    middle_customer = one(f"SELECT id FROM wallets_customer ORDER BY id OFFSET {customers // 2} LIMIT 1")
    return {
        "customer": middle_customer,
        "mobile": one(f"SELECT mobile FROM wallets_customer WHERE id = {middle_customer}"),
        "mobile_part": one(f"SELECT substr(mobile, 3, 6) FROM wallets_customer WHERE id = {middle_customer}"),
        "transaction_number": one(
            f"SELECT transaction_number FROM redemptions_redemption ORDER BY id OFFSET {redemptions // 2} LIMIT 1"
        ),
        "redemption": one(
            f"SELECT id FROM redemptions_redemption ORDER BY id OFFSET {redemptions // 2} LIMIT 1"
        ),
        "promotion": one("SELECT id FROM promotions_promotion ORDER BY name LIMIT 1"),
        "job": None,
        # The admin's last page as its paginator links it: from the planner's estimate above 10,000 rows.
        "pages": {
            "customers": admin_pages(Customer),
            "earned": admin_pages(EarnedPromotion),
            "redemptions": admin_pages(Redemption),
            "api": max(0, -(-lines // API_LIMIT) - 1),
        },
        "rows": {"customers": customers, "earned": earned, "redemptions": redemptions, "lines": lines},
    }


def staff_cookie() -> str:
    """A session of the staff user, as the admin's login would make it."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from promotions.models import User

    user = User.objects.get(username="bench-staff")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def api_auth() -> str:
    """A fresh API client's Basic header (its secret is shown once, so each run makes its own)."""
    from promotions.models import Organization
    from promotions.services import api_client_create

    org = Organization.objects.get(pk=BENCH_ORG_ID)
    client, secret = api_client_create(org=org, username=f"bench-scale-{time.time_ns()}")
    return basic_auth(client.username, secret)


# --- The pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    api: bool = False
    method: str = "GET"


def pages(f: dict) -> list[Page]:
    p, c, r = f["pages"], f["customer"], f["redemption"]
    a = "/admin"
    return [
        Page("admin index", f"{a}/"),
        Page("admin dashboard", f"{a}/dashboard/"),
        Page("admin dashboard, one promotion", f"{a}/dashboard/?promotion={f['promotion']}"),
        Page("promotions list", f"{a}/promotions/promotion/"),
        Page("promotion page", f"{a}/promotions/promotion/{f['promotion']}/change/"),
        Page("customers list", f"{a}/wallets/customer/"),
        Page("customers list, last page", f"{a}/wallets/customer/?p={p['customers']}"),
        Page("customer search: mobile", f"{a}/wallets/customer/?q={f['mobile']}"),
        Page("customer search: part of a mobile", f"{a}/wallets/customer/?q={f['mobile_part']}"),
        Page("customer filter: source", f"{a}/wallets/customer/?source__exact=INSTORE"),
        Page("customer page", f"{a}/wallets/customer/{c}/change/"),
        Page("earned promotions list", f"{a}/wallets/earnedpromotion/"),
        Page("earned promotions list, last page", f"{a}/wallets/earnedpromotion/?p={p['earned']}"),
        Page("earned promotions filter: status", f"{a}/wallets/earnedpromotion/?status__exact=EXPIRED"),
        Page("earned promotions filter: customer", f"{a}/wallets/earnedpromotion/?customer={c}"),
        Page("redemption audit list", f"{a}/redemptions/redemption/"),
        Page("redemption audit list, last page", f"{a}/redemptions/redemption/?p={p['redemptions']}"),
        Page("audit search: mobile", f"{a}/redemptions/redemption/?q={f['mobile']}"),
        Page("audit search: transaction number", f"{a}/redemptions/redemption/?q={f['transaction_number']}"),
        Page("audit filter: reversed", f"{a}/redemptions/redemption/?status=reversed"),
        Page("audit filter: promotion", f"{a}/redemptions/redemption/?promotion={f['promotion']}"),
        Page("audit filter: customer", f"{a}/redemptions/redemption/?customer={c}"),
        Page("redemption page", f"{a}/redemptions/redemption/{r}/change/"),
        Page("redemption lines list", f"{a}/redemptions/redemptionline/"),
        Page("reversals list", f"{a}/redemptions/redemptionreversal/"),
        Page("bulk jobs list", f"{a}/wallets/bulkjob/"),
        Page("audit events list", f"{a}/promotions/auditevent/"),
        Page("API promotions list", "/api_gateway/v1/promotions/", api=True),
        Page("API customer wallet", f"/api_gateway/v1/promotions/customer/{c}", api=True),
        Page("API redemptions page 0", "/api_gateway/v1/promotions/redemptions", api=True),
        Page(
            "API redemptions last page",
            f"/api_gateway/v1/promotions/redemptions?pageNumber={p['api']}",
            api=True,
        ),
        Page(
            "API redemptions of one promotion, page 0",
            f"/api_gateway/v1/promotions/redemptions?promotionId={f['promotion']}",
            api=True,
        ),
        Page(
            "API redemptions of one customer",
            f"/api_gateway/v1/promotions/redemptions?customerId={c}",
            api=True,
        ),
    ]


def measure(port: int, page: Page, headers: dict) -> tuple[float, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        times = []
        for attempt in range(REPEAT + 1):  # the first warms it
            started = time.perf_counter()
            conn.request(page.method, page.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                fail(f"{page.name}: {page.path} answered {response.status}: {body[:500]!r}")
            if attempt:
                times.append(elapsed * 1000)
        return statistics.median(times), body
    finally:
        conn.close()


def api_cursor_page(port: int, auth: str, pages_deep: int) -> Page:
    """The redemption list `pages_deep` pages in, reached by following the cursor from page 0."""
    headers = {"Authorization": auth}
    path = "/api_gateway/v1/promotions/redemptions?limit=100"
    cursor = ""
    for _ in range(pages_deep):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        conn.request("GET", path + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        response = conn.getresponse()
        response.read()
        cursor = response.getheader("X-Next-Cursor") or ""
        conn.close()
        if not cursor:
            break
    return Page(f"API redemptions by cursor, {pages_deep} pages in", path + f"&cursor={cursor}", api=True)


# --- One size, in its own process -------------------------------------------------------------------


def run_size(size: str, keep: bool) -> dict:
    server_url, _, base = bench_database_url("promotions_bench_scale")
    name = f"{base}_{size.lower()}"
    bench_url = server_url.rsplit("/", 1)[0] + "/" + name
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
    marker, filled = MARKER + f" ({size})", MARKER + f" ({size}, filled)"
    reuse = keep and found is not None and found[0] == filled
    current = filled if reuse else marker  # the comment the database carries
    if not reuse:
        if found is not None and found[0] == filled:  # a kept database, not to be reused: drop it
            recreate_database(server_url, name, marker=filled, create=False)
        recreate_database(server_url, name, marker=marker, create=True)
    try:
        setup_django(bench_url)
        if not reuse:
            print(f"  {size}: filling {name}", flush=True)
            fill(*SIZES[size])
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(filled))
                )
            current = filled
        else:
            refresh_counters(None)  # a kept database: the days closed since it was filled
        f = facts()
        cookie, auth = staff_cookie(), api_auth()
        from django.db import connections

        connections.close_all()
        results = {}
        with gunicorn(bench_url, workers=WORKERS, ready_path="/health/live") as (port, _):
            timed = pages(f)
            timed.append(api_cursor_page(port, auth, 50))
            for page in timed:
                headers = {"Authorization": auth} if page.api else {"Cookie": cookie}
                ms, _ = measure(port, page, headers)
                results[page.name] = {"ms": ms, "api": page.api}
                print(f"    {page.name}: {ms:.1f} ms", flush=True)
        return {"rows": f["rows"], "pages": results}
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not keep:
            recreate_database(server_url, name, marker=current, create=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S,M,L", help="comma-separated: S, M, L (default all three)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) each size's database")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one size, JSON out
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        Path(args.out).write_text(json.dumps(run_size(args.one, args.keep)))
        return 0
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    if not sizes or any(s not in SIZES for s in sizes):
        fail(f"--sizes takes S, M and/or L, not {args.sizes!r}")
    bench_database_url("promotions_bench_scale")  # refuse a bad name before any work
    measured = {}
    for size in sizes:
        out = Path(f"/tmp/bench-scale-{os.getpid()}-{size}.json")
        started = time.perf_counter()
        command = [
            sys.executable,
            __file__,
            "--one",
            size,
            "--out",
            str(out),
            *(["--keep"] if args.keep else []),
        ]
        if subprocess.run(command).returncode != 0:
            fail(f"size {size} failed")
        measured[size] = json.loads(out.read_text())
        out.unlink()
        print(f"  {size} done in {time.perf_counter() - started:.0f} s", flush=True)
    return report(sizes, measured)


def report(sizes: list[str], measured: dict) -> int:
    first, last = sizes[0], sizes[-1]
    names = list(measured[first]["pages"])
    print(
        f"\nbench/scale.py: gunicorn {WORKERS} sync workers, median of {REPEAT} warm requests, ms "
        f"(PostgreSQL, {os.cpu_count()} cores shared)"
    )
    for size in sizes:
        rows = measured[size]["rows"]
        print(
            f"  {size}: {rows['customers']:,} customers, {rows['earned']:,} earned promotions, "
            f"{rows['redemptions']:,} redemptions"
        )
    header = f"| page | {' | '.join(sizes)} | {last}/{first} | target |"
    print(header)
    print("|" + "---|" * (len(sizes) + 3))
    missed = 0
    for name in names:
        api = measured[first]["pages"][name]["api"]
        target = API_TARGET_MS if api else ADMIN_TARGET_MS
        values = [measured[s]["pages"].get(name, {}).get("ms") for s in sizes]
        verdict = "PASS" if values[-1] is not None and values[-1] < target else "FAIL"
        missed += verdict == "FAIL"
        ratio = f"x{values[-1] / values[0]:.1f}" if values[0] and values[-1] else "-"
        cells = " | ".join(f"{v:,.0f}" if v is not None else "-" for v in values)
        print(f"| {name} | {cells} | {ratio} | < {target:g} {verdict} |")
    print(f"\n{len(names) - missed} of {len(names)} pages within target at {last}")
    return 1 if missed else 0


if __name__ == "__main__":
    run_main(main)
