"""Demo data: an org, an API client, an admin login, customers, promotions of every type,
earned promotions, redemptions and a loyalty program. Safe to run again: an existing demo org is kept.

Any size: customers are generated and written a chunk at a time (COPY on PostgreSQL), so memory does
not grow with `--customers`; issued and earned instances go through the wallet services
(`earned_promotions_issue` a chunk of customers per call, `earned_promotions_earn` per customer) and
redemptions through `redemption_record`, so the data is what the APIs would have written."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from promotions.audit import Actor
from promotions.models import (
    ApiClient,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    PromotionType,
    Till,
    User,
)
from promotions.services import (
    RestrictionSpec,
    StoreImportRow,
    api_client_create,
    organization_create,
    promotion_create,
    stores_import,
)
from redemptions.services import LineInput, RedemptionInput, redemption_record
from wallets.models import Customer, EarnedPromotion
from wallets.services import EarnRequest, earned_promotions_earn, earned_promotions_issue

DEMO_ORG_ID = 100737
DEMO_CLIENT = "demo.till"
DEMO_SECRET = "demo-secret"
DEMO_ADMIN = ("admin", "admin")
# The demo store hierarchy (as an import_stores file would give it); the demo client's default till.
DEMO_STORES = [
    ("ZONE", "75175598", "", "West", "", "", ""),
    ("ZONE", "75175599", "", "Mumbai", "75175598", "", ""),
    ("CONCEPT", "500", "", "Acme Express", "", "", ""),
    ("STORE", "101", "S101", "Andheri", "", "75175599", "500"),
    ("STORE", "102", "S102", "Bandra", "", "75175599", ""),
]
DEMO_TILLS = [("mum.101.t1", "Andheri till 1", "101"), ("mum.102.t1", "Bandra till 1", "102")]
FIRST_CUSTOMER_ID = 564332013
FIRST_NAMES = [
    "Asha",
    "Ravi",
    "Meera",
    "Arjun",
    "Priya",
    "Kiran",
    "Neha",
    "Vikram",
    "Anita",
    "Rahul",
    "Sara",
    "Omar",
]
LAST_NAMES = [
    "Sharma",
    "Iyer",
    "Patel",
    "Khan",
    "Reddy",
    "Das",
    "Nair",
    "Gupta",
    "Singh",
    "Menon",
    "Rao",
    "Shah",
]
SOURCES = ["INSTORE", "ECOMMERCE", "MOBILE_APP"]

PROMOTIONS = [
    # (name, type, condition, action, max issuance, earned validity days)
    ("10% off carts over 1000", PromotionType.POS,
     {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": 1000}},
     {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": 10}}, 1, None),
    ("WELCOME50 code", PromotionType.CODE,
     {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 500}},
     {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 50}}, 1, None),
    ("Birthday treat", PromotionType.CUSTOMER,
     {"type": "CART", "cartCondition": {"kpi": "ITEMCOUNT", "operator": "GREATER_THAN_OR_EQUAL", "value": 2}},
     {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 200}}, 1, None),
    ("Coffee lover: 5th cup free", PromotionType.EARNING,
     {"type": "PRODUCT", "productCondition": {"criteriaList": [{"entity": "SKU", "operator": "IN",
                                                                "values": ["COFFEE-REG"]}],
                                              "kpi": "QUANTITY", "operator": "GREATER_THAN_OR_EQUAL", "value": 1}},
     {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 100}}, -1, 30),
    ("Reward: 300 off", PromotionType.REWARD,
     {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": 1500}},
     {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 300}}, 5, 14),
]  # fmt: skip


DEMO_CONTEXT_ID = "demo-campaign-1"
# The first customers of the wallets below each redeem their issued and their earned instance.
REDEEMING_CUSTOMERS = 20
CHUNK_SIZE = 10_000
# The earn service works one customer per call (its lock, idempotency key and audit event), about
# 10 ms each: at most this many customers earn by default, so a seed of a million stays in minutes.
EARNING_CUSTOMERS_MAX = 1000


class Command(BaseCommand):
    help = (
        "Load demo data (idempotent). Prints the admin login and an example curl. Refused with DEBUG off "
        "unless --force is given (it creates the admin/admin login)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=int, default=300, help="How many demo customers (default 300)."
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed, for repeatable data.")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=CHUNK_SIZE,
            help=f"Customers written, and issued to, per statement (default {CHUNK_SIZE:,}).",
        )
        parser.add_argument(
            "--earning-customers",
            type=int,
            help="How many customers earn the EARNING promotion (default: the third of the customers "
            f"that hold the issued one, at most {EARNING_CUSTOMERS_MAX:,}).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bars on stderr.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off (the demo's admin/admin login and known API secrets included).",
        )

    def handle(self, *args, **options):
        if options["customers"] < 1:
            raise CommandError("--customers must be at least 1.")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        self.holders = holders = max(1, options["customers"] // 3)
        earners = options["earning_customers"]
        if earners is None:
            earners = min(holders, EARNING_CUSTOMERS_MAX)
        if not 1 <= earners <= holders:
            raise CommandError(
                f"--earning-customers must be between 1 and {holders:,} (a third of the customers)."
            )
        self.earners = earners
        if not settings.DEBUG and not options["force"]:
            # The demo signs in as admin/admin and its tills use a published secret: on a server that
            # anyone can reach (DEBUG off), that is an open door unless someone asked for it.
            raise CommandError(
                "seed_demo creates the superuser admin/admin and API clients with a published secret, so it "
                "runs only with DEBUG=1 (as `make demo` sets it). To seed anyway, run it with --force, "
                "then change those credentials."
            )
        if not settings.DEBUG:
            self.stderr.write(
                "DEBUG is off and --force was given: the demo's admin/admin login and API secrets are "
                "live; change them."
            )
        self.rng = random.Random(options["seed"])
        self.chunk_size = options["chunk_size"]
        self.progress_disabled = True if options["no_progress"] else None
        org = Organization.objects.filter(pk=DEMO_ORG_ID).first()
        if org is None:
            started = time.monotonic()
            # One transaction: an interrupted seed leaves nothing, and the next run starts afresh.
            with transaction.atomic():
                org = organization_create(
                    name="Demo Retail", org_id=DEMO_ORG_ID, timezone_name="Asia/Kolkata"
                )
                self._seed(org, options["customers"])
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded demo org {org.pk} with {options['customers']:,} customers "
                    f"in {time.monotonic() - started:.1f} s."
                )
            )
        else:
            self.stdout.write(f"Demo org {org.pk} already exists; keeping its data.")
        self._print_help(org)

    def _progress(self, total: int, desc: str):
        return tqdm(
            total=total,
            desc=desc,
            unit=" rows",
            unit_scale=True,
            file=sys.stderr,
            disable=self.progress_disabled,
        )

    def _seed(self, org: Organization, customer_count: int) -> None:
        columns = ("kind", "id", "code", "name", "parent", "zone", "concept")
        rows = [dict(zip(columns, row, strict=True)) for row in DEMO_STORES]
        rows += [
            {"kind": "TILL", "code": code, "name": name, "store": store} for code, name, store in DEMO_TILLS
        ]
        stores_import(
            org=org,
            rows=[StoreImportRow(line, cells) for line, cells in enumerate(rows, start=2)],
            partial=False,
            actor=Actor.system("seed_demo"),
        )
        api_client_create(
            org=org,
            username=DEMO_CLIENT,
            secret=DEMO_SECRET,
            access=ApiClient.Access.WRITE,
            default_till=Till.objects.for_org(org).get(code=DEMO_TILLS[0][0]),
        )
        api_client_create(org=org, username="demo.auditor", secret=DEMO_SECRET, access=ApiClient.Access.READ)
        if not User.objects.filter(username=DEMO_ADMIN[0]).exists():
            User.objects.create_superuser(DEMO_ADMIN[0], "admin@example.com", DEMO_ADMIN[1], org=org)

        self._customers_create(org, customer_count)
        now = timezone.now()
        end = (
            (now + dt.timedelta(days=90))
            .astimezone(org.tz)
            .replace(hour=23, minute=59, second=59, microsecond=999000)
        )
        promotions = {}
        actor = Actor.system("seed_demo")
        for name, ptype, condition, action, max_issuance, validity in PROMOTIONS:
            restrictions = [
                RestrictionSpec(level="Customer", kpi="REDEMPTION", limit=Decimal(3)),
                RestrictionSpec(level="Promotion", kpi="DISCOUNT", limit=Decimal(1000000)),
            ]
            if ptype == PromotionType.CODE:
                restrictions.append(RestrictionSpec(level="Code", kpi="REDEMPTION", limit=Decimal(1)))
            promotions[ptype] = promotion_create(
                org=org, actor=actor, restrictions=restrictions,
                fields={
                    "name": name, "type": ptype, "start_date": now - dt.timedelta(days=30), "end_date": end,
                    "condition": condition, "action": action, "message_label": name,
                    "max_issuance_per_customer": max_issuance, "earned_validity_days": validity,
                },
            )  # fmt: skip

        # A third of the customers hold the CUSTOMER promotion (issued, as issueBulk does); the first
        # of them have earned the EARNING one (as the earn API does); the first few redeem both.
        issued = self._issue(promotions[PromotionType.CUSTOMER], self.holders, actor)
        earned = self._earn(org, promotions[PromotionType.EARNING], self.earners, actor)
        self._redeem(org, issued, earned, actor)

        program = LoyaltyProgram.objects.create(id=469, org=org, name="Demo Rewards Club")
        LoyaltyPromotion.objects.create(
            id=65777, org=org, program=program, name="Double points weekend", type=LoyaltyPromotion.Type.LOYALTY,
            start_date=now - dt.timedelta(days=7), end_date=end, max_issuance_per_customer=1,
        )  # fmt: skip
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [LoyaltyProgram, LoyaltyPromotion]):
                cursor.execute(sql)

    def _customer_rows(self, count: int) -> Iterator[tuple]:
        """(id, mobile, email, external_id, first_name, last_name, source) of each demo customer."""
        rng = self.rng
        for i in range(count):
            yield (
                FIRST_CUSTOMER_ID + i,
                f"91{9800000000 + i}",
                f"customer{i}@example.com",
                f"EXT-{i:06d}",
                rng.choice(FIRST_NAMES),
                rng.choice(LAST_NAMES),
                rng.choice(SOURCES),
            )

    def _customers_create(self, org: Organization, count: int) -> None:
        """Write the customers `chunk_size` at a time (COPY on PostgreSQL): memory stays flat for any
        count. Demo customers are generated data: no audit event each, unlike `customer_create`."""
        rows = self._customer_rows(count)
        with self._progress(count, "customers") as progress:
            while chunk := list(itertools.islice(rows, self.chunk_size)):
                _customers_insert(org, chunk)
                progress.update(len(chunk))
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Customer]):
                cursor.execute(sql)

    def _issue(self, promotion: Promotion, holders: int, actor: Actor) -> list[tuple]:
        """Issue `promotion` to the first `holders` customers through issueBulk's service, a chunk
        per call; (customer id, promotion id, instance id, event time) of the first REDEEMING_CUSTOMERS."""
        first: list[tuple] = []
        with self._progress(holders, "issued") as progress:
            for start in range(0, holders, self.chunk_size):
                customer_ids = list(
                    range(
                        FIRST_CUSTOMER_ID + start, FIRST_CUSTOMER_ID + min(start + self.chunk_size, holders)
                    )
                )
                outcome = earned_promotions_issue(
                    promotion=promotion, customer_ids=customer_ids, context_id=DEMO_CONTEXT_ID, actor=actor
                )
                if outcome.errors:
                    raise CommandError(f"Issuing the demo promotion failed: {outcome.errors[:3]}")
                for customer_id in customer_ids[: max(0, REDEEMING_CUSTOMERS - len(first))]:
                    instance = outcome.issued[customer_id]
                    first.append((customer_id, promotion.pk, instance.id, instance.event_time))
                progress.update(len(customer_ids))
        return first

    def _earn(self, org: Organization, promotion: Promotion, earners: int, actor: Actor) -> list[tuple]:
        """Each of the first `earners` customers earns `promotion` once, through the earn service
        (one call per customer, as the earn API); (customer id, promotion id, instance id, event
        time) of the first REDEEMING_CUSTOMERS."""
        first: list[tuple] = []
        now = timezone.now()
        customers = (
            Customer.objects.for_org(org)
            .filter(pk__lt=FIRST_CUSTOMER_ID + earners)
            .select_related("org")
            .order_by("pk")
        )
        with self._progress(earners, "earned") as progress:
            for customer in customers.iterator(chunk_size=2000):
                event_time = now - dt.timedelta(days=self.rng.randint(0, 20))
                [outcome] = earned_promotions_earn(
                    customer=customer,
                    requests=[
                        EarnRequest(promotion=promotion, earn_count=1, earned_from_id=f"TXN-{customer.pk}")
                    ],
                    earned_from_type=EarnedPromotion.EarnedFromType.ACTIVITY,
                    event_time=event_time,
                    event_details={"id": "demo", "type": "ACTIVITY"},
                    actor=actor,
                )
                if len(first) < REDEEMING_CUSTOMERS:
                    first.append((customer.pk, promotion.pk, outcome.instances[0].pk, event_time))
                progress.update()
        return first

    def _redeem(self, org: Organization, issued: list[tuple], earned: list[tuple], actor: Actor) -> None:
        """The first customers redeem their issued and their earned instance, through the redeem
        service, so limits, counters and instances agree."""
        instances = [i for pair in itertools.zip_longest(issued, earned) for i in pair if i is not None]
        for index, (customer_id, promotion_id, instance_id, event_time) in enumerate(instances):
            discount = Decimal(self.rng.choice([50, 100, 200]))
            when = min(timezone.now(), event_time + dt.timedelta(hours=self.rng.randint(1, 72)))
            transaction_identifier = f"DEMO-TXN-{index:04d}"
            redemption_record(
                org=org, actor=actor, api_client=None,
                fingerprint=hashlib.sha256(transaction_identifier.encode()).hexdigest(),
                data=RedemptionInput(
                    customer_lookup=("id", str(customer_id)), transaction_identifier=transaction_identifier,
                    transaction_number=f"BILL-{index:04d}", transaction_date=when,
                    amount=Decimal(self.rng.randint(1200, 5000)),
                    lines=[LineInput(
                        level="LINEITEM", position=0, sku="COFFEE-REG", promotion_id=promotion_id,
                        earned_promotion_id=instance_id, redemption_count=1, discount=discount,
                        discount_applied_on_quantity=Decimal(1), promotion_applied_on_quantity=Decimal(1),
                    )],
                ),
            )  # fmt: skip

    def _print_help(self, org: Organization) -> None:
        promotion = Promotion.objects.for_org(org).filter(type=PromotionType.CUSTOMER).first()
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Admin:      http://127.0.0.1:8000/admin/  login admin / admin",
                    "API docs:   http://127.0.0.1:8000/api/docs/",
                    f"API client: {DEMO_CLIENT} / {DEMO_SECRET} (write), demo.auditor / {DEMO_SECRET} (read)",
                    "Try:",
                    f"  curl -u {DEMO_CLIENT}:{DEMO_SECRET} "
                    f"http://127.0.0.1:8000/api_gateway/v1/promotions/{promotion.pk if promotion else '<id>'}",
                    f"  curl -u {DEMO_CLIENT}:{DEMO_SECRET} http://127.0.0.1:8000/api/schema/",
                    "",
                    "Demo promotions (id, type, name):",
                    *(
                        f"  {p.pk}  {p.type:<8}  {p.name}"
                        for p in Promotion.objects.for_org(org).order_by("name", "pk")
                    ),
                    "Loyalty programs (programId, name):",
                    *(
                        f"  programId {program.pk}  {program.name}"
                        for program in LoyaltyProgram.objects.filter(org=org).order_by("pk")
                    ),
                    "",
                ]
            )
        )


_CUSTOMER_COLUMNS = ("id", "mobile", "email", "external_id", "first_name", "last_name", "source")


def _customers_insert(org: Organization, rows: list[tuple]) -> None:
    """Insert customers given as `_CUSTOMER_COLUMNS` tuples: one COPY on PostgreSQL, else bulk_create.

    Every other column is prepared once from a template customer, as the ORM would prepare it
    (defaults, auto_now_add), so a column added to the model needs no change here.
    """
    if connection.vendor != "postgresql":
        Customer.objects.bulk_create(
            [Customer(org=org, **dict(zip(_CUSTOMER_COLUMNS, row, strict=True))) for row in rows]
        )
        return
    template = Customer(org=org)
    constant_fields = [f for f in Customer._meta.concrete_fields if f.attname not in _CUSTOMER_COLUMNS]
    constant = tuple(f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in constant_fields)
    columns = ", ".join([*_CUSTOMER_COLUMNS, *(f.column for f in constant_fields)])
    statement = f"COPY {Customer._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.copy(statement) as copy_in:
        for row in rows:
            copy_in.write_row(row + constant)
