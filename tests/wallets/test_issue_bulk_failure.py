"""issueBulk's 500: a failure after the rows are written leaves nothing behind, and the body is JSON."""

from __future__ import annotations

import pytest

from promotions.models import AuditEvent, PromotionType
from tests.factories import CustomerFactory, PromotionFactory
from wallets.models import EarnedPromotion
from wallets.services import issue


@pytest.mark.django_db(transaction=True)
def test_failure_after_insert_rolls_back_and_answers_json_500(api, org, monkeypatch):
    # given customers, and a fault in the last step of the write (the audit event), after the inserts
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customers = CustomerFactory.create_batch(3, org=org)

    def broken_audit(**kwargs):
        assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3  # the rows were written
        raise RuntimeError("disk full")

    monkeypatch.setattr(issue, "audit_event_record", broken_audit)

    # when
    response = api.post(
        f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId=c1",
        [c.pk for c in customers],
        format="json",
    )

    # then: the documented 500 in the v1 envelope, no internals, and nothing half-written
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["code"] == 500 and "disk full" not in error["message"]
    assert not EarnedPromotion.objects.filter(promotion=promotion).exists()
    assert not AuditEvent.objects.filter(object_id=promotion.pk).exists()

    # and a retry once the fault is gone issues everything
    monkeypatch.undo()
    retry = api.post(
        f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId=c1",
        [c.pk for c in customers],
        format="json",
    )
    assert retry.status_code == 200
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3
