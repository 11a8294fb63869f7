"""POST /api_gateway/v1/promotions/revokeEarn."""

from __future__ import annotations

import pytest

from promotions.models import AuditEvent, PromotionType
from tests.concurrency import run_concurrently
from tests.factories import CustomerFactory, EarnedPromotionFactory, OrganizationFactory, PromotionFactory
from wallets.models import EarnedPromotion
from wallets.schema import REVOKE_EARN_REQUEST_EXAMPLE

REVOKE = "/api_gateway/v1/promotions/revokeEarn"


def revoke(api, customer_id, *entries):
    body = {
        "customerId": customer_id,
        "earnRevokeDetails": [{"promotionId": p, "earnIds": ids} for p, ids in entries],
    }
    return api.post(REVOKE, body, format="json")


def status_of(*instances) -> list[str]:
    return [EarnedPromotion.objects.get(pk=i.pk).status for i in instances]


@pytest.fixture
def promotion(org):
    return PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=-1)


def earned(org, customer, promotion, **kwargs):
    return EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, kind="EARNED", earned_from_type="ACTIVITY", **kwargs
    )


def test_revoke_shape_status_and_audit(api, org, customer, promotion):
    # given: two instances, one of them revoked here
    first, second = earned(org, customer, promotion), earned(org, customer, promotion)
    # when
    response = revoke(api, customer.pk, (promotion.pk, [first.pk]))
    # then
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "customerId": customer.pk,
            "revokedDetails": [
                {"promotionId": promotion.pk, "revokedEarnIds": [first.pk], "status": "SUCCESS"}
            ],
        },
        "errors": [],
    }
    first.refresh_from_db()
    assert first.status == "REVOKED" and first.status_changed_at is not None
    assert status_of(second) == ["ACTIVE"]
    [event] = AuditEvent.objects.filter(action="promotion.revoke_earn")
    assert event.org == org and event.object_id == str(customer.pk)
    assert event.actor_name == api.api_client.username
    assert event.data["changed"] == 1 and event.data["revoked"] == {promotion.pk: [first.pk]}


def test_documented_example_body(api, org):
    # given: the example's customer, promotions and earn ids
    customer = CustomerFactory(org=org, id=REVOKE_EARN_REQUEST_EXAMPLE["customerId"])
    instances = []
    for entry in REVOKE_EARN_REQUEST_EXAMPLE["earnRevokeDetails"]:
        promotion = PromotionFactory(org=org, id=entry["promotionId"], type="EARNING")
        instances += [earned(org, customer, promotion, id=earn_id) for earn_id in entry["earnIds"]]
    # when
    response = api.post(REVOKE, REVOKE_EARN_REQUEST_EXAMPLE, format="json")
    # then
    assert response.status_code == 200
    assert [d["promotionId"] for d in response.json()["data"]["revokedDetails"]] == [
        e["promotionId"] for e in REVOKE_EARN_REQUEST_EXAMPLE["earnRevokeDetails"]
    ]
    assert status_of(*instances) == ["REVOKED", "REVOKED"]


def test_revoked_instance_leaves_the_active_wallet(api, org, customer, promotion):
    instance = earned(org, customer, promotion)
    revoke(api, customer.pk, (promotion.pk, [instance.pk]))
    wallet_url = f"/api_gateway/v1/promotions/customer/{customer.pk}"
    assert api.get(wallet_url, {"isIncludeActivePromotionsOnly": "true"}).json()["data"] == []
    [item] = api.get(wallet_url).json()["data"]
    assert item["earnedPromotionId"] == instance.pk and item["status"] == "REVOKED"


def test_retry_is_a_no_op_success(api, org, customer, promotion):
    # given: an instance revoked once
    instance = earned(org, customer, promotion)
    first = revoke(api, customer.pk, (promotion.pk, [instance.pk, instance.pk]))
    instance.refresh_from_db()
    revoked_at = instance.status_changed_at
    # when: the same request again
    second = revoke(api, customer.pk, (promotion.pk, [instance.pk]))
    # then: same answer, nothing changed
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["data"]["revokedDetails"][0]["revokedEarnIds"] == [instance.pk]  # duplicates once
    instance.refresh_from_db()
    assert instance.status == "REVOKED" and instance.status_changed_at == revoked_at
    events = AuditEvent.objects.filter(action="promotion.revoke_earn").order_by("id")
    assert [e.data["changed"] for e in events] == [1, 0]


