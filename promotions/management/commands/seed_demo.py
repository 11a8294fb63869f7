"""Demo data: an org, an API client, an admin login, customers, promotions of every type,
earned promotions, redemptions and a loyalty program. Safe to run again: an existing demo org is kept."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from promotions.models import (
    ApiClient,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    PromotionType,
    User,
)
from promotions.services import (
    Actor,
    RestrictionSpec,
    api_client_create,
    organization_create,
    promotion_create,
)
from redemptions.services import LineInput, RedemptionInput, redemption_record
from wallets.models import Customer, EarnedPromotion

DEMO_ORG_ID = 100737
DEMO_CLIENT = "demo.till"
DEMO_SECRET = "demo-secret"
DEMO_ADMIN = ("admin", "admin")
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


class Command(BaseCommand):
    help = "Load demo data (idempotent). Prints the admin login and an example curl."

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=int, default=300, help="How many demo customers (default 300)."
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed, for repeatable data.")

    def handle(self, *args, **options):
        if options["customers"] < 1:
            raise CommandError("--customers must be at least 1.")
        rng = random.Random(options["seed"])
        org = Organization.objects.filter(pk=DEMO_ORG_ID).first()
        if org is None:
            with transaction.atomic():
                org = organization_create(
                    name="Demo Retail", org_id=DEMO_ORG_ID, timezone_name="Asia/Kolkata"
                )
                self._seed(org, options["customers"], rng)
            self.stdout.write(
                self.style.SUCCESS(f"Seeded demo org {org.pk} with {options['customers']} customers.")
            )
        else:
            self.stdout.write(f"Demo org {org.pk} already exists; keeping its data.")
        self._print_help(org)

    def _seed(self, org: Organization, customer_count: int, rng: random.Random) -> None:
        api_client_create(org=org, username=DEMO_CLIENT, secret=DEMO_SECRET, access=ApiClient.Access.WRITE)
        api_client_create(org=org, username="demo.auditor", secret=DEMO_SECRET, access=ApiClient.Access.READ)
        if not User.objects.filter(username=DEMO_ADMIN[0]).exists():
            User.objects.create_superuser(DEMO_ADMIN[0], "admin@example.com", DEMO_ADMIN[1], org=org)

        customers = [
            Customer(
                id=FIRST_CUSTOMER_ID + i,
                org=org,
                mobile=f"91{9800000000 + i}",
                email=f"customer{i}@example.com",
                external_id=f"EXT-{i:06d}",
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                source=rng.choice(["INSTORE", "ECOMMERCE", "MOBILE_APP"]),
            )
            for i in range(customer_count)
        ]
        Customer.objects.bulk_create(customers, batch_size=2000)
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Customer]):
                cursor.execute(sql)

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

        earned = []
        for customer in customers[: max(1, customer_count // 3)]:
            for ptype, kind, from_type in (
                (PromotionType.CUSTOMER, "ISSUED", "BULK_ISSUE"),
                (PromotionType.EARNING, "EARNED", "ACTIVITY"),
            ):
                event_time = now - dt.timedelta(days=rng.randint(0, 20))
                promotion = promotions[ptype]
                valid_till = promotion.end_date
                if kind == "EARNED" and promotion.earned_validity_days:
                    day_end = (event_time + dt.timedelta(days=promotion.earned_validity_days)).astimezone(
                        org.tz
                    )
                    valid_till = min(
                        valid_till, day_end.replace(hour=23, minute=59, second=59, microsecond=999000)
                    )
                earned.append(
                    EarnedPromotion(
                        org=org, customer=customer, promotion=promotion, kind=kind, earned_from_type=from_type,
                        earned_from_id="demo-campaign-1" if kind == "ISSUED" else f"TXN-{customer.id}",
                        event_time=event_time, valid_till=valid_till,
                        event_details={"id": "demo", "type": from_type},
                    )
                )  # fmt: skip
        EarnedPromotion.objects.bulk_create(earned, batch_size=2000)

        # Redemptions go through the redeem service, so limits, counters and instances agree.
        for index, instance in enumerate(earned[:40]):
            discount = Decimal(rng.choice([50, 100, 200]))
            when = min(now, instance.event_time + dt.timedelta(hours=rng.randint(1, 72)))
            transaction_identifier = f"DEMO-TXN-{index:04d}"
            redemption_record(
                org=org, actor=actor, api_client=None,
                fingerprint=hashlib.sha256(transaction_identifier.encode()).hexdigest(),
                data=RedemptionInput(
                    customer=instance.customer, transaction_identifier=transaction_identifier,
                    transaction_number=f"BILL-{index:04d}", transaction_date=when,
                    amount=Decimal(rng.randint(1200, 5000)),
                    lines=[LineInput(
                        level="LINEITEM", position=0, sku="COFFEE-REG", promotion_id=instance.promotion_id,
                        earned_promotion_id=instance.pk, redemption_count=1, discount=discount,
                        discount_applied_on_quantity=Decimal(1), promotion_applied_on_quantity=Decimal(1),
                    )],
                ),
            )  # fmt: skip

        program = LoyaltyProgram.objects.create(id=469, org=org, name="Demo Rewards Club")
        LoyaltyPromotion.objects.create(
            id=65777, org=org, program=program, name="Double points weekend", type=LoyaltyPromotion.Type.LOYALTY,
            start_date=now - dt.timedelta(days=7), end_date=end, max_issuance_per_customer=1,
        )  # fmt: skip
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [LoyaltyProgram, LoyaltyPromotion]):
                cursor.execute(sql)

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
                ]
            )
        )
