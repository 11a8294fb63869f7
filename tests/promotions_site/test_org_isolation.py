"""The credentials decide the org: another org's objects answer 404, exactly as if they did not exist."""

from __future__ import annotations

import pytest

from promotions.models import (
    ApiClient,
    AuditEvent,
    Concept,
    LoyaltyProgram,
    LoyaltyPromotion,
    PromoCode,
    PromoCodeBatch,
    Promotion,
    Store,
    Till,
    Zone,
)
from redemptions.models import (
    CartLock,
    Evaluation,
    Redemption,
    RedemptionCounter,
    RedemptionDay,
    RedemptionReversal,
)
from tests import factories
from wallets.models import (
    BulkJob,
    Customer,
    EarnedPromotion,
    Issual,
    LoyaltyEarnedPromotion,
    PromotionActivation,
    PromotionTally,
)

# Every model that carries an org.
ORG_SCOPED = [
    ApiClient, Promotion, LoyaltyProgram, LoyaltyPromotion, AuditEvent, Customer, EarnedPromotion, Issual,
    LoyaltyEarnedPromotion, Redemption, RedemptionReversal, RedemptionCounter, BulkJob, Zone, Concept, Store,
    Till, Evaluation, PromotionTally, RedemptionDay, CartLock, PromotionActivation, PromoCode, PromoCodeBatch,
]  # fmt: skip


def test_every_org_model_is_listed_here():
    from django.apps import apps

    with_org = {
        model
        for model in apps.get_models()
        if any(field.name == "org" for field in model._meta.get_fields()) and model._meta.app_label != "auth"
    }
    with_org.discard(apps.get_model("promotions", "User"))  # scoped in the admin, see test_admin_scoping
    assert with_org == set(ORG_SCOPED)


@pytest.mark.parametrize("model", ORG_SCOPED, ids=lambda m: m.__name__)
def test_for_org_never_returns_another_orgs_rows(model, org, other_org):
    # given: one row in each org
    mine = factories.make_in_org(model, org)
    theirs = factories.make_in_org(model, other_org)
    # when
    visible = set(model.objects.for_org(org).values_list("pk", flat=True))
    # then
    assert mine.pk in visible and theirs.pk not in visible


def test_read_of_another_orgs_promotion_is_404(api, other_org):
    theirs = factories.PromotionFactory(org=other_org)
    response = api.get(f"/api_gateway/v1/promotions/{theirs.pk}")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Passed promotion is not found"}]}


@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_write_to_another_orgs_promotion_is_404_and_changes_nothing(api, other_org, action):
    # given
    theirs = factories.PromotionFactory(org=other_org, active=(action == "deactivate"))
    # when
    response = api.put(f"/api_gateway/v1/promotions/{theirs.pk}/{action}")
    # then
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.active is (action == "deactivate")
    assert not AuditEvent.objects.filter(object_id=theirs.pk).exists()


def test_token_of_org_a_cannot_read_org_b(org, other_org):
    from rest_framework.test import APIClient

    client = factories.ApiClientFactory(org=org)
    token = (
        APIClient()
        .post(
            "/v3/oauth/token/generate", {"key": client.username, "secret": client.plain_secret}, format="json"
        )
        .json()["data"]["accessToken"]
    )
    mine, theirs = factories.PromotionFactory(org=org), factories.PromotionFactory(org=other_org)
    assert (
        APIClient().get(f"/api_gateway/v1/promotions/{mine.pk}", HTTP_X_CAP_API_OAUTH_TOKEN=token).status_code
        == 200
    )
    assert (
        APIClient()
        .get(f"/api_gateway/v1/promotions/{theirs.pk}", HTTP_X_CAP_API_OAUTH_TOKEN=token)
        .status_code
        == 404
    )


def test_read_access_reads_write_access_writes(api, read_api, org):
    promotion = factories.PromotionFactory(org=org)
    assert read_api.get(f"/api_gateway/v1/promotions/{promotion.pk}").status_code == 200
    refused = read_api.put(f"/api_gateway/v1/promotions/{promotion.pk}/deactivate")
    assert refused.status_code == 403
    promotion.refresh_from_db()
    assert promotion.active is True
    assert api.put(f"/api_gateway/v1/promotions/{promotion.pk}/deactivate").json() == {
        "data": True,
        "errors": [],
    }
    promotion.refresh_from_db()
    assert promotion.active is False