def test_issued_expired_and_reward_instances_can_be_revoked(api, org, customer):
    issued = EarnedPromotionFactory(org=org, customer=customer)
    expired = EarnedPromotionFactory(org=org, customer=customer, promotion=issued.promotion, status="EXPIRED")
    reward = earned(org, customer, PromotionFactory(org=org, type="REWARD"))
    response = revoke(
        api, customer.pk, (issued.promotion_id, [issued.pk, expired.pk]), (reward.promotion_id, [reward.pk])
    )
    assert response.status_code == 200 and response.json()["errors"] == []
    assert status_of(issued, expired, reward) == ["REVOKED"] * 3


# --- per-entry errors -----------------------------------------------------------------------------


def test_a_failing_entry_is_reported_and_the_others_are_revoked(api, org, other_org, customer, promotion):
    # given: one good entry and one entry per refusal, each refused entry holding a revocable id too
    good = earned(org, customer, promotion)
    pos = PromotionFactory(org=org, type="POS")
    other_promotion = PromotionFactory(org=org, type="EARNING")
    spare = earned(org, customer, other_promotion)
    redeemed_promotion = PromotionFactory(org=org, type="EARNING")
    redeemable = earned(org, customer, redeemed_promotion)
    redeemed = earned(org, customer, redeemed_promotion, status="REDEEMED")
    theirs = PromotionFactory(org=other_org)
    # when
    response = revoke(
        api,
        customer.pk,
        ("ffffffffffffffffffffffff", [good.pk]),
        (theirs.pk, [good.pk]),
        (pos.pk, [good.pk]),
        (other_promotion.pk, [spare.pk, "not-an-id"]),
        (promotion.pk, [good.pk]),
        (redeemed_promotion.pk, [redeemable.pk, redeemed.pk]),
    )
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["revokedDetails"] == [
        {"promotionId": promotion.pk, "revokedEarnIds": [good.pk], "status": "SUCCESS"}
    ]
    assert body["errors"] == [
        {"promotionId": "ffffffffffffffffffffffff", "code": 404, "message": "Passed promotion is not found"},
        {"promotionId": theirs.pk, "code": 404, "message": "Passed promotion is not found"},
        {
            "promotionId": pos.pk,
            "code": 730,
            "message": "Earn revoke not possible for POS and CODE promotion.",
        },
        {"promotionId": other_promotion.pk, "code": 731, "message": "Invalid earn id: not-an-id"},
        {
            "promotionId": redeemed_promotion.pk,
            "code": 729,
            "message": f"Earn already redeemed: {redeemed.pk}",
        },
    ]
    # an entry is all or nothing
    assert status_of(good, spare, redeemable, redeemed) == ["REVOKED", "ACTIVE", "ACTIVE", "REDEEMED"]
    [event] = AuditEvent.objects.filter(action="promotion.revoke_earn")
    assert len(event.data["errors"]) == 5


def test_every_entry_failing_answers_the_first_errors_status_and_writes_nothing(
    api, org, customer, promotion
):
    # given
    instance = earned(org, customer, promotion)
    pos = PromotionFactory(org=org, type="POS")
    # when
    response = revoke(api, customer.pk, (pos.pk, [instance.pk]), (promotion.pk, [instance.pk, "nope"]))
    # then
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "promotionId": pos.pk,
                "code": 730,
                "message": "Earn revoke not possible for POS and CODE promotion.",
            },
            {"promotionId": promotion.pk, "code": 731, "message": "Invalid earn id: nope"},
        ]
    }
    assert status_of(instance) == ["ACTIVE"]
    assert not AuditEvent.objects.filter(action="promotion.revoke_earn").exists()


def invalid_ids(org, other_org, customer, promotion):
    """Earn ids that are not this customer's instance of this promotion."""
    return {
        "unknown": "ffffffffffffffffffffffff",
        "malformed": "xyz",
        "blank": "",
        "other customer": earned(org, CustomerFactory(org=org), promotion).pk,
        "other promotion": earned(org, customer, PromotionFactory(org=org, type="EARNING")).pk,
        "other org": EarnedPromotionFactory(org=other_org).pk,
    }


@pytest.mark.parametrize(
    "case", ["unknown", "malformed", "blank", "other customer", "other promotion", "other org"]
)
def test_invalid_earn_id_is_731(api, org, other_org, customer, promotion, case):
    # given
    bad = invalid_ids(org, other_org, customer, promotion)[case]
    before = dict(EarnedPromotion.objects.values_list("pk", "status"))
    # when
    response = revoke(api, customer.pk, (promotion.pk, [bad]))
    # then
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"promotionId": promotion.pk, "code": 731, "message": f"Invalid earn id: {bad}"}
    ]
    assert dict(EarnedPromotion.objects.values_list("pk", "status")) == before


