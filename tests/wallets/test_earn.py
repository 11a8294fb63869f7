"""POST /api_gateway/v1/promotions/earn/bulk and POST /api_gateway/v1/promotions/{id}/earn."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from promotions_site.timefmt import from_epoch_ms, to_epoch_ms
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, EarnedPromotionFactory, OrganizationFactory, PromotionFactory
from wallets.models import EarnedPromotion
from wallets.schema import EARN_BULK_REQUEST_EXAMPLE, EARN_BULK_RESPONSE_EXAMPLE

EARN_BULK = "/api_gateway/v1/promotions/earn/bulk"


@pytest.fixture
def seeded(org):
    """The documented example's customer and two promotions, valid until 2025-12-31 23:59:59.999 IST, now running."""
    org.pk  # noqa: B018
    customer = CustomerFactory(org=org, id=566881933)
    promotions = [
        PromotionFactory(
            org=org,
            id=promotion_id,
            type=PromotionType.EARNING,
            start_date=from_epoch_ms(1761750000000) - dt.timedelta(days=30),
            end_date=timezone.now() + dt.timedelta(days=30),
            max_earning_per_customer=-1,
        )
        for promotion_id in ("6912ced9d39e256f754a83f8", "6912cfff6629ee07040e15ef")
    ]
    return customer, promotions


def example_body(org):
    body = copy.deepcopy(EARN_BULK_REQUEST_EXAMPLE)
    body["orgId"] = org.pk
    return body


def test_documented_example_gives_documented_shape(api, org, seeded, settings):
    # given
    customer, promotions = seeded
    # when
    response = api.post(EARN_BULK, example_body(org), format="json")
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert list(body) == ["data", "errors"] and body["errors"] == []
    assert [entry["promotionId"] for entry in body["data"]] == [p.pk for p in promotions]
    documented = EARN_BULK_RESPONSE_EXAMPLE["data"][0]
    for entry, promotion in zip(body["data"], promotions, strict=True):
        assert list(entry) == list(documented)
        assert entry["successfulEarnCount"] == 1 and entry["failedEarnCount"] == 0
        [instance] = entry["customerEarnedPromotions"]
        expected = documented["customerEarnedPromotions"][0]
        assert list(instance) == list(expected)
        assert instance["customerId"] == 566881933 and instance["earnedFromType"] == "BULK_ISSUE"
        assert instance["eventTime"] == 1761750000000 and instance["eventTimeISO"] == "2025-10-29T15:00:00Z"
        assert instance["eventDetails"] == {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"}
        assert instance["validTill"] == to_epoch_ms(promotion.end_date)
    assert EarnedPromotion.objects.filter(customer=customer, kind="EARNED").count() == 2


def test_event_time_iso_with_offset_and_server_zone_output(api, org, seeded, settings):
    settings.TIME_ZONE = "Asia/Kolkata"
    body = example_body(org)
    del body["eventTime"]
    body["eventTimeISO"] = "2025-10-29T20:30:00+05:30"
    entry = api.post(EARN_BULK, body, format="json").json()["data"][0]
    instance = entry["customerEarnedPromotions"][0]
    assert instance["eventTime"] == 1761750000000
    assert instance["eventTimeISO"] == "2025-10-29T20:30:00+05:30"


def test_replay_returns_the_same_instances(api, org, seeded):
    body = example_body(org)
    body["earnedPromotions"][0]["earnCount"] = 3
    first = api.post(EARN_BULK, body, format="json").json()
    second = api.post(EARN_BULK, body, format="json").json()
    assert first == second
    assert len(first["data"][0]["customerEarnedPromotions"]) == 3
    assert EarnedPromotion.objects.count() == 4


def test_replay_with_another_earned_from_type_is_713(api, org, seeded):
    api.post(EARN_BULK, example_body(org), format="json")
    body = example_body(org)
    body["earnedFromType"] = body["eventDetails"]["type"] = "ACTIVITY"
    entry = api.post(EARN_BULK, body, format="json").json()["data"][0]
    assert entry["successfulEarnCount"] == 0 and entry["failedEarnCount"] == 1
    assert entry["errorDetails"]["errorCode"] == 713
    assert EarnedPromotion.objects.count() == 2


def test_max_earning_per_customer_reported_item_by_item(api, org, seeded):
    _, promotions = seeded
    promotions[0].max_earning_per_customer = 2
    promotions[0].save()
    body = example_body(org)
    body["earnedPromotions"][0]["earnCount"] = 5
    data = api.post(EARN_BULK, body, format="json").json()["data"]
    assert (data[0]["successfulEarnCount"], data[0]["failedEarnCount"]) == (2, 3)
    assert data[0]["errorDetails"] == {
        "errorCode": 708,
        "errorMessages": "Exceeded the max earn per customer limit.",
    }
    assert (data[1]["successfulEarnCount"], data[1]["failedEarnCount"]) == (
        1,
        0,
    ) and "errorDetails" not in data[1]


@pytest.mark.parametrize("ptype", [PromotionType.POS, PromotionType.CODE, PromotionType.CUSTOMER])
def test_types_that_cannot_be_earned_are_714_for_the_whole_request(api, org, seeded, ptype):
    _, promotions = seeded
    promotions[1].type = ptype
    promotions[1].save()
    response = api.post(EARN_BULK, example_body(org), format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 714
    assert not EarnedPromotion.objects.exists()


def test_reward_type_can_be_earned(api, org, seeded):
    _, promotions = seeded
    promotions[0].type = PromotionType.REWARD
    promotions[0].save()
    assert api.post(EARN_BULK, example_body(org), format="json").status_code == 200


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: b.pop("eventTime"), 400),
        (lambda b: b.update(eventTime="yesterday"), 400),
        (lambda b: b.update(eventTimeISO="2025-10-29T15:00:00"), 400),
        (lambda b: b.update(earnedPromotions=[]), 400),
        (lambda b: b.update(earnedFromType="GIFT"), 400),
        (lambda b: b["earnedPromotions"][0].update(earnCount=0), 400),
        (lambda b: b["earnedPromotions"].append(dict(b["earnedPromotions"][0])), 400),
        (lambda b: b.pop("eventDetails"), 400),
        (lambda b: b.update(customerId="abc"), 400),
        (lambda b: b.update(orgId=1), 400),
        (lambda b: b.update(eventTime=to_epoch_ms(timezone.now() + dt.timedelta(hours=25))), 400),
        (lambda b: b.update(customerId=12345), 404),
        (lambda b: b["earnedPromotions"][0].update(promotionId="ffffffffffffffffffffffff"), 404),
        (lambda b: b.update(eventTime=to_epoch_ms(timezone.now() - dt.timedelta(days=900))), 709),
    ],
)
def test_request_level_faults_write_nothing(api, org, seeded, change, code):
    body = example_body(org)
    change(body)
    response = api.post(EARN_BULK, body, format="json")
    assert response.json()["errors"][0]["code"] == code, response.json()
    assert not EarnedPromotion.objects.exists()


