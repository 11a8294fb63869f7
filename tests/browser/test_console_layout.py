"""The marketer's console in a real browser (Debian's Chromium, driven by Playwright) at 1280 px: no
marketer page is wider than the window (no horizontal scroll) or has a table wider than its box, none has
an accessibility violation axe-core rates serious or critical (tests/browser/checks.py), and a screenshot
of each is saved (docs/img/ with SCREENSHOTS=docs, where the marketer guide shows them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions.audit import Actor
from promotions.models import PromoCodeBatch, PromotionType
from redemptions.services import LineInput, RedemptionInput, redemption_record
from tests.browser.checks import WIDTH, login, page_problems
from tests.factories import (
    CustomerFactory,
    OrganizationFactory,
    PromoCodeBatchFactory,
    PromoCodeFactory,
    PromotionFactory,
    UserFactory,
)
from wallets.services import bulk_job_create

pytestmark = pytest.mark.django_db(transaction=True)

# Where a page's screenshot starts, when its top is not what the guide shows.
ANCHORS = {"console-builder-add": "#promotion-builder"}


def _seed():
    org = OrganizationFactory(name="Demo Retail", timezone="Asia/Kolkata")
    customers = [
        CustomerFactory(org=org, first_name="Asha", last_name="Rao"),
        CustomerFactory(org=org, first_name="Ravi", last_name="Krishnamurthy-Venkataraman"),
    ]
    issue = PromotionFactory(
        org=org, type=PromotionType.CUSTOMER, name="Birthday treat: 20% off the whole cart for a week"
    )
    pos = PromotionFactory(org=org, type=PromotionType.POS, name="10% off carts over 1000")
    PromotionFactory(org=org, type=PromotionType.EARNING, name="Coffee lover: 5th cup free")
    PromotionFactory(org=org, type=PromotionType.REWARD, name="Reward: 300 off")
    code = PromotionFactory(org=org, type=PromotionType.CODE, name="Welcome code: 100 off over 1500")
    batch = PromoCodeBatchFactory(
        org=org, promotion=code, status=PromoCodeBatch.Status.DONE, done=10, finished_at=timezone.now()
    )
    for number in range(3):
        PromoCodeFactory(org=org, promotion=code, code=f"WELCOME-{number:04d}", batch=batch)
    for number in range(3):
        redemption_record(
            org=org, fingerprint=f"layout-{number}", actor=Actor.system("test"), api_client=None,
            data=RedemptionInput(
                customer_lookup=("id", str(customers[number % 2].pk)),
                transaction_identifier=f"POS-MUMBAI-0101-TILL-01-2026-{number:06d}-LONG-IDENTIFIER",
                transaction_number=f"BILL-{number}", transaction_date=timezone.now() - dt.timedelta(hours=number),
                amount=Decimal("4637.000000"),
                lines=[LineInput(level="CART", position=0, promotion_id=pos.pk, redemption_count=1,
                                 discount=Decimal("463.700000"), discount_applied_on_quantity=Decimal(1),
                                 promotion_applied_on_quantity=Decimal(1))],
            ),
        )  # fmt: skip
    marketer = UserFactory(org=org, username="marketer")
    marketer.set_password("a-strong-pass-123")
    marketer.save()
    marketer.user_permissions.set(Permission.objects.all())
    bulk_job_create(
        org=org, kind="ISSUE", promotion=issue, params={"contextId": "spring-wave-1"},
        identifier_type="id", values=[str(c.pk) for c in customers], user=marketer,
    )  # fmt: skip
    return org, issue, pos, code, batch


def test_no_marketer_page_overflows_or_fails_axe_at_1280_px(server, page):
    org, issue, pos, code, batch = _seed()
    from redemptions.models import Redemption

    redemption = Redemption.objects.filter(org=org).order_by("pk").first()
    pages = {
        "console-first-page": reverse("admin:index"),
        "console-promotions": reverse("admin:promotions_promotion_changelist"),
        "console-promotion": reverse("admin:promotions_promotion_change", args=[issue.pk]),
        "console-redemptions": reverse("admin:redemptions_redemption_changelist"),
        "console-redemption": reverse("admin:redemptions_redemption_change", args=[redemption.pk]),
        "console-customers": reverse("admin:wallets_customer_changelist"),
        "console-jobs": reverse("admin:wallets_bulkjob_changelist"),
        "console-dashboard": reverse("admin-dashboard"),
        "console-calendar": reverse("admin:promotions_promotion_calendar"),
        "console-performance": reverse("admin-promotion-performance", args=[pos.pk]),
        "console-audit-events": reverse("admin:promotions_auditevent_changelist"),
        "console-builder-add": reverse("admin:promotions_promotion_add"),
        "console-try-cart": reverse("admin-promotion-try", args=[pos.pk]),
        "console-issue": reverse("admin:wallets_bulkjob_issue", args=[issue.pk]),
        "console-code-batches": reverse("admin:promotions_promocodebatch_changelist"),
        "console-code-batch": reverse("admin:promotions_promocodebatch_change", args=[batch.pk]),
        "console-codes": reverse("admin:promotions_promocode_changelist"),
        "console-codes-generate": reverse("admin:promotions_promocodebatch_generate", args=[code.pk]),
        "console-codes-upload": reverse("admin:promotions_promocodebatch_upload", args=[code.pk]),
    }
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, server.url, "marketer", "a-strong-pass-123")

    # each page: nothing wider than the window or its box, no serious axe violation; its screenshot saved
    problems = {}
    for name, path in pages.items():
        page.goto(server.url + path)
        page.wait_for_selector("#content")
        found = page_problems(page, name, ANCHORS.get(name))
        if found:
            problems[name] = found

    assert problems == {}
    # the first page leads with the tasks, and the times say their zone
    page.goto(server.url + reverse("admin:index"))
    assert page.locator("#marketer-tasks .task-card").first.inner_text().startswith("Create promotion")
    assert "Times in Asia/Kolkata" in page.inner_text("#console-zone")
    page.goto(server.url + pages["console-redemptions"])
    assert "IST" in page.inner_text("#result_list") and "4,637.00" in page.inner_text("#result_list")
    assert page.locator("#result_list th.column-reversed_flag").is_visible()