@pytest.mark.parametrize("redeemed", [{"status": "REDEEMED"}, {"redemption_count": 1}])
def test_redeemed_earn_is_729(api, org, customer, promotion, redeemed):
    instance = earned(org, customer, promotion, **redeemed)
    response = revoke(api, customer.pk, (promotion.pk, [instance.pk]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 729
    assert status_of(instance) == [redeemed.get("status", "ACTIVE")]


@pytest.mark.parametrize("promotion_type", ["POS", "CODE"])
def test_pos_and_code_promotions_are_730(api, org, customer, promotion_type):
    pos = PromotionFactory(org=org, type=promotion_type)
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=pos)
    response = revoke(api, customer.pk, (pos.pk, [instance.pk]))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 730
    assert status_of(instance) == ["ACTIVE"]


def test_unknown_or_other_orgs_promotion_alone_is_404(api, org, other_org, customer):
    theirs = EarnedPromotionFactory(org=other_org)
    response = revoke(api, customer.pk, (theirs.promotion_id, [theirs.pk]))
    assert response.status_code == 404
    assert response.json()["errors"][0] == {
        "promotionId": theirs.promotion_id,
        "code": 404,
        "message": "Passed promotion is not found",
    }
    assert status_of(theirs) == ["ACTIVE"]


# --- request-level errors -------------------------------------------------------------------------


@pytest.mark.parametrize("customer_id", [999999999, "other org"])
def test_unknown_customer_is_404(api, other_org, promotion, customer_id):
    if customer_id == "other org":
        instance = EarnedPromotionFactory(org=other_org)
        customer_id = instance.customer_id
    response = revoke(api, customer_id, (promotion.pk, ["ffffffffffffffffffffffff"]))
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Customer not found"}]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"customerId": "abc", "earnRevokeDetails": [{"promotionId": "p", "earnIds": ["e"]}]},
        {"customerId": 2**63, "earnRevokeDetails": [{"promotionId": "p", "earnIds": ["e"]}]},
        {"customerId": 1, "earnRevokeDetails": []},
        {"customerId": 1, "earnRevokeDetails": [{"promotionId": "p", "earnIds": []}]},
        {"customerId": 1, "earnRevokeDetails": [{"promotionId": "p", "earnIds": [None]}]},
        {"customerId": 1, "earnRevokeDetails": [{"promotionId": "p", "earnIds": "e"}]},
        {"customerId": 1, "earnRevokeDetails": [{"earnIds": ["e"]}]},
        {"customerId": 1, "earnRevokeDetails": [{"promotionId": "p", "earnIds": ["e" * 256]}]},
        {
            "customerId": 1,
            "earnRevokeDetails": [
                {"promotionId": "p", "earnIds": ["e"]},
                {"promotionId": "p", "earnIds": ["f"]},
            ],
        },
    ],
    ids=lambda body: str(body)[:60],
)
def test_malformed_body_is_400(api, body):
    response = api.post(REVOKE, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 400


def test_more_than_1000_earn_ids_in_total_is_400(api, org, customer, promotion):
    # given: 1001 ids over two entries (each under 1000)
    instance = earned(org, customer, promotion)
    other = PromotionFactory(org=org, type="EARNING")
    # when
    response = revoke(
        api,
        customer.pk,
        (promotion.pk, [instance.pk] + [f"{n:024x}" for n in range(600)]),
        (other.pk, ["x"] * 400),
    )
    # then
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": 400, "message": "earnRevokeDetails: At most 1000 earnIds per request."}
    ]
    assert status_of(instance) == ["ACTIVE"]


def test_exactly_1000_earn_ids_are_accepted(api, org, customer, promotion):
    instances = EarnedPromotion.objects.bulk_create(
        [
            EarnedPromotion(
                org=org,
                customer=customer,
                promotion=promotion,
                kind="EARNED",
                earned_from_type="ACTIVITY",
                earned_from_id=f"BILL-{n}",
                event_time=promotion.start_date,
                valid_till=promotion.end_date,
            )
            for n in range(1000)
        ]
    )
    response = revoke(api, customer.pk, (promotion.pk, [i.pk for i in instances]))
    assert response.status_code == 200
    assert len(response.json()["data"]["revokedDetails"][0]["revokedEarnIds"]) == 1000
    assert EarnedPromotion.objects.filter(status="REVOKED").count() == 1000


