"""Anonymous sales: a till sends `customerId: -1` when it sells to nobody known. POS and CODE
promotions need no customer; wallet promotions do."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from promotions.models import AuditEvent, PromoCode
from redemptions.invariants import violations
from redemptions.models import Redemption, RedemptionCounter
from tests.admin_support import csv_rows, staff_login
from tests.concurrency import run_concurrently
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import URL, body, codes, line, redeem

ANONYMOUS = CustomerFactory.build(pk=-1)


def anonymous_sale(txn="TXN-1", **kwargs):
    return body(ANONYMOUS, txn, **kwargs)


def assert_invariants_hold(org):
    # The invariant checks are PostgreSQL SQL; CI runs these tests on PostgreSQL.
    if connection.vendor == "postgresql":
        assert violations([org.pk]) == []


@pytest.fixture
def pos(org):
    return PromotionFactory(org=org, type="POS")


def test_an_anonymous_sale_of_a_pos_promotion_is_recorded_without_a_customer(api, pos):
    sale = anonymous_sale(redemptions=[line(pos)])
    # when
    response = redeem(api, sale)
    # then
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["customerId"] == -1 and data["customerIdentifierType"] is None
    redemption = Redemption.objects.get()
    assert redemption.customer_id is None
    assert AuditEvent.objects.get(action="redemption.record").data["customerId"] == -1
    # a replay answers the same
    assert redeem(api, sale).content == response.content


def test_customer_id_minus_one_wins_over_an_identifier(api, org, pos):
    CustomerFactory(org=org, mobile="919800000001")
    data = anonymous_sale(
        redemptions=[line(pos)], customerIdentifierType="mobile", customerIdentifierValue="919800000001"
    )
    response = redeem(api, data)
    assert response.status_code == 200 and response.json()["data"]["customerId"] == -1
    assert Redemption.objects.get().customer_identifier_value == ""


def test_a_code_promotion_needs_no_customer_either(api, org):
    code = PromotionFactory(org=org, type="CODE")
    PromoCode.objects.create(org=org, promotion=code, code="ANYONE1")
    assert redeem(api, anonymous_sale(line_items=[line(code, promoCode="anyone1")])).status_code == 200


def test_a_code_linked_to_a_customer_is_refused_1005_in_an_anonymous_sale(api, org):
    code = PromotionFactory(org=org, type="CODE")
    PromoCode.objects.create(
        org=org, promotion=code, code="MINE1", customer=CustomerFactory(org=org), linked_on=timezone.now()
    )
    response = redeem(api, anonymous_sale(line_items=[line(code, promoCode="MINE1")]))
    assert response.status_code == 400 and codes(response) == [1005]
    assert "anonymous sale" in response.json()["errors"][0]["message"]
    assert not Redemption.objects.exists()


@pytest.mark.parametrize("promotion_type", ["CUSTOMER", "EARNING", "REWARD"])
def test_a_wallet_promotion_is_refused_715_and_nothing_is_written(api, org, pos, promotion_type):
    wallet = PromotionFactory(org=org, type=promotion_type)
    response = redeem(api, anonymous_sale(redemptions=[line(pos)], line_items=[line(wallet)]))
    assert response.status_code == 400 and codes(response) == [715]
    assert "anonymous sale" in response.json()["errors"][0]["message"]
    assert not Redemption.objects.exists()


def test_promotion_and_cart_limits_apply_customer_limits_do_not(api, org, pos):
    # given: a Customer limit of 1, a Promotion limit of 2 and a Cart limit of 1 redemption
    PromotionRestrictionFactory(promotion=pos, level="Customer", kpi="REDEMPTION", limit=1)
    PromotionRestrictionFactory(promotion=pos, level="Promotion", kpi="REDEMPTION", limit=2)
    PromotionRestrictionFactory(promotion=pos, level="Cart", kpi="REDEMPTION", limit=1)
    # when
    cart_over = redeem(api, anonymous_sale("TXN-0", redemptions=[line(pos, redemptionCount=2)]))
    first = redeem(api, anonymous_sale("TXN-1", redemptions=[line(pos)]))
    second = redeem(api, anonymous_sale("TXN-2", redemptions=[line(pos)]))
    third = redeem(api, anonymous_sale("TXN-3", redemptions=[line(pos)]))
    # then
    assert cart_over.status_code == 409 and "Cart REDEMPTION" in cart_over.json()["errors"][0]["message"]
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 409 and "Promotion REDEMPTION" in third.json()["errors"][0]["message"]
    assert [(c.restriction.level, c.scope, c.used) for c in RedemptionCounter.objects.all()] == [
        ("Promotion", "", 2)
    ]
    assert_invariants_hold(org)


def test_reversal_gives_the_promotion_limit_back(api, org, pos):
    PromotionRestrictionFactory(promotion=pos, level="Promotion", kpi="REDEMPTION", limit=1)
    redeem(api, anonymous_sale("TXN-1", redemptions=[line(pos)]))
    # when
    reversal = api.post(f"{URL}/reverse", {"transactionIdentifier": "TXN-1"}, format="json")
    # then
    assert reversal.status_code == 200, reversal.json()
    assert reversal.json()["data"]["redemption"]["customerId"] == -1
    assert RedemptionCounter.objects.get().used == 0
    assert redeem(api, anonymous_sale("TXN-2", redemptions=[line(pos)])).status_code == 200
    assert_invariants_hold(org)


def test_the_list_answers_minus_one_and_filters_on_it(api, org, pos):
    customer = CustomerFactory(org=org)
    redeem(api, anonymous_sale("TXN-ANON", redemptions=[line(pos)]))
    redeem(api, body(customer, "TXN-KNOWN", redemptions=[line(pos)]))
    # when
    everything = api.get(URL).json()["data"]
    anonymous = api.get(URL, {"customerId": -1}).json()["data"]
    known = api.get(URL, {"customerId": customer.pk}).json()["data"]
    # then
    assert {(r["transactionIdentifier"], r["customerId"]) for r in everything} == {
        ("TXN-ANON", -1),
        ("TXN-KNOWN", customer.pk),
    }
    assert [r["transactionIdentifier"] for r in anonymous] == ["TXN-ANON"]
    assert [r["transactionIdentifier"] for r in known] == ["TXN-KNOWN"]


def test_the_exports_and_the_admin_show_an_anonymous_sale(api, client, org, pos):
    redeem(api, anonymous_sale("TXN-ANON", redemptions=[line(pos)]))
    # the export command
    out = io.StringIO()
    today = timezone.localdate(timezone=org.tz)
    call_command(
        "export_redemptions",
        "--org",
        str(org.pk),
        "--from",
        str(today - dt.timedelta(days=1)),
        "--to",
        str(today + dt.timedelta(days=1)),
        "--no-progress",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert ",TXN-ANON," in out.getvalue() and ",-1," in out.getvalue()
    # the admin's audit: the list, the change page and the CSV export
    staff_login(client, org)
    changelist = client.get("/admin/redemptions/redemption/")
    assert changelist.status_code == 200 and "anonymous sale" in changelist.content.decode()
    redemption = Redemption.objects.get()
    assert client.get(f"/admin/redemptions/redemption/{redemption.pk}/change/").status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):  # the export job starts after the commit
        started = client.post("/admin/redemptions/redemption/export/")
    job_id = int(started["Location"].rstrip("/").split("/")[-2])
    [row] = csv_rows(client.get(reverse("admin:wallets_bulkjob_output", args=[job_id])))
    assert row["customerId"] == "-1"


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_anonymous_sales_racing_for_a_promotion_limit_give_exactly_the_limit():
    # given: a POS promotion whose global limit is 5 redemptions
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type="POS")
    PromotionRestrictionFactory(promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=5)

    # when: 30 anonymous sales at once
    def call(api, index):
        return redeem(api, anonymous_sale(f"T{index}", redemptions=[line(promotion)])).status_code

    results = run_concurrently(30, call, org=org, threads=15)
    # then
    assert Counter(results) == {200: 5, 409: 25}
    assert Redemption.objects.filter(org=org, customer__isnull=True).count() == 5
    assert RedemptionCounter.objects.get(restriction__promotion=promotion).used == 5
    assert violations([org.pk]) == []


def test_a_known_customers_wallet_promotion_still_redeems(api, org):
    # the anonymous rules leave a named customer's sale alone
    customer = CustomerFactory(org=org)
    wallet = PromotionFactory(org=org, type="CUSTOMER")
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=wallet)
    assert redeem(api, body(customer, line_items=[line(wallet, instance)])).status_code == 200
