"""One validation of an earn body, shared by `POST /earn` and `POST /earn/bulk`."""

from __future__ import annotations

import pytest
from django.utils import timezone

from promotions_site.timefmt import to_epoch_ms
from wallets.models import EarnedPromotion

API = "/api_gateway/v1/promotions"


def single(api, promotion, customer, earned_from_type, event_type, earned_from_id="E-1"):
    data = {
        "customerId": customer.pk,
        "earnedFromType": earned_from_type,
        "earnedFromId": earned_from_id,
        "eventTime": to_epoch_ms(timezone.now()),
        "eventDetails": {"id": "event", "type": event_type},
    }
    return api.post(f"{API}/{promotion.pk}/earn", data, format="json")


def bulk(api, promotion, customer, earned_from_type, event_type, earned_from_id="B-1"):
    data = {
        "customerId": customer.pk,
        "earnedFromType": earned_from_type,
        "eventTime": to_epoch_ms(timezone.now()),
        "eventDetails": {"id": "event", "type": event_type},
        "earnedPromotions": [{"promotionId": promotion.pk, "earnCount": 1, "earnedFromId": earned_from_id}],
    }
    return api.post(f"{API}/earn/bulk", data, format="json")


def messages(response) -> list[str]:
    assert response.status_code == 400, response.json()
    assert {error["code"] for error in response.json()["errors"]} == {400}
    return [error["message"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("earned_from_type", "event_type"),
    [
        ("BULK_ISSUE", "BULK_ISSUE"),
        ("ACTIVITY", "ACTIVITY"),
        ("ACTIVITY", "TransactionAdd"),
        ("MILESTONE", "MILESTONE"),
        ("MILESTONE", "CustomerUpdate"),
        ("ACTIVITY", "CustomerRegistration"),
        ("REWARD", "REWARD"),
    ],
)
def test_both_endpoints_accept_the_same_consistent_event_types(
    api, earning, customer, earned_from_type, event_type
):
    assert single(api, earning, customer, earned_from_type, event_type).status_code == 200
    assert bulk(api, earning, customer, earned_from_type, event_type).status_code == 200


@pytest.mark.parametrize(
    ("earned_from_type", "event_type"),
    [
        ("REWARD", "ACTIVITY"),
        ("ACTIVITY", "REWARD"),
        ("REWARD", "TransactionAdd"),
        ("BULK_ISSUE", "CustomerRegistration"),
        ("MILESTONE", "BULK_ISSUE"),
    ],
)
def test_both_endpoints_refuse_an_event_type_that_disagrees_with_earned_from_type(
    api, earning, customer, earned_from_type, event_type
):
    for call in (single, bulk):
        [message] = messages(call(api, earning, customer, earned_from_type, event_type))
        assert message.startswith(
            f"eventDetails.type: Must be consistent with earnedFromType {earned_from_type}"
        )
    assert not EarnedPromotion.objects.exists()


def test_an_unknown_event_type_is_refused_by_both(api, earning, customer):
    for call in (single, bulk):
        [message] = messages(call(api, earning, customer, "ACTIVITY", "Purchase"))
        assert message.startswith("eventDetails.type:")


def test_earn_reports_every_missing_field_at_once(api, earning):
    # when: an empty body
    response = api.post(f"{API}/{earning.pk}/earn", {}, format="json")
    # then: one entry per problem, the missing event time among them
    fields = sorted(message.split(":")[0] for message in messages(response))
    assert fields == ["customerId", "earnedFromId", "earnedFromType", "eventDetails", "eventTime"]


def test_earn_bulk_reports_every_missing_field_at_once(api):
    response = api.post(f"{API}/earn/bulk", {}, format="json")
    fields = sorted(message.split(":")[0] for message in messages(response))
    assert fields == ["customerId", "earnedFromType", "earnedPromotions", "eventDetails", "eventTime"]


def test_a_field_error_and_a_disagreeing_event_type_are_reported_together(api, earning, customer):
    data = {
        "customerId": "abc",
        "earnedFromType": "REWARD",
        "earnedFromId": "E-1",
        "eventTimeISO": timezone.now().isoformat(),
        "eventDetails": {"id": "event", "type": "ACTIVITY"},
    }
    response = api.post(f"{API}/{earning.pk}/earn", data, format="json")
    assert sorted(message.split(":")[0] for message in messages(response)) == [
        "customerId",
        "eventDetails.type",
    ]
