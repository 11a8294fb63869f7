"""Issue, then earn: an EARNING promotion issued to a customer is LOCKED until an earn unlocks it, and
a LOCKED instance cannot be redeemed."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from promotions_site.timefmt import to_epoch_ms
from tests.factories import PromotionFactory
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion

API = "/api_gateway/v1/promotions"
# The seeds use one id as the issueBulk contextId and as the earn/bulk earnedFromId.
SEED_ID = "68fb1c9731d91c625a8d9e80"


def issue(api, promotion, customer, context_id=SEED_ID):
    response = api.post(
        f"{API}/{promotion.pk}/issueBulk?contextId={context_id}", [customer.pk], format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()["data"][str(customer.pk)]


def earn_bulk(api, promotion, customer, *, earned_from_id=SEED_ID, earned_from_type="BULK_ISSUE", count=1):
    event_time = timezone.now() - dt.timedelta(hours=1)
    return api.post(
        f"{API}/earn/bulk",
        {
            "customerId": customer.pk,
            "eventTime": to_epoch_ms(event_time),
            "earnedFromType": earned_from_type,
            "eventDetails": {"id": "event-1", "type": earned_from_type},
            "earnedPromotions": [
                {"promotionId": promotion.pk, "earnCount": count, "earnedFromId": earned_from_id}
            ],
        },
        format="json",
    ), event_time


def wallet_item(api, customer, instance_id):
    items = api.get(f"{API}/customer/{customer.pk}").json()["data"]
    return next(item for item in items if item["earnedPromotionId"] == instance_id)


def test_earn_with_the_issue_context_id_unlocks_the_issued_instance(api, customer, earning):
    # given: the seed flow's issueBulk
    issued = issue(api, earning, customer)
    assert wallet_item(api, customer, issued["id"])["earnedStatus"] == "LOCKED"
    # when: earn/bulk with the issue's contextId as earnedFromId
    response, event_time = earn_bulk(api, earning, customer)
    # then: the answer is true - the same instance, unlocked at the event time sent
    assert response.status_code == 200, response.json()
    [entry] = response.json()["data"]
    assert (entry["successfulEarnCount"], entry["failedEarnCount"]) == (1, 0)
    [instance] = entry["customerEarnedPromotions"]
    assert instance["id"] == issued["id"]
    assert instance["eventTime"] == to_epoch_ms(event_time) != issued["eventTime"]
    assert (instance["earnedFromType"], instance["earnedFromId"]) == ("BULK_ISSUE", SEED_ID)
    assert instance["eventDetails"] == {"id": "event-1", "type": "BULK_ISSUE"}
    stored = EarnedPromotion.objects.get(customer=customer)
    assert stored.pk == issued["id"] and not stored.locked and stored.unlocked_from_id == SEED_ID
    item = wallet_item(api, customer, issued["id"])
    assert item["earnedStatus"] == "UNLOCKED" and item["unlockedDate"] == to_epoch_ms(event_time)
    audit = AuditEvent.objects.filter(action="promotion.earn").get()
    assert audit.data["unlocked"] == [issued["id"]] and audit.data["created"] == 0


def test_the_unlocking_earn_is_idempotent_and_the_issue_retry_finds_the_same_instance(api, customer, earning):
    issued = issue(api, earning, customer)
    first, _ = earn_bulk(api, earning, customer)
    # when: the earn and the issue are retried
    again, _ = earn_bulk(api, earning, customer)
    issue_again = issue(api, earning, customer)
    # then
    assert again.json() == first.json()
    assert issue_again["id"] == issued["id"]
    assert EarnedPromotion.objects.filter(customer=customer).count() == 1


def test_an_activity_earn_unlocks_the_issued_instance_then_creates(api, customer, earning):
    # given: an instance issued under another contextId
    issued = issue(api, earning, customer, context_id="campaign-1")
    # when: an ACTIVITY earn of two
    response, _ = earn_bulk(
        api, earning, customer, earned_from_id="BILL-7", earned_from_type="ACTIVITY", count=2
    )
    # then: the issued instance is unlocked first, the second is created
    [entry] = response.json()["data"]
    ids = [i["id"] for i in entry["customerEarnedPromotions"]]
    assert entry["successfulEarnCount"] == 2 and ids[0] == issued["id"]
    created = EarnedPromotion.objects.get(pk=ids[1])
    assert (created.kind, created.earned_from_id, created.locked) == ("EARNED", "BILL-7", False)
    # a replay of the earn answers the same, in the same order
    assert (
        earn_bulk(api, earning, customer, earned_from_id="BILL-7", earned_from_type="ACTIVITY", count=2)[
            0
        ].json()
        == response.json()
    )


def test_unlocking_counts_towards_max_earning_per_customer(api, customer, earning):
    earning.max_earning_per_customer = 1
    earning.save()
    issue(api, earning, customer)
    earn_bulk(api, earning, customer)
    # when: a second earn
    response, _ = earn_bulk(api, earning, customer, earned_from_id="BILL-8", earned_from_type="ACTIVITY")
    # then
    [entry] = response.json()["data"]
    assert (entry["successfulEarnCount"], entry["failedEarnCount"]) == (0, 1)
    assert entry["errorDetails"]["errorCode"] == 708


def test_a_customer_issued_instance_is_unlocked_from_the_start(api, org, customer):
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    issued = issue(api, promotion, customer)
    assert wallet_item(api, customer, issued["id"])["earnedStatus"] == "UNLOCKED"
    assert (
        redeem(
            api, body(customer, line_items=[line(promotion, EarnedPromotion(pk=issued["id"]))])
        ).status_code
        == 200
    )


def test_a_locked_instance_named_by_the_till_is_refused_715(api, customer, earning):
    # given
    issued = issue(api, earning, customer)
    # when
    response = redeem(api, body(customer, line_items=[line(earning, EarnedPromotion(pk=issued["id"]))]))
    # then
    assert response.status_code == 400 and codes(response) == [715]
    assert "LOCKED" in response.json()["errors"][0]["message"]
    assert EarnedPromotion.objects.get(pk=issued["id"]).redemption_count == 0


def test_the_service_never_picks_a_locked_instance(api, customer, earning):
    issue(api, earning, customer)
    # when: a line without earnedPromotionId
    response = redeem(api, body(customer, line_items=[line(earning)]))
    # then
    assert response.status_code == 400 and codes(response) == [715]
    # once earned, the same line redeems the unlocked instance
    earn_bulk(api, earning, customer)
    assert redeem(api, body(customer, "TXN-2", line_items=[line(earning)])).status_code == 200
