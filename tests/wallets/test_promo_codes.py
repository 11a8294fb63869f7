"""GET /api_gateway/v1/promotions/code and POST /api_gateway/v1/promotions/code/link (docs/code-link.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promotions.models import AuditEvent, PromoCode, PromotionRestriction, PromotionType
from promotions.windows import LIFETIME, window_at, window_rule_stored
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import RedemptionCounter
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, PromotionFactory, PromotionRestrictionFactory

pytestmark = pytest.mark.django_db

CODE_URL = "/api_gateway/v1/promotions/code"
LINK_URL = "/api_gateway/v1/promotions/code/link"
RECORD_KEYS = [
    "id", "orgId", "promotionId", "promotionName", "code", "customerId", "active", "createdOn",
    "createdOnISO", "validTill", "validTillISO", "mode", "redeemableFrom", "redeemableFromISO", "restrictions",
]  # fmt: skip


@pytest.fixture
def code_promotion(org):
    promotion = PromotionFactory(org=org, type=PromotionType.CODE, name="Welcome code")
    PromotionRestrictionFactory(
        promotion=promotion, level=PromotionRestriction.Level.CODE, kpi="REDEMPTION", limit=Decimal(3)
    )
    return promotion


def code(promotion, text, **fields) -> PromoCode:
    return PromoCode.objects.create(org=promotion.org, promotion=promotion, code=text, **fields)


def look_up(api, codes, mode="DISCOUNT", **query):
    return api.get(CODE_URL, {"codes": codes, "mode": mode, **query})


def link(api, customer_id, text, mode="DISCOUNT"):
    return api.post(LINK_URL, {"customerId": customer_id, "code": text, "mode": mode}, format="json")


# --- Look-up ---------------------------------------------------------------------------------------


def test_a_code_is_answered_in_the_documented_record(read_api, org, code_promotion):
    # given: an unlinked code of a CODE promotion with a Code-level limit of 3, one used, one reserved
    row = code(code_promotion, "WELCOME25")
    row.refresh_from_db()
    restriction = code_promotion.restrictions.get()
    RedemptionCounter.objects.create(
        org=org, restriction=restriction, scope=f"code:{row.pk}", window_start=LIFETIME,
        used=1, reserved=1, limit=3,
    )  # fmt: skip

    # when: it is looked up in lower case (read access suffices)
    response = look_up(read_api, "welcome25")

    # then: one record, in Capillary's shape, with its limit counted for this code
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["errors"] == []
    [record] = body["data"]
    assert list(record) == RECORD_KEYS
    assert record == {
        "id": row.pk,
        "orgId": org.pk,
        "promotionId": code_promotion.pk,
        "promotionName": "Welcome code",
        "code": "WELCOME25",
        "customerId": None,
        "active": True,
        "createdOn": to_epoch_ms(row.created_on),
        "createdOnISO": to_iso(row.created_on),
        "validTill": to_epoch_ms(code_promotion.end_date),
        "validTillISO": to_iso(code_promotion.end_date),
        "mode": "DISCOUNT",
        "redeemableFrom": to_epoch_ms(code_promotion.start_date),
        "redeemableFromISO": to_iso(code_promotion.start_date),
        "restrictions": {
            "Code": [
                {
                    "kpi": "REDEMPTION",
                    "maxLimit": "3.000000",
                    "remainingRedemption": 1,
                    "tempRedemption": 1,
                    "periodStart": None,
                    "periodEnd": None,
                }
            ]
        },
    }


def test_a_limit_that_resets_is_counted_in_its_current_window(api, org):
    # given: a DISCOUNT limit per calendar month, with last month's and this month's counters
    promotion = PromotionFactory(org=org, type=PromotionType.CODE)
    restriction = PromotionRestrictionFactory(
        promotion=promotion, level="Code", kpi="DISCOUNT", limit=Decimal("100"),
        window_type="FIXED", fixed_window_config={"cycleType": "CALENDAR_MONTH"},
    )  # fmt: skip
    row = code(promotion, "MONTHLY1")
    now = timezone.now()
    window = window_at(
        window_rule_stored(restriction), tz=org.tz, at=now, promotion_start=promotion.start_date
    )
    scope = f"code:{row.pk}"
    RedemptionCounter.objects.create(
        org=org, restriction=restriction, scope=scope, window_start=window.key, used=Decimal("30.5"),
        reserved=Decimal("10"), limit=100,
    )  # fmt: skip
    last_month = window.first_day - dt.timedelta(days=1)
    RedemptionCounter.objects.create(
        org=org, restriction=restriction, scope=scope, window_start=last_month.replace(day=1),
        used=Decimal("99"), limit=100,
    )  # fmt: skip
    # another code's use of the same limit does not count for this one
    other = code(promotion, "MONTHLY2")
    RedemptionCounter.objects.create(
        org=org,
        restriction=restriction,
        scope=f"code:{other.pk}",
        window_start=window.key,
        used=50,
        limit=100,
    )

    # when
    [record] = look_up(api, "MONTHLY1").json()["data"]

    # then
    assert record["restrictions"]["Code"] == [
        {
            "kpi": "DISCOUNT",
            "maxLimit": "100.000000",
            "remainingRedemption": "59.500000",
            "tempRedemption": "10.000000",
            "periodStart": to_epoch_ms(window.start),
            "periodEnd": to_epoch_ms(window.end),
        }
    ]


def test_unknown_codes_are_left_out_with_an_error_each(api, org, other_org, code_promotion):
    # given: a code of the org, a code of another org, and a code of the other mode
    code(code_promotion, "MINE1")
    code(PromotionFactory(org=other_org, type=PromotionType.CODE), "THEIRS1")
    voucher = PromotionFactory(org=org, type=PromotionType.CODE, mode="PAYMENT_VOUCHER")
    code(voucher, "VOUCHER1")

    # when: looked up with a missing one, blanks and a repeat, in DISCOUNT mode
    response = look_up(api, "theirs1, mine1,,NOPE,voucher1,Mine1")

    # then: the org's DISCOUNT code only; each other one is unknown (1001), in request order
    assert response.status_code == 200
    body = response.json()
    assert [record["code"] for record in body["data"]] == ["MINE1"]
    assert body["errors"] == [
        {"code": 1001, "message": "Promo code not found.", "promoCode": code}
        for code in ("THEIRS1", "NOPE", "VOUCHER1")
    ]
    # and the voucher code is found in its own mode
    assert [r["code"] for r in look_up(api, "VOUCHER1", mode="PAYMENT_VOUCHER").json()["data"]] == [
        "VOUCHER1"
    ]


def test_a_found_and_a_missing_code_take_the_same_queries(api, org, code_promotion):
    # given: a code
    code(code_promotion, "THERE1")
    look_up(api, "THERE1")  # warm the API client's cache

    # when: a code that exists, then one that does not, is looked up
    with CaptureQueriesContext(connection) as found:
        assert look_up(api, "THERE1").json()["data"]
    with CaptureQueriesContext(connection) as missing:
        assert not look_up(api, "NOTTHERE").json()["data"]

    # then: the same statements run (one query for the codes, no early return)
    def shapes(context):
        return [query["sql"].split(" WHERE ")[0] for query in context.captured_queries]

    assert len(found.captured_queries) == len(missing.captured_queries)
    assert shapes(found) == shapes(missing)


@pytest.mark.parametrize(
    "query, message",
    [
        ({"mode": "DISCOUNT"}, "codes"),
        ({"codes": " , ,", "mode": "DISCOUNT"}, "at least one code"),
        ({"codes": ",".join(f"C{n}" for n in range(101)), "mode": "DISCOUNT"}, "At most 100"),
        ({"codes": "A1"}, "mode"),
        ({"codes": "A1", "mode": "CASHBACK"}, "mode"),
        ({"codes": "A1", "mode": "DISCOUNT", "includeRedemptions": "maybe"}, "includeRedemptions"),
        ({"codes": "X" * 256, "mode": "DISCOUNT"}, "255"),
    ],
)
def test_a_bad_query_is_400(api, query, message):
    response = api.get(CODE_URL, query)
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def test_include_redemptions_is_accepted(api, code_promotion):
    code(code_promotion, "INCL1")
    plain = look_up(api, "INCL1").json()
    assert look_up(api, "INCL1", includeRedemptions="true").json() == plain


def test_a_nul_in_a_code_is_400(api, customer, code_promotion):
    assert look_up(api, "A\x00B").status_code == 400
    assert link(api, customer.pk, "A\x00B").status_code == 400


# --- Link ------------------------------------------------------------------------------------------


def test_a_code_is_linked_to_a_customer(api, org, customer, code_promotion):
    # given: an unlinked code
    row = code(code_promotion, "LINKME1")

    # when: linked in lower case
    response = link(api, customer.pk, "linkme1")

    # then: the record, linked; the link is stored and audited
    assert response.status_code == 200, response.content
    record = response.json()["data"]
    assert list(record) == RECORD_KEYS
    assert record["customerId"] == customer.pk and record["code"] == "LINKME1" and record["id"] == row.pk
    assert record["restrictions"]["Code"][0]["remainingRedemption"] == 3
    row.refresh_from_db()
    assert row.customer_id == customer.pk and row.linked_on is not None
    event = AuditEvent.objects.get(action="promo_code.link")
    assert event.object_id == str(row.pk)
    assert event.data == {"customerId": customer.pk, "promotionId": code_promotion.pk}
    # and the look-up shows it linked
    assert look_up(api, "LINKME1").json()["data"][0]["customerId"] == customer.pk


def test_linking_again_to_the_same_customer_changes_nothing(api, customer, code_promotion):
    row = code(code_promotion, "AGAIN1")
    first = link(api, customer.pk, "AGAIN1")
    linked_on = PromoCode.objects.get(pk=row.pk).linked_on

    second = link(api, customer.pk, "again1")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert PromoCode.objects.get(pk=row.pk).linked_on == linked_on
    assert AuditEvent.objects.filter(action="promo_code.link").count() == 1


def test_a_code_linked_to_another_customer_is_refused(api, org, customer, code_promotion):
    row = code(code_promotion, "TAKEN1")
    assert link(api, customer.pk, "TAKEN1").status_code == 200
    someone_else = CustomerFactory(org=org)

    response = link(api, someone_else.pk, "TAKEN1")

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == 1005
    assert PromoCode.objects.get(pk=row.pk).customer_id == customer.pk


def refusal(response) -> tuple[int, int]:
    return response.status_code, response.json()["errors"][0]["code"]


def test_link_refusals(api, org, other_org, customer, code_promotion):
    code(code_promotion, "GOOD1")
    code(code_promotion, "OFF1", active=False)
    ended = PromotionFactory(
        org=org,
        type=PromotionType.CODE,
        start_date=timezone.now() - dt.timedelta(days=5),
        end_date=timezone.now() - dt.timedelta(days=1),
    )
    code(ended, "ENDED1")
    inactive = PromotionFactory(org=org, type=PromotionType.CODE, active=False)
    code(inactive, "PAUSED1")
    code(PromotionFactory(org=other_org, type=PromotionType.CODE), "THEIRS2")
    stranger = CustomerFactory(org=other_org)

    assert refusal(link(api, customer.pk, "MISSING1")) == (400, 1001)
    assert refusal(link(api, customer.pk, "THEIRS2")) == (400, 1001)
    assert refusal(link(api, customer.pk, "GOOD1", mode="PAYMENT_VOUCHER")) == (400, 1001)
    assert refusal(link(api, stranger.pk, "GOOD1")) == (400, 1006)
    assert refusal(link(api, 2**62, "GOOD1")) == (400, 1006)
    assert refusal(link(api, customer.pk, "OFF1")) == (400, 1001)
    assert refusal(link(api, customer.pk, "ENDED1")) == (400, 1002)
    assert refusal(link(api, customer.pk, "PAUSED1")) == (400, 709)
    # nothing was written
    assert not PromoCode.objects.filter(customer__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="promo_code.link").exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customerId": 0, "code": "A1", "mode": "DISCOUNT"},
        {"customerId": "x", "code": "A1", "mode": "DISCOUNT"},
        {"customerId": 1, "code": "", "mode": "DISCOUNT"},
        {"customerId": 1, "code": ["A1"], "mode": "DISCOUNT"},
        {"customerId": 1, "code": "A1", "mode": "OTHER"},
        {"customerId": 1, "code": "A" * 256, "mode": "DISCOUNT"},
    ],
)
def test_a_bad_link_body_is_400(api, body):
    response = api.post(LINK_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_linking_needs_write_access(read_api, customer, code_promotion):
    code(code_promotion, "READONLY1")
    response = link(read_api, customer.pk, "READONLY1")
    assert response.status_code == 403
    assert PromoCode.objects.get(code="READONLY1").customer_id is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres_only
def test_concurrent_links_of_one_code_to_two_customers_one_wins(org):
    # given: one unlinked code and eight customers
    promotion = PromotionFactory(org=org, type=PromotionType.CODE)
    row = code(promotion, "RACE1")
    customers = [CustomerFactory(org=org) for _ in range(8)]

    # when: each customer's link is sent at the same moment
    responses = run_concurrently(
        len(customers), lambda api, index: link(api, customers[index].pk, "RACE1"), org=org
    )

    # then: exactly one link wins; every other one is 1005
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 7
    winner = next(r for r in responses if r.status_code == 200).json()["data"]["customerId"]
    assert PromoCode.objects.get(pk=row.pk).customer_id == winner
    assert all(r.json()["errors"][0]["code"] == 1005 for r in responses if r.status_code == 409)
    assert AuditEvent.objects.filter(action="promo_code.link").count() == 1
