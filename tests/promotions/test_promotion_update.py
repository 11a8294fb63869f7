"""PUT /api_gateway/v1/promotions/{id}: type and active fixed, limits frozen once live, 1011, re-dating."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from promotions.models import AuditEvent, Organization, Promotion, PromotionRestriction
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from wallets.models import EarnedPromotion


def url(promotion):
    return f"/api_gateway/v1/promotions/{promotion.pk}"


def codes(response):
    return [error["code"] for error in response.json()["errors"]]


def future_promotion(org, **fields):
    start = timezone.now() + dt.timedelta(days=5)
    return PromotionFactory(org=org, start_date=start, end_date=start + dt.timedelta(days=30), **fields)


def test_update_replaces_the_configuration(api, org):
    # given a promotion that has not started, with one limit
    promotion = future_promotion(org, name="Old name", priority=3)
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=2)
    action = {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": 12.5}}

    # when
    response = api.put(
        url(promotion),
        {
            "name": "New name",
            "priority": 0,
            "action": action,
            "maxIssuancePerCustomer": 5,
            "promotionRestrictions": {"Promotion": [{"kpi": "DISCOUNT", "limit": "750.5"}]},
        },
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    echoed_action = {"type": "CART_BASED", "cartBasedAction": {"type": "PERCENTAGE", "value": "12.500000"}}
    assert (data["name"], data["priority"], data["action"], data["maxIssuancePerCustomer"]) == (
        "New name", 0, echoed_action, 5,
    )  # fmt: skip
    assert data["promotionRestrictions"] == {"Promotion": [{"kpi": "DISCOUNT", "limit": "750.500000"}]}
    promotion.refresh_from_db()
    assert promotion.name == "New name"
    assert list(promotion.restrictions.values_list("level", "kpi", "limit")) == [
        ("Promotion", "DISCOUNT", Decimal("750.5"))
    ]
    event = AuditEvent.objects.get(action="promotion.update", object_id=promotion.pk)
    assert event.data["changed"] == ["action", "max_issuance_per_customer", "name", "priority"]


def test_omitted_fields_keep_their_value(api, org):
    promotion = future_promotion(org, message_label="Keep me")
    PromotionRestrictionFactory(promotion=promotion)

    response = api.put(url(promotion), {"priority": 7}, format="json")

    assert response.status_code == 200
    promotion.refresh_from_db()
    assert (promotion.priority, promotion.message_label, promotion.restrictions.count()) == (7, "Keep me", 1)


def test_an_empty_body_changes_nothing_and_no_body_is_400(api, org):
    # every field is optional in an update, so `{}` is a no-op; no body at all is a client mistake
    promotion = future_promotion(org, message_label="Keep me", priority=3)

    empty = api.put(url(promotion), {}, format="json")
    absent = api.put(url(promotion))

    assert empty.status_code == 200
    assert absent.status_code == 400
    assert codes(absent) == [400]
    promotion.refresh_from_db()
    assert (promotion.priority, promotion.message_label) == (3, "Keep me")


def test_a_nul_character_in_free_json_is_400_not_a_500(api, org):
    # found by the fuzzer: PostgreSQL's jsonb refuses \u0000, the update answered 500
    promotion = future_promotion(org)

    response = api.put(url(promotion), {"customFieldValues": {"note\x00": "a\x00b"}}, format="json")

    assert response.status_code == 400
    assert codes(response) == [400]
    promotion.refresh_from_db()
    assert promotion.custom_field_values == {}


def test_type_cannot_change(api, org):
    promotion = future_promotion(org, type="CUSTOMER")

    response = api.put(url(promotion), {"type": "EARNING"}, format="json")

    assert response.status_code == 400
    assert "type cannot be updated" in response.json()["errors"][0]["message"]
    assert Promotion.objects.get(pk=promotion.pk).type == "CUSTOMER"


def test_active_cannot_change_but_may_be_sent_unchanged(api, org):
    promotion = future_promotion(org, active=True)

    refused = api.put(url(promotion), {"active": False}, format="json")
    same = api.put(url(promotion), {"active": True, "priority": 2}, format="json")

    assert refused.status_code == 400
    assert "activate and deactivate" in refused.json()["errors"][0]["message"]
    assert same.status_code == 200
    assert Promotion.objects.get(pk=promotion.pk).active is True


def test_limits_are_frozen_once_live(api, org):
    # given a promotion that has started
    promotion = PromotionFactory(org=org, start_date=timezone.now() - dt.timedelta(hours=1))
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=2)

    # when
    new_limit = api.put(
        url(promotion),
        {"promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": 3}]}},
        format="json",
    )
    new_issuance = api.put(url(promotion), {"maxIssuancePerCustomer": 9}, format="json")
    same_limits = api.put(
        url(promotion),
        {"name": "Renamed", "promotionRestrictions": {"Customer": [{"kpi": "REDEMPTION", "limit": "2.000"}]}},
        format="json",
    )

    # then
    assert new_limit.status_code == 400
    assert "cannot be changed once the promotion is live" in new_limit.json()["errors"][0]["message"]
    assert new_issuance.status_code == 400
    assert "maxIssuancePerCustomer" in new_issuance.json()["errors"][0]["message"]
    assert same_limits.status_code == 200, same_limits.content
    assert PromotionRestriction.objects.get(promotion=promotion).limit == 2


def test_window_schema_change_is_1011(api, org):
    promotion = future_promotion(org)
    PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="REDEMPTION", window_type="CLASSIC"
    )

    response = api.put(
        url(promotion),
        {
            "promotionRestrictions": {
                "Customer": [{"kpi": "REDEMPTION", "limit": 10, "windowType": "OVERALL"}]
            }
        },
        format="json",
    )

    assert response.status_code == 400
    assert codes(response) == [1011]


MONTHLY = {
    "kpi": "REDEMPTION",
    "limit": 3,
    "windowType": "FIXED",
    "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
}
LIFETIME = {"kpi": "REDEMPTION", "limit": 20, "windowType": "OVERALL"}


def live_promotion_with(org, **window):
    promotion = PromotionFactory(org=org, start_date=timezone.now() - dt.timedelta(hours=1))
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=3, **window)
    return promotion


def test_changing_the_window_of_a_live_limit_is_1011(api, org):
    # given: a live promotion limited to 3 a month per customer
    promotion = live_promotion_with(
        org, window_type="FIXED", fixed_window_config={"cycleType": "CALENDAR_MONTH"}
    )
    weekly = {**MONTHLY, "fixedWindowConfig": {"cycleType": "WEEK", "weekStartDay": "MONDAY"}}

    # when
    to_weekly = api.put(url(promotion), {"promotionRestrictions": {"Customer": [weekly]}}, format="json")
    to_lifetime = api.put(url(promotion), {"promotionRestrictions": {"Customer": [LIFETIME]}}, format="json")
    unchanged = api.put(url(promotion), {"promotionRestrictions": {"Customer": [MONTHLY]}}, format="json")

    # then
    assert (to_weekly.status_code, codes(to_weekly)) == (400, [1011])
    assert (to_lifetime.status_code, codes(to_lifetime)) == (400, [1011])
    assert unchanged.status_code == 200, unchanged.content
    assert PromotionRestriction.objects.get(promotion=promotion).fixed_window_config == {
        "cycleType": "CALENDAR_MONTH"
    }


def test_a_window_may_change_before_the_promotion_starts_but_not_from_classic(api, org):
    promotion = future_promotion(org)
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=3)

    changed = api.put(url(promotion), {"promotionRestrictions": {"Customer": [MONTHLY]}}, format="json")

    assert changed.status_code == 200, changed.content
    assert PromotionRestriction.objects.get(promotion=promotion).window_kind == "FIXED"


def test_classic_cannot_become_moving_and_a_second_limit_cannot_be_added_by_editing(api, org):
    classic = future_promotion(org)
    PromotionRestrictionFactory(
        promotion=classic, level="Customer", kpi="REDEMPTION", window_type="CLASSIC", frequency="DAYS"
    )
    lifetime = future_promotion(org)
    PromotionRestrictionFactory(promotion=lifetime, level="Customer", kpi="REDEMPTION", limit=20)
    moving = {"kpi": "REDEMPTION", "limit": 3, "windowType": "MOVING", "frequency": "DAYS"}

    to_moving = api.put(url(classic), {"promotionRestrictions": {"Customer": [moving]}}, format="json")
    paired = api.put(
        url(lifetime), {"promotionRestrictions": {"Customer": [LIFETIME, MONTHLY]}}, format="json"
    )

    assert codes(to_moving) == [1011]
    assert codes(paired) == [1011]
    assert PromotionRestriction.objects.filter(promotion=lifetime).count() == 1


def test_rename_onto_another_promotion_is_716(api, org):
    PromotionFactory(org=org, name="Taken")
    promotion = future_promotion(org)

    response = api.put(url(promotion), {"name": "Taken"}, format="json")

    assert codes(response) == [716]


def test_other_orgs_promotion_is_404(api, other_org):
    promotion = future_promotion(other_org)

    response = api.put(url(promotion), {"priority": 1}, format="json")

    assert response.status_code == 404
    assert Promotion.objects.get(pk=promotion.pk).priority == 0


def test_read_only_client_cannot_update(read_api, org):
    promotion = future_promotion(org)

    assert read_api.put(url(promotion), {"priority": 1}, format="json").status_code == 403


def test_invalid_body_writes_nothing(api, org):
    promotion = future_promotion(org, name="Unchanged")

    response = api.put(url(promotion), {"name": "Changed", "condition": {"type": "NOPE"}}, format="json")

    assert response.status_code == 400
    assert Promotion.objects.get(pk=promotion.pk).name == "Unchanged"


def test_changing_the_end_date_redates_active_instances(api, org):
    # given a live EARNING promotion with 10 earned-validity days, and instances of each kind
    org.timezone = "Asia/Kolkata"
    org.save()
    org = Organization.objects.get(pk=org.pk)
    start = timezone.now() - dt.timedelta(days=2)
    promotion = PromotionFactory(
        org=org,
        type="EARNING",
        start_date=start,
        end_date=start + dt.timedelta(days=5),
        earned_validity_days=10,
    )
    customer = CustomerFactory(org=org)
    issued = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, valid_till=promotion.end_date
    )
    earned = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, kind="EARNED", earned_from_type="ACTIVITY",
        event_time=start, valid_till=promotion.end_date,
    )  # fmt: skip
    redeemed = EarnedPromotionFactory(
        org=org, customer=customer, promotion=promotion, status="REDEEMED", valid_till=promotion.end_date
    )
    new_end = start + dt.timedelta(days=60)

    # when
    response = api.put(url(promotion), {"endDateISO": new_end.isoformat()}, format="json")

    # then issued instances end with the promotion, earned ones at the end of their own day + 10 days
    assert response.status_code == 200, response.content
    local = (start + dt.timedelta(days=10)).astimezone(org.tz)
    expected_earned = local.replace(hour=23, minute=59, second=59, microsecond=999000)
    assert (
        EarnedPromotion.objects.get(pk=issued.pk).valid_till
        == Promotion.objects.get(pk=promotion.pk).end_date
    )
    assert EarnedPromotion.objects.get(pk=earned.pk).valid_till == expected_earned
    assert EarnedPromotion.objects.get(pk=redeemed.pk).valid_till == promotion.end_date
    event = AuditEvent.objects.get(action="promotion.update", object_id=promotion.pk)
    assert event.data["redated_instances"] == 2


def test_shortening_the_end_date_caps_earned_instances(api, org):
    start = timezone.now() - dt.timedelta(days=1)
    promotion = PromotionFactory(
        org=org,
        type="EARNING",
        start_date=start,
        end_date=start + dt.timedelta(days=90),
        earned_validity_days=30,
    )
    earned = EarnedPromotionFactory(
        org=org, promotion=promotion, kind="EARNED", earned_from_type="ACTIVITY", event_time=start,
        valid_till=start + dt.timedelta(days=30),
    )  # fmt: skip
    new_end = start + dt.timedelta(days=3)

    response = api.put(url(promotion), {"endDate": int(new_end.timestamp() * 1000)}, format="json")

    assert response.status_code == 200, response.content
    assert (
        EarnedPromotion.objects.get(pk=earned.pk).valid_till
        == Promotion.objects.get(pk=promotion.pk).end_date
    )
