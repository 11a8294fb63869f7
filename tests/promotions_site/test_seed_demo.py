"""seed_demo: the demo data of every app, written through their services."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from promotions.models import ApiClient, AuditEvent, Organization, Promotion, PromotionType, User
from redemptions.models import Redemption, RedemptionLine
from wallets.models import Customer, EarnedPromotion


@pytest.fixture(autouse=True)
def _debug(settings):
    """The demo is seeded in DEBUG, as `make demo` runs it; the refusal tests turn it off."""
    settings.DEBUG = True


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_seed_demo_loads_every_kind_of_data_once(db):
    # when
    output = run("seed_demo", "--customers", "60")
    run("seed_demo", "--customers", "60")
    # then
    org = Organization.objects.get(pk=100737)
    assert Customer.objects.for_org(org).count() == 60
    assert set(Promotion.objects.for_org(org).values_list("type", flat=True)) == set(PromotionType.values)
    assert EarnedPromotion.objects.for_org(org).count() == 40
    assert Redemption.objects.for_org(org).count() == 40
    assert User.objects.get(username="admin").org == org
    demo_till = ApiClient.objects.select_related("default_till__store").get(username="demo.till").default_till
    assert (demo_till.code, demo_till.store.external_id, demo_till.store.zone.parent.external_id) == (
        "mum.101.t1",
        101,
        75175598,
    )
    assert "curl -u demo.till:demo-secret" in output
    # every demo promotion's id and the loyalty programId are printed
    for promotion in Promotion.objects.for_org(org):
        assert f"  {promotion.pk}  {promotion.type:<8}  {promotion.name}" in output
    assert "programId 469  Demo Rewards Club" in output
    response = APIClient().get(
        f"/api_gateway/v1/promotions/{Promotion.objects.for_org(org).first().pk}",
        HTTP_AUTHORIZATION="Basic ZGVtby50aWxsOmRlbW8tc2VjcmV0",
    )
    assert response.status_code == 200
    # the customer id of the documented examples exists
    assert Customer.objects.filter(pk=564332013, org=org).exists()
    # new customers continue after the seeded ids
    assert Customer.objects.create(org=org).pk > 564332013 + 59


def test_seed_demo_at_size_streams_chunks_through_the_services_and_runs_once(db):
    # given: a few thousand customers written and issued to in chunks of 700
    args = (
        "seed_demo",
        "--customers",
        "3000",
        "--chunk-size",
        "700",
        "--earning-customers",
        "25",
        "--no-progress",
    )

    # when
    output = run(*args)
    org = Organization.objects.get(pk=100737)
    counts = {
        "customers": Customer.objects.for_org(org).count(),
        "issued": EarnedPromotion.objects.for_org(org).filter(kind="ISSUED").count(),
        "earned": EarnedPromotion.objects.for_org(org).filter(kind="EARNED").count(),
        "redemptions": Redemption.objects.for_org(org).count(),
        "audit events": AuditEvent.objects.for_org(org).count(),
    }
    again = run(*args)

    # then: every customer, ids contiguous from the documented one; a third hold the issued
    # promotion (one issueBulk call per chunk), 25 earned the earning one (one earn call each)
    assert counts["customers"] == 3000
    ids = Customer.objects.for_org(org).values_list("pk", flat=True)
    assert (min(ids), max(ids)) == (564332013, 564332013 + 2999)
    assert (
        Customer.objects.for_org(org).filter(mobile="919800002999", email="customer2999@example.com").exists()
    )
    issued = EarnedPromotion.objects.for_org(org).filter(kind="ISSUED")
    assert counts["issued"] == 1000
    assert set(issued.values_list("earned_from_id", "earned_from_type", "promotion__type").distinct()) == {
        ("demo-campaign-1", "BULK_ISSUE", "CUSTOMER")
    }
    assert issued.values("customer").distinct().count() == 1000
    assert max(issued.values_list("customer_id", flat=True)) == 564332013 + 999
    assert AuditEvent.objects.for_org(org).filter(action="promotion.issue_bulk").count() == 2  # 700 + 300
    assert counts["earned"] == 25
    assert AuditEvent.objects.for_org(org).filter(action="promotion.earn").count() == 25
    # the first 20 customers redeemed their issued and earned instance: 40 redemptions, each used once
    assert counts["redemptions"] == 40
    redeemed = EarnedPromotion.objects.for_org(org).filter(redemption_count__gt=0)
    assert redeemed.count() == 40 and set(redeemed.values_list("redemption_count", flat=True)) == {1}
    assert set(RedemptionLine.objects.values_list("earned_promotion_id", flat=True)) == set(
        redeemed.values_list("pk", flat=True)
    )
    assert "Seeded demo org 100737 with 3,000 customers" in output
    # the second run changes nothing
    assert "already exists; keeping its data" in again
    assert counts == {
        "customers": Customer.objects.for_org(org).count(),
        "issued": EarnedPromotion.objects.for_org(org).filter(kind="ISSUED").count(),
        "earned": EarnedPromotion.objects.for_org(org).filter(kind="EARNED").count(),
        "redemptions": Redemption.objects.for_org(org).count(),
        "audit events": AuditEvent.objects.for_org(org).count(),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers must be at least 1"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
        (["--customers", "30", "--earning-customers", "11"], "--earning-customers must be between 1 and 10"),
    ],
)
def test_seed_demo_bad_arguments_write_nothing(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("seed_demo", *args)
    assert not Organization.objects.exists()


def test_seed_demo_refuses_with_debug_off_and_writes_nothing(db, settings):
    # given
    settings.DEBUG = False
    # when / then
    with pytest.raises(CommandError, match=r"runs only with DEBUG=1 .* --force"):
        run("seed_demo", "--customers", "30")
    assert not Organization.objects.exists()
    assert not User.objects.filter(username="admin").exists()


def test_seed_demo_with_debug_off_seeds_when_forced_and_says_so(db, settings):
    # given
    settings.DEBUG = False
    errors = io.StringIO()
    # when
    call_command(
        "seed_demo", "--customers", "30", "--force", "--no-progress", stdout=io.StringIO(), stderr=errors
    )
    # then
    assert User.objects.get(username="admin").check_password("admin")
    assert "admin/admin login and API secrets are live" in errors.getvalue()
