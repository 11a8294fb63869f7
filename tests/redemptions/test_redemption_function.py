"""`redemption_record_v1` (one statement, PostgreSQL) answers and writes what the general path does.

On PostgreSQL every redemption outside the capped strategy goes through the function; the general path
(`redemption_record_general`, the ORM step by step) serves SQLite and the capped strategy. Here both
meet the same random requests on the same state: each request runs through one path, the state is
rolled back to a savepoint, then it runs through the other. They must give the same answer (the same
refusal, code and words; or the same lines, with the same earned instances taken) and leave the same
rows: counters, instances, lines, promotions redeemed, the audit event, a materialised day's counts.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotions.audit import Actor
from promotions.models import AuditEvent, PromoCode, PromotionRestriction, PromotionType
from promotions_site.errors import PromotionError
from redemptions.models import RedemptionCounter, RedemptionDay, RedemptionLine, RedemptionPromotion
from redemptions.services import (
    LineInput,
    RedemptionInput,
    redemption_record_general,
    redemption_record_one_statement,
)
from redemptions.summaries import org_day
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from wallets.models import EarnedPromotion

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

Level, Kpi = PromotionRestriction.Level, PromotionRestriction.Kpi
Status = EarnedPromotion.Status
_transactions = itertools.count(1)


@pytest.fixture
def world(db):
    """One org: promotions of every kind with limits of every level, customers holding instances in
    every state."""
    org = OrganizationFactory(timezone="America/New_York")
    client = ApiClientFactory(org=org)
    now = timezone.now()
    started = {"start_date": now - dt.timedelta(days=60)}
    pos = PromotionFactory(org=org, type=PromotionType.POS, **started)
    PromotionRestrictionFactory(promotion=pos, level=Level.CART, kpi=Kpi.DISCOUNT, limit=Decimal(150))
    PromotionRestrictionFactory(promotion=pos, level=Level.PROMOTION, kpi=Kpi.REDEMPTION, limit=Decimal(3))
    wallet = PromotionFactory(org=org, type=PromotionType.CUSTOMER, **started)
    PromotionRestrictionFactory(promotion=wallet, level=Level.CUSTOMER, kpi=Kpi.REDEMPTION, limit=Decimal(1))
    PromotionRestrictionFactory(promotion=wallet, level=Level.CART, kpi=Kpi.REDEMPTION, limit=Decimal(2))
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, **started)
    PromotionRestrictionFactory(promotion=earning, level=Level.EARN, kpi=Kpi.REDEMPTION, limit=Decimal(2))
    PromotionRestrictionFactory(promotion=earning, level=Level.EARN, kpi=Kpi.DISCOUNT, limit=Decimal(120))
    PromotionRestrictionFactory(promotion=earning, level=Level.CUSTOMER, kpi=Kpi.DISCOUNT, limit=Decimal(200))
    # Limits whose windows reset (promotions/windows.py), in the org's time zone.
    monthly = PromotionFactory(org=org, type=PromotionType.POS, **started)
    PromotionRestrictionFactory(
        promotion=monthly,
        level=Level.CUSTOMER,
        kpi=Kpi.REDEMPTION,
        limit=Decimal(3),
        window_type="FIXED",
        fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )
    PromotionRestrictionFactory(
        promotion=monthly, level=Level.CUSTOMER, kpi=Kpi.REDEMPTION, limit=Decimal(5), window_type="OVERALL"
    )
    PromotionRestrictionFactory(
        promotion=monthly,
        level=Level.PROMOTION,
        kpi=Kpi.DISCOUNT,
        limit=Decimal(150),
        window_type="FIXED",
        fixed_window_config={"cycleType": "N_DAY", "refreshRate": 4},
    )
    rolling = PromotionFactory(org=org, type=PromotionType.POS, **started)
    PromotionRestrictionFactory(
        promotion=rolling,
        level=Level.CUSTOMER,
        kpi=Kpi.TRANSACTION,
        limit=Decimal(2),
        frequency="DAYS",
        min_time_between_repeat=3 * 86_400_000,
    )
    PromotionRestrictionFactory(
        promotion=rolling,
        level=Level.PROMOTION,
        kpi=Kpi.REDEMPTION,
        limit=Decimal(4),
        window_type="MOVING",
        frequency="WEEKS",
    )
    weekly = PromotionFactory(org=org, type=PromotionType.CUSTOMER, **started)
    PromotionRestrictionFactory(
        promotion=weekly,
        level=Level.CUSTOMER,
        kpi=Kpi.REDEMPTION,
        limit=Decimal(2),
        window_type="FIXED",
        fixed_window_config={"cycleType": "WEEK", "weekStartDay": "WEDNESDAY"},
    )
    # A CODE promotion: Code limits per code (lifetime redemptions, monthly discount), codes of every kind.
    coded = PromotionFactory(org=org, type=PromotionType.CODE, **started)
    PromotionRestrictionFactory(promotion=coded, level=Level.CODE, kpi=Kpi.REDEMPTION, limit=Decimal(2))
    PromotionRestrictionFactory(
        promotion=coded,
        level=Level.CODE,
        kpi=Kpi.DISCOUNT,
        limit=Decimal(150),
        window_type="FIXED",
        fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )
    PromotionRestrictionFactory(promotion=coded, level=Level.PROMOTION, kpi=Kpi.REDEMPTION, limit=Decimal(6))
    other_coded = PromotionFactory(org=org, type=PromotionType.CODE, **started)
    # Earn limits whose windows reset, per earned instance (scope earn:<id>): once a month and three
    # times in all; and a rolling week's discount.
    earn_monthly = PromotionFactory(org=org, type=PromotionType.REWARD, **started)
    PromotionRestrictionFactory(
        promotion=earn_monthly,
        level=Level.EARN,
        kpi=Kpi.REDEMPTION,
        limit=Decimal(1),
        window_type="FIXED",
        fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )
    PromotionRestrictionFactory(
        promotion=earn_monthly, level=Level.EARN, kpi=Kpi.REDEMPTION, limit=Decimal(3)
    )
    earn_rolling = PromotionFactory(org=org, type=PromotionType.REWARD, **started)
    PromotionRestrictionFactory(
        promotion=earn_rolling,
        level=Level.EARN,
        kpi=Kpi.DISCOUNT,
        limit=Decimal(120),
        window_type="MOVING",
        frequency="WEEKS",
    )
    ended = PromotionFactory(org=org, type=PromotionType.POS, end_date=now - dt.timedelta(days=2),
                             start_date=now - dt.timedelta(days=9))  # fmt: skip
    inactive = PromotionFactory(org=org, type=PromotionType.POS, active=False)
    other_org_promotion = PromotionFactory(type=PromotionType.POS)
    customers = [CustomerFactory(org=org) for _ in range(2)]
    for code, promotion, owner, active in (
        ("OPEN1", coded, None, True),
        ("OPEN2", coded, None, True),
        ("MINE", coded, customers[0], True),
        ("THEIRS", coded, customers[1], True),
        ("OFF", coded, None, False),
        ("OTHERP", other_coded, None, True),
    ):
        PromoCode.objects.create(
            org=org,
            promotion=promotion,
            code=code,
            customer=owner,
            linked_on=now if owner else None,
            active=active,
        )
    instances = []
    for customer in customers:
        for promotion, fields in (
            (wallet, {}),
            (wallet, {}),
            (wallet, {"status": Status.REVOKED}),
            (wallet, {"valid_till": now - dt.timedelta(hours=1)}),
            (earning, {"kind": EarnedPromotion.Kind.EARNED}),
            (earning, {}),  # issued: LOCKED
            (weekly, {"kind": EarnedPromotion.Kind.EARNED}),
            (weekly, {"kind": EarnedPromotion.Kind.EARNED}),
            (earn_monthly, {}),
            (earn_monthly, {}),
            (earn_rolling, {}),
        ):
            instances.append(
                EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, **fields)
            )
    promotions = [pos, wallet, earning, ended, inactive]
    return {
        "org": org,
        "client": client,
        "promotions": [p.pk for p in promotions] + [other_org_promotion.pk, "nosuchpromotion000000000"],
        "windowed": [monthly.pk, rolling.pk, weekly.pk],
        "earn_windowed": [earn_monthly.pk, earn_rolling.pk],
        "coded": [coded.pk, other_coded.pk],
        "codes": ["OPEN1", "open2", "MINE", "THEIRS", "OFF", "OTHERP", "NOSUCH"],
        "customers": customers,
        "instances": [i.pk for i in instances] + ["nosuchinstance0000000000"[:24]],
        "held": {
            c.pk: [(i.pk, i.promotion_id) for i in instances if i.customer_id == c.pk] for c in customers
        },
    }


@st.composite
def requests(draw, world) -> RedemptionInput:
    customers = world["customers"]
    who = draw(st.sampled_from(["id", "id", "id", "mobile", "email", "externalId", "anonymous", "nobody"]))
    customer = draw(st.sampled_from(customers))
    lookup = {
        "id": ("id", str(customer.pk)),
        "mobile": ("mobile", customer.mobile),
        "email": ("email", customer.email.upper()),
        "externalId": ("externalId", customer.external_id),
        "anonymous": None,
        "nobody": ("externalId", "NOBODY"),
    }[who]
    lines = []
    for level in ("LINEITEM", "CART"):
        for position in range(draw(st.integers(0, 3))):
            promotion_id = draw(
                st.sampled_from(
                    world["promotions"][:3] * 8 + world["windowed"] * 6 + world["earn_windowed"] * 6
                    + world["coded"][:1] * 8
                    + world["coded"][1:] + world["promotions"][3:]
                )
            )  # fmt: skip
            # A CODE promotion's lines mostly name a code (any kind), sometimes none; another's rarely.
            code = None
            if promotion_id in world["coded"] and draw(st.integers(0, 5)):
                code = draw(st.sampled_from(world["codes"][:3] * 3 + world["codes"]))
            elif not draw(st.integers(0, 15)):
                code = draw(st.sampled_from(world["codes"]))
            earned = None
            if level == "LINEITEM" and draw(st.booleans()):
                # Mostly one of the customer's own instances, with its promotion; else any id.
                if draw(st.integers(0, 3)):
                    earned, promotion_id = draw(st.sampled_from(world["held"][customer.pk]))
                else:
                    earned = draw(st.sampled_from(world["instances"]))
            lines.append(
                LineInput(
                    level=level,
                    position=position,
                    promotion_id=promotion_id,
                    redemption_count=draw(st.integers(1, 2)),
                    discount=Decimal(draw(st.sampled_from(["0", "10.5", "60", "100"]))),
                    discount_applied_on_quantity=Decimal(1),
                    promotion_applied_on_quantity=Decimal(1),
                    sku=f"SKU-{position}" if level == "LINEITEM" else "",
                    earned_promotion_id=earned,
                    promo_code=code,
                )
            )
    if not lines:
        lines.append(LineInput("CART", 0, world["promotions"][0], 1, Decimal(5), Decimal(1), Decimal(1)))
    # Now, a materialised day, and days in earlier windows (another week, N_DAY cycle or month).
    when = timezone.now() - dt.timedelta(days=draw(st.sampled_from([0, 0, 3, 1, 5, 8, 33])), minutes=1)
    return RedemptionInput(
        customer_lookup=lookup,
        customer_identifier_type="mobile" if lookup else "",
        customer_identifier_value=customer.mobile if lookup else "",
        transaction_identifier=f"DIFF-{next(_transactions)}",
        transaction_number="BILL-1",
        transaction_date=when,
        amount=Decimal(1000),
        lines=lines,
    )


def state(org) -> dict:
    """What a redemption may have written, without generated ids and times."""
    return {
        "counters": sorted(
            RedemptionCounter.objects.filter(org=org).values_list(
                "restriction_id", "scope", "window_start", "used"
            )
        ),
        "instances": sorted(
            EarnedPromotion.objects.filter(org=org).values_list(
                "pk", "status", "redemption_count", "transaction_count", "discount_total"
            )
        ),
        "lines": sorted(
            RedemptionLine.objects.filter(redemption__org=org).values_list(
                "redemption__transaction_identifier",
                "level",
                "position",
                "sku",
                "promotion_id",
                "earned_promotion_id",
                "promo_code_id",
                "redemption_count",
                "discount",
            )
        ),
        "promotions": sorted(
            RedemptionPromotion.objects.filter(redemption__org=org).values_list(
                "redemption__transaction_identifier", "promotion_id", "transaction_date"
            )
        ),
        "audit": sorted(
            (event.action, event.object_type, str(event.data))
            for event in AuditEvent.objects.filter(org=org, action="redemption.record")
        ),
        "days": sorted(
            RedemptionDay.objects.filter(org=org).values_list(
                "promotion_id", "day", "redeemed", "discount", "lines"
            ),
            key=str,
        ),
    }


def outcome(record, world, data: RedemptionInput):
    try:
        recorded = record(
            org=world["org"],
            data=data,
            fingerprint="f" * 64,
            actor=Actor.system("test"),
            api_client=world["client"],
        )
    except PromotionError as error:
        return ("refused", error.code, error.http_status, str(error)), state(world["org"])
    lines = [
        (
            line.level,
            line.position,
            line.promotion_id,
            line.earned_promotion_id,
            line.promo_code_id,
            line.discount,
        )
        for line in recorded.lines
    ]
    assert all(line.pk for line in recorded.lines)
    return ("recorded", recorded.replayed, recorded.redemption.customer_id, lines), state(world["org"])


def both(world, data: RedemptionInput):
    answers = []
    for record in (redemption_record_general, redemption_record_one_statement):
        with transaction.atomic():
            answers.append(outcome(record, world, data))
            transaction.set_rollback(True)
    return answers


@pytest.fixture
def materialised_day(world):
    """The day three days ago is materialised (its org row exists), so a redemption then updates it."""
    org = world["org"]
    day = org_day(org, timezone.now() - dt.timedelta(days=3, minutes=1))
    RedemptionDay.objects.create(org=org, day=day, redeemed=4, discount=Decimal(40), lines=4)
    RedemptionDay.objects.create(
        org=org, promotion_id=world["promotions"][0], day=day, redeemed=1, discount=1, lines=1
    )


def test_the_function_answers_and_writes_what_the_general_path_does(world, materialised_day):
    seen = set()

    @settings(
        max_examples=60,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def compare(data):
        first = data.draw(requests(world))
        general, function = both(world, first)
        assert function == general
        seen.add(general[0][1] if general[0][0] == "refused" else "recorded")
        if general[0][0] == "recorded":
            # A second request on top of the first (limits half used, an instance taken, a replay).
            with transaction.atomic():
                redemption_record_general(
                    org=world["org"], data=first, fingerprint="f" * 64, actor=Actor.system("test"),
                    api_client=world["client"],
                )  # fmt: skip
                if RedemptionCounter.objects.filter(org=world["org"], scope__startswith="earn:").exists():
                    seen.add("earn window")  # an Earn limit that resets was counted per instance
                # Sometimes the first once more under another key: a window's limit half or wholly used.
                for _ in range(data.draw(st.integers(0, 2))):
                    again = RedemptionInput(
                        **{**first.__dict__, "transaction_identifier": f"DIFF-{next(_transactions)}"}
                    )
                    try:
                        with transaction.atomic():
                            redemption_record_general(
                                org=world["org"], data=again, fingerprint="f" * 64, actor=Actor.system("test"),
                                api_client=world["client"],
                            )  # fmt: skip
                    except PromotionError:
                        pass
                second = data.draw(st.one_of(requests(world), st.just(first)))
                general, function = both(world, second)
                assert function == general
                seen.add(general[0][1] if general[0][0] == "refused" else "recorded")
                transaction.set_rollback(True)

    compare()
    assert {"recorded", 400, 715, "earn window"} <= seen, seen


def line(
    promotion_id, *, earned=None, count=1, discount="10", level="LINEITEM", position=0, code=None
) -> LineInput:
    return LineInput(
        level, position, promotion_id, count, Decimal(discount), Decimal(1), Decimal(1), "SKU", earned, code
    )


def request(world, lines, *, customer=0, anonymous=False, days_ago=0, when=None) -> RedemptionInput:
    customer = world["customers"][customer]
    return RedemptionInput(
        customer_lookup=None if anonymous else ("id", str(customer.pk)),
        transaction_identifier=f"CASE-{next(_transactions)}",
        transaction_number="BILL-1",
        transaction_date=when or timezone.now() - dt.timedelta(days=days_ago, minutes=1),
        amount=Decimal(1000),
        lines=lines,
    )


def test_every_answer_is_the_same_on_both_paths(world, materialised_day):
    """Each refusal and each kind of recording, set up on purpose, through both paths."""
    pos, wallet, earning, ended, inactive, foreign, unknown = world["promotions"]
    coded = world["coded"][0]
    held = world["held"][world["customers"][0].pk]
    usable, _, revoked, expired, earned, locked, *_ = (pk for pk, _ in held)
    other_customers = world["held"][world["customers"][1].pk][0][0]
    cases = {
        "recorded": [line(pos), line(wallet, level="CART"), line(earning, earned=earned, position=1)],
        "recorded on a materialised day": ([line(pos), line(wallet, position=1)], {"days_ago": 3}),
        "recorded anonymous POS": ([line(pos)], {"anonymous": True}),
        404: ([line(pos)], {"customer": 0, "anonymous": False, "days_ago": 0}),
        "400 missing": [line(pos), line(unknown, position=1), line(foreign, position=2)],
        "400 earned on POS": [line(pos, earned=usable)],
        706: [line(ended)],
        709: [line(inactive)],
        "715 anonymous wallet": ([line(wallet)], {"anonymous": True}),
        "715 not held": [line(wallet, earned=other_customers)],
        "715 locked": [line(earning, earned=locked)],
        "715 mixed": [line(wallet, earned=usable), line(earning, earned=usable, position=1)],
        "706 instance expired": [line(wallet, earned=expired)],
        731: [line(wallet, earned=revoked)],
        "409 cart": [line(pos, discount="100"), line(pos, discount="60", position=1)],
        "recorded code": [line(coded, code="open1"), line(coded, position=1), line(pos, position=2)],
        "recorded linked code": [line(coded, code="MINE")],
        "1001 no code": [line(pos), line(coded, position=1)],
        "1001 two codes": [line(coded, code="OPEN1"), line(coded, code="OPEN2", position=1)],
        "1001 unknown code": [line(coded, code="NOSUCH")],
        "1001 another promotion's code": [line(coded, code="OTHERP")],
        "1009 deactivated": [line(coded, code="OFF")],
        "1005 another customer's": [line(coded, code="THEIRS")],
        "1005 anonymous linked": ([line(coded, code="MINE")], {"anonymous": True}),
        "400 code on POS": [line(coded, code="OPEN1"), line(pos, code="OPEN1", position=1)],
    }
    for name, case in cases.items():
        lines, options = case if isinstance(case, tuple) else (case, {})
        data = request(world, lines, **options)
        if name == 404:
            data = RedemptionInput(**{**data.__dict__, "customer_lookup": ("externalId", "NOBODY")})
        general, function = both(world, data)
        assert function == general, name
        got = "recorded" if general[0][0] == "recorded" else int(general[0][1])
        expected = "recorded" if str(name).startswith("recorded") else int(str(name).split()[0])
        assert got == expected, (name, general)
    # On top of earlier redemptions.
    with transaction.atomic():
        record = dict(fingerprint="f" * 64, actor=Actor.system("test"), api_client=world["client"])
        redemption_record_general(
            org=world["org"], data=request(world, [line(earning, earned=earned, count=2)]), **record
        )
        for _ in range(3):
            redemption_record_general(
                org=world["org"], data=request(world, [line(pos)], anonymous=True), **record
            )
        for _ in range(2):
            redemption_record_general(
                org=world["org"], data=request(world, [line(coded, code="OPEN2", count=1)]), **record
            )
        redemption_record_general(
            org=world["org"], data=request(world, [line(coded, code="OPEN1", discount="140")]), **record
        )
        for code, lines in {
            729: [line(earning, earned=earned)],
            409: [line(pos)],
            1004: [line(coded, code="open2")],
            "1004 discount": [line(coded, code="OPEN1", discount="20")],
        }.items():
            code = int(str(code).split()[0])
            general, function = both(world, request(world, lines, customer=0))
            assert function == general, code
            assert general[0][:2] == ("refused", code), general
        transaction.set_rollback(True)


def test_windows_answer_the_same_on_both_paths(world):
    """A FIXED month used up refuses in it and not in the next; a MOVING window refuses until its
    oldest use drops out; a lifetime limit next to a monthly one holds across months."""
    monthly, rolling, _ = world["windowed"]
    tz = world["org"].tz
    # Noon, New York time, on days of last month and this one (all after the promotions' start).
    this_month = timezone.now().astimezone(tz).date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)

    def at(day):
        return dt.datetime.combine(day, dt.time(12), tzinfo=tz)

    record = dict(fingerprint="f" * 64, actor=Actor.system("test"), api_client=world["client"])
    with transaction.atomic():
        for day in (1, 2, 3):  # 3 of 3 in last month
            redemption_record_general(
                org=world["org"],
                data=request(world, [line(monthly)], when=at(last_month.replace(day=day))),
                **record,
            )
        for when, expected in (
            (at(last_month.replace(day=20)), 409),  # last month's window is used up
            (at(this_month), "recorded"),  # a new month: 3 more (4th of the lifetime 5)
            (at(this_month) - dt.timedelta(hours=13), 409),  # 23:00 the day before, New York: last month
        ):
            general, function = both(world, request(world, [line(monthly)], when=when))
            assert function == general, when
            assert (general[0][0] if expected == "recorded" else general[0][1]) == expected, (when, general)
        for day in (0, 1):  # two transactions in a 3-day rolling window
            redemption_record_general(
                org=world["org"], data=request(world, [line(rolling)], when=at(this_month) + dt.timedelta(days=day)),
                **record,
            )  # fmt: skip
        # the first drops out on the 4th; a late report the day before the first would push the
        # window of the 2nd over; three days before, no window holds it and the others
        for days, expected in ((2, 409), (3, "recorded"), (-1, 409), (-3, "recorded")):
            general, function = both(
                world, request(world, [line(rolling)], when=at(this_month) + dt.timedelta(days=days))
            )
            assert function == general, days
            assert (general[0][0] if expected == "recorded" else general[0][1]) == expected, (days, general)
        transaction.set_rollback(True)
