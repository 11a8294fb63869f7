"""The admin: every model registered, every page scoped to the staff user's org."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions.models import (
    ApiClient,
    AuditEvent,
    Concept,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    PromoCode,
    PromoCodeBatch,
    Promotion,
    Store,
    Till,
    User,
    Zone,
)  # fmt: skip
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal
from tests import factories
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion

MODELS = [
    Organization, User, ApiClient, Promotion, LoyaltyProgram, LoyaltyPromotion, AuditEvent, Customer,
    EarnedPromotion, Issual, LoyaltyEarnedPromotion, Redemption, RedemptionLine, RedemptionReversal, RedemptionCounter, BulkJob, BulkJobItem,
    Zone, Concept, Store, Till, PromoCode, PromoCodeBatch,
]  # fmt: skip


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.all())
    client.force_login(user)
    return client


def test_every_model_is_registered():
    registered = {model for model in admin.site._registry if model._meta.app_label != "auth"}
    assert registered == set(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_staff_sees_only_their_org(staff_client, org, other_org, model):
    # given
    mine, theirs = factories.make_in_org(model, org), factories.make_in_org(model, other_org)
    # when
    listing = staff_client.get(changelist_url(model))
    # then: read
    assert listing.status_code == 200
    html = listing.content.decode()
    assert change_url(mine) in html and change_url(theirs) not in html
    assert staff_client.get(change_url(mine)).status_code == 200
    assert staff_client.get(change_url(theirs)).status_code in (302, 404)
    # then: write
    staff_client.post(change_url(theirs), {})
    delete_url = change_url(theirs).replace("/change/", "/delete/")
    staff_client.post(delete_url, {"post": "yes"})
    assert model.objects.filter(pk=theirs.pk).exists()


def test_superuser_without_org_sees_every_org(client, org, other_org):
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw-123-456"))
    a, b = factories.PromotionFactory(org=org), factories.PromotionFactory(org=other_org)
    html = client.get(changelist_url(Promotion)).content.decode()
    assert change_url(a) in html and change_url(b) in html


def test_staff_creates_api_client_in_their_org_and_sees_secret_once(staff_client, org):
    response = staff_client.post(
        reverse("admin:promotions_apiclient_add"),
        {"username": "till.admin", "access": "WRITE", "is_active": "on", "token_ttl_seconds": 300},
        follow=True,
    )
    client = ApiClient.objects.get(username="till.admin")
    assert client.org == org
    assert "Secret for till.admin:" in response.content.decode()
    assert AuditEvent.objects.filter(action="api_client.create", object_id=str(client.pk)).exists()


def test_foreign_key_choices_are_scoped(staff_client, org, other_org):
    mine, theirs = factories.LoyaltyProgramFactory(org=org), factories.LoyaltyProgramFactory(org=other_org)
    html = staff_client.get(reverse("admin:promotions_loyaltypromotion_add")).content.decode()
    assert f'value="{mine.pk}"' in html and f'value="{theirs.pk}"' not in html


def test_facts_are_read_only(staff_client, org):
    redemption = factories.RedemptionFactory(org=org)
    assert staff_client.get(reverse("admin:redemptions_redemption_add")).status_code == 403
    page = staff_client.get(change_url(redemption)).content.decode()
    assert 'name="_save"' not in page