def test_expired_promotion_is_706(api, org, seeded):
    _, promotions = seeded
    promotions[0].end_date = timezone.now() - dt.timedelta(minutes=1)
    promotions[0].save()
    response = api.post(EARN_BULK, example_body(org), format="json")
    assert response.json()["errors"][0]["code"] == 706
    assert not EarnedPromotion.objects.exists()


def test_earned_validity_days_set_valid_till(api, org, seeded):
    _, promotions = seeded
    promotions[0].earned_validity_days = 7
    promotions[0].save()
    body = example_body(org)
    body["eventTime"] = to_epoch_ms(timezone.now())
    instance = api.post(EARN_BULK, body, format="json").json()["data"][0]["customerEarnedPromotions"][0]
    till = from_epoch_ms(instance["validTill"]).astimezone(org.tz)
    assert till.date() == (timezone.now() + dt.timedelta(days=7)).astimezone(org.tz).date()
    assert (till.hour, till.minute, till.second) == (23, 59, 59)


# --- single earn -----------------------------------------------------------------------------------


def earn_body(customer, **overrides):
    body = {
        "customerId": customer.pk,
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "BILL-1",
        "eventTimeISO": timezone.now().isoformat(),
        "eventDetails": {"id": "BILL-1", "type": "TransactionAdd"},
    }
    body.update(overrides)
    return body


def test_single_earn_and_replay(api, org, seeded):
    customer, promotions = seeded
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"
    first = api.post(url, earn_body(customer), format="json")
    assert first.status_code == 200
    body = first.json()
    assert list(body) == ["data", "errors"]
    assert list(body["data"]) == [
        "id", "customerId", "promotionId", "earnedFromType", "earnedFromId", "eventTime", "eventTimeISO",
        "eventDetails", "validTill", "validTillISO",
    ]  # fmt: skip
    assert api.post(url, earn_body(customer), format="json").json() == body
    conflict = api.post(url, earn_body(customer, earnedFromType="MILESTONE"), format="json")
    assert conflict.status_code == 409 and conflict.json()["errors"][0]["code"] == 713
    assert EarnedPromotion.objects.count() == 1