def test_read_only_client_cannot_revoke(read_api, org, customer, promotion):
    instance = earned(org, customer, promotion)
    response = revoke(read_api, customer.pk, (promotion.pk, [instance.pk]))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == 403
    assert status_of(instance) == ["ACTIVE"]


def test_revoke_earn_route_is_not_taken_for_a_promotion_id(api):
    # GET .../revokeEarn would otherwise be the promotion-detail route with promotionId "revokeEarn"
    response = api.get(REVOKE)
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == 405


# --- limits ---------------------------------------------------------------------------------------


def test_a_revoked_issued_instance_frees_an_issuance_slot(api, org, customer):
    # given: a promotion issuable once per customer, issued
    promotion = PromotionFactory(org=org, max_issuance_per_customer=1)
    url = f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId="
    issued = api.post(url + "first", [customer.pk], format="json").json()["data"][str(customer.pk)]["id"]
    assert api.post(url + "second", [customer.pk], format="json").json()["errors"][0]["code"] == 708
    # when
    assert revoke(api, customer.pk, (promotion.pk, [issued])).status_code == 200
    # then: a new issue succeeds; a replay of the first context still returns the revoked instance
    again = api.post(url + "second", [customer.pk], format="json").json()
    assert again["data"][str(customer.pk)]["id"] != issued
    assert (
        api.post(url + "first", [customer.pk], format="json").json()["data"][str(customer.pk)]["id"] == issued
    )


def test_a_revoked_earned_instance_frees_an_earning_slot(api, org, customer):
    promotion = PromotionFactory(org=org, type="EARNING", max_earning_per_customer=1)
    instance = earned(org, customer, promotion)
    url = f"/api_gateway/v1/promotions/{promotion.pk}/earn"
    body = {
        "customerId": customer.pk,
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "BILL-2",
        "eventTime": int(promotion.start_date.timestamp() * 1000) + 1000,
        "eventDetails": {"id": "BILL-2", "type": "TransactionAdd"},
    }
    assert api.post(url, body, format="json").status_code == 409
    revoke(api, customer.pk, (promotion.pk, [instance.pk]))
    assert api.post(url, body, format="json").status_code == 200


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_identical_revokes_change_each_instance_once():
    # given
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="EARNING", max_earning_per_customer=-1)
    instances = [earned(org, customer, promotion) for _ in range(5)]
    ids = [i.pk for i in instances]
    # when: ten threads send the same revoke at once
    results = run_concurrently(
        10,
        lambda api, _: (lambda r: (r.status_code, r.json()))(revoke(api, customer.pk, (promotion.pk, ids))),
        org=org,
    )
    # then: every answer is the same success; the instances changed exactly once
    assert {status for status, _ in results} == {200}
    assert all(body == results[0][1] for _, body in results)
    assert results[0][1]["data"]["revokedDetails"][0]["revokedEarnIds"] == ids
    events = AuditEvent.objects.filter(action="promotion.revoke_earn")
    assert sorted(e.data["changed"] for e in events) == [0] * 9 + [5]
    assert EarnedPromotion.objects.filter(pk__in=ids, status="REVOKED").count() == 5


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_revoke_racing_issues_never_exceeds_the_issuance_limit():
    # given: a promotion issuable twice per customer, issued twice
    org = OrganizationFactory()
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, max_issuance_per_customer=2)
    held = [EarnedPromotionFactory(org=org, customer=customer, promotion=promotion) for _ in range(2)]
    url = f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId="

    # when: one thread revokes one instance while nine issue under their own contexts
    def call(api, index):
        if index == 0:
            return revoke(api, customer.pk, (promotion.pk, [held[0].pk])).status_code
        return api.post(url + f"ctx-{index}", [customer.pk], format="json").json()

    results = run_concurrently(10, call, org=org)
    # then: the revoke succeeded, and exactly one issue took the freed slot (if it came after it)
    assert results[0] == 200
    issued = [r for r in results[1:] if str(customer.pk) in r["data"]]
    refused = [r for r in results[1:] if r.get("errors")]
    assert len(issued) + len(refused) == 9 and len(issued) <= 1
    live = EarnedPromotion.objects.filter(promotion=promotion, customer=customer).exclude(status="REVOKED")
    assert live.count() == 1 + len(issued) <= 2
