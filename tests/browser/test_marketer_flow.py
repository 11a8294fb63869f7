"""End to end in a real browser (Debian's Chromium, driven by Playwright): a marketer logs in, issues a
promotion to an uploaded CSV of 5,000 customers, watches the background job finish, and exports the
redemption audit (another background job). A screenshot of each milestone is saved under test-output/."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions.audit import Actor
from promotions.models import PromotionType
from redemptions.services import LineInput, RedemptionInput, redemption_record
from tests.browser.chromium import OUTPUT
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory, UserFactory
from wallets.models import BulkJob, Customer, EarnedPromotion

CUSTOMERS = 5000

pytestmark = pytest.mark.django_db(transaction=True)


def test_marketer_issues_to_an_uploaded_csv_and_exports_the_audit(server, page, tmp_path):
    # given an org with 5,000 customers, a CUSTOMER promotion, one recorded redemption, and a marketer
    org = OrganizationFactory()
    Customer.objects.bulk_create(
        Customer(org=org, mobile=f"9199{i:08d}", first_name="Customer", last_name=str(i))
        for i in range(CUSTOMERS)
    )
    customer_ids = list(Customer.objects.filter(org=org).order_by("id").values_list("id", flat=True))
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, name="Spring voucher")
    pos = PromotionFactory(org=org, type=PromotionType.POS, name="Till discount")
    redemption_record(
        org=org, fingerprint="e2e", actor=Actor.system("test"), api_client=None,
        data=RedemptionInput(
            customer_lookup=("id", str(CustomerFactory(org=org).pk)), transaction_identifier="E2E-TXN-1", transaction_number="BILL-1",
            transaction_date=timezone.now() - dt.timedelta(hours=1), amount=Decimal(900),
            lines=[LineInput(level="CART", position=0, promotion_id=pos.pk, redemption_count=1, discount=Decimal(90),
                             discount_applied_on_quantity=Decimal(1), promotion_applied_on_quantity=Decimal(1))],
        ),
    )  # fmt: skip
    marketer = UserFactory(org=org, username="marketer", is_staff=True)
    marketer.set_password("a-strong-pass-123")
    marketer.save()
    marketer.user_permissions.set(Permission.objects.all())
    upload = tmp_path / "customers.csv"
    upload.write_text("customerId\n" + "\n".join(map(str, customer_ids)) + "\n")
    OUTPUT.mkdir(exist_ok=True)

    # when the marketer logs in
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", "marketer")
    page.fill("#id_password", "a-strong-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    # and issues the promotion to the uploaded file, from the promotion's page
    page.goto(server.url + reverse("admin:promotions_promotion_change", args=[promotion.pk]))
    page.click("text=Issue to customers")
    page.set_input_files("input[type=file]", str(upload))
    page.click("input[name=_preview]")
    confirm = page.locator("input[type=submit][value^='Yes, issue to']")
    confirm.wait_for()
    assert "5,000" in confirm.get_attribute("value") or "5000" in confirm.get_attribute("value")
    page.screenshot(path=str(OUTPUT / "e2e-1-preview.png"), full_page=True)
    confirm.click()

    # then the job page follows the background job to the end
    page.wait_for_selector("#bulk-job-progress")
    assert "/admin/wallets/bulkjob/" in page.url
    page.wait_for_selector("#bulk-job-progress[data-status=DONE]", timeout=120_000)
    page.screenshot(path=str(OUTPUT / "e2e-2-job-done.png"), full_page=True)
    for thread in threading.enumerate():  # the job's thread closes its connection as it ends
        if thread.name.startswith("bulk-job-"):
            thread.join(timeout=30)
    job = BulkJob.objects.get(org=org)
    assert (job.status, job.total, job.done, job.failed) == ("DONE", CUSTOMERS, CUSTOMERS, 0)
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == CUSTOMERS
    assert "100%" in page.inner_text("#bulk-job-progress") or "5,000 of 5,000" in page.inner_text(
        "#bulk-job-progress"
    )

    # and the redemption audit's export (a background job: confirm, then its page offers the file)
    # has the recorded redemption
    page.goto(server.url + reverse("admin:redemptions_redemption_changelist"))
    page.click("#export-csv")
    page.click("#start-export")
    page.wait_for_selector("#bulk-job-output a", timeout=60_000)
    with page.expect_download() as download_info:
        page.click("#bulk-job-output a")
    content = Path(download_info.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert [row["transactionIdentifier"] for row in rows] == ["E2E-TXN-1"]
    assert rows[0]["promotionId"] == pos.pk and rows[0]["discount"] == "90.000000"
    page.screenshot(path=str(OUTPUT / "e2e-3-audit.png"), full_page=True)