def test_single_earn_replay_key_is_per_customer(api, org, seeded):
    # given two customers earning the same promotion from the same earnedFromId (one bill id reused
    # by two stores, or a transaction split between two members)
    customer, promotions = seeded
    other = CustomerFactory(org=org)
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"

    # when each earns, then each replays
    first = api.post(url, earn_body(customer), format="json")
    second = api.post(url, earn_body(other), format="json")
    first_replay = api.post(url, earn_body(customer), format="json")
    second_replay = api.post(url, earn_body(other), format="json")

    # then each customer has their own instance, and a replay answers that customer's own
    assert [r.status_code for r in (first, second, first_replay, second_replay)] == [200] * 4
    mine, theirs = first.json()["data"], second.json()["data"]
    assert mine["id"] != theirs["id"]
    assert (mine["customerId"], theirs["customerId"]) == (customer.pk, other.pk)
    assert (first_replay.json(), second_replay.json()) == (first.json(), second.json())
    held = EarnedPromotion.objects.filter(promotion=promotions[0], earned_from_id="BILL-1")
    assert sorted(held.values_list("customer_id", "pk")) == sorted(
        [(customer.pk, mine["id"]), (other.pk, theirs["id"])]
    )


def test_single_earn_unlocks_only_the_earning_customers_issued_instance(api, org, seeded):
    # given both customers were issued the promotion under the contextId the earn names
    customer, promotions = seeded
    other = CustomerFactory(org=org)
    issued = {
        c.pk: EarnedPromotionFactory(org=org, customer=c, promotion=promotions[0], earned_from_id="BILL-1")
        for c in (customer, other)
    }
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"

    # when the second customer earns from it, and replays
    earned = api.post(url, earn_body(other), format="json")
    replay = api.post(url, earn_body(other), format="json")

    # then their own instance is unlocked, the other customer's stays LOCKED, and the replay answers the same
    assert earned.status_code == 200 and earned.json()["data"]["id"] == issued[other.pk].pk
    assert replay.json() == earned.json()
    assert EarnedPromotion.objects.get(pk=issued[customer.pk].pk).locked
    assert not EarnedPromotion.objects.get(pk=issued[other.pk].pk).locked


def test_single_earn_limit_is_409_708(api, org, seeded):
    customer, promotions = seeded
    promotions[0].max_earning_per_customer = 1
    promotions[0].save()
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"
    assert api.post(url, earn_body(customer), format="json").status_code == 200
    response = api.post(url, earn_body(customer, earnedFromId="BILL-2"), format="json")
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == 708


def test_refused_single_earn_writes_nothing_not_even_an_audit_event(api, org, seeded):
    # given: the customer holds the one instance maxEarningPerCustomer allows
    # (found by tests/invariants: the 409 was answered after the audit event had been committed)
    customer, promotions = seeded
    promotions[0].max_earning_per_customer = 1
    promotions[0].save()
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"
    assert api.post(url, earn_body(customer), format="json").status_code == 200
    events = AuditEvent.objects.filter(org=org).count()
    # when: a second earn (708) and a replay of the first with another earnedFromType (713)
    over_limit = api.post(url, earn_body(customer, earnedFromId="BILL-2"), format="json")
    other_type = api.post(url, earn_body(customer, earnedFromType="MILESTONE"), format="json")
    # then
    assert [over_limit.status_code, other_type.status_code] == [409, 409]
    assert [r.json()["errors"][0]["code"] for r in (over_limit, other_type)] == [708, 713]
    assert AuditEvent.objects.filter(org=org).count() == events
    assert EarnedPromotion.objects.filter(customer=customer).count() == 1


def test_single_earn_supplementary_criteria_all_or_nothing(api, org, seeded):
    customer, promotions = seeded
    url = f"/api_gateway/v1/promotions/{promotions[0].pk}/earn"
    partial = api.post(url, earn_body(customer, supplementaryCriteria={"loyaltyProgramId": 1}), format="json")
    assert partial.status_code == 400
    full = {"loyaltyProgramId": 1, "programType": "TIER", "partnerProgramId": 2}
    ok = api.post(url, earn_body(customer, supplementaryCriteria=full), format="json")
    assert ok.status_code == 200
    assert EarnedPromotion.objects.get().event_details["supplementaryCriteria"] == full


def test_read_only_client_cannot_earn(read_api, org, seeded):
    assert read_api.post(EARN_BULK, example_body(org), format="json").status_code == 403


def test_other_orgs_customer_is_404(api, org, other_org, seeded):
    foreign = CustomerFactory(org=other_org)
    body = example_body(org)
    body["customerId"] = foreign.pk
    assert api.post(EARN_BULK, body, format="json").status_code == 404


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_earns_never_exceed_max_earning_per_customer():
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=3)
    customer = CustomerFactory(org=org)
    url = f"/api_gateway/v1/promotions/{promotion.pk}/earn"

    def call(api, index):
        return api.post(url, earn_body(customer, earnedFromId=f"BILL-{index}"), format="json").status_code

    statuses = run_concurrently(20, call, org=org)
    assert sorted(statuses) == [200] * 3 + [409] * 17
    assert EarnedPromotion.objects.filter(promotion=promotion, customer=customer).count() == 3
