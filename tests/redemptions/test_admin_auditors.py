"""The Auditors group: its members view and export every audit screen of their org, and change nothing."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TestCase
from django.urls import reverse

from promotions.models import Promotion
from redemptions.models import Redemption, RedemptionReversal
from tests.admin_support import admin_url, csv_rows, staff_login
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
)
from wallets.models import BulkJob, Customer, EarnedPromotion

auditors_migration = importlib.import_module("redemptions.migrations.0006_auditors_group")


def group_permissions() -> set[str]:
    group = Group.objects.get(name="Auditors")
    return {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }


def test_the_group_holds_view_permissions_only(db):
    permissions = group_permissions()
    assert {"redemptions.view_redemption", "wallets.view_customer", "promotions.view_promotion",
            "promotions.view_auditevent", "wallets.view_bulkjob"} <= permissions  # fmt: skip
    assert all(codename.split(".")[1].startswith("view_") for codename in permissions)
    assert not {"promotions.view_user", "promotions.view_apiclient"} & permissions


def test_the_migration_can_run_again(db):
    # given the group as the migration made it, and a permission an admin removed since
    before = group_permissions()
    group = Group.objects.get(name="Auditors")
    group.permissions.remove(group.permissions.get(codename="view_redemption"))
    # when it runs again (on the models as they were at that migration)
    state = MigrationExecutor(connection).loader.project_state(("redemptions", "0006_auditors_group"))
    auditors_migration.auditors_group_create(state.apps, None)
    # then one group, with what it had
    assert Group.objects.filter(name="Auditors").count() == 1
    assert group_permissions() == before


def test_the_group_outlives_a_flush_of_the_test_database(transactional_db):
    # given: the group as the migration made it
    before = group_permissions()
    # when: every table is emptied, as pytest-django does after each transactional test (and as
    # `--reuse-db` then hands the next run)
    call_command("flush", interactive=False, verbosity=0)
    # then: the tests that need the group still find it, whole
    assert group_permissions() == before


@pytest.fixture
def auditor(client, org):
    staff_login(client, org, group="Auditors")
    return client


@pytest.fixture
def recorded(org, other_org):
    redemption = RedemptionFactory(org=org, transaction_identifier="TXN-AUDIT")
    RedemptionLineFactory(redemption=redemption)
    RedemptionLineFactory(redemption=RedemptionFactory(org=other_org, transaction_identifier="TXN-OTHER"))
    return redemption


def test_an_auditor_views_every_audit_screen(auditor, org, recorded):
    customer = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer)
    for url in (
        admin_url(Redemption),
        admin_url(Redemption, "change", recorded.pk),
        admin_url(Customer, "change", customer.pk),
        admin_url(EarnedPromotion),
        admin_url(BulkJob),
        admin_url(Promotion),
        "/admin/dashboard/",
    ):
        assert auditor.get(url).status_code == 200, url
    assert 'id="customer-wallet"' in auditor.get(admin_url(Customer, "change", customer.pk)).content.decode()


def test_an_auditor_exports_their_orgs_redemptions(auditor, recorded):
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = auditor.post("/admin/redemptions/redemption/export/")
    assert started.status_code == 302
    job = BulkJob.objects.get(kind=BulkJob.Kind.EXPORT)
    response = auditor.get(started["Location"])
    assert response.status_code == 200 and 'id="bulk-job-output"' in response.content.decode()
    response = auditor.get(reverse("admin:wallets_bulkjob_output", args=[job.pk]))
    assert response.status_code == 200
    assert {row["transactionIdentifier"] for row in csv_rows(response)} == {"TXN-AUDIT"}


def test_an_auditor_cannot_reverse(auditor, recorded):
    # the action is not offered
    response = auditor.get(admin_url(Redemption))
    action_form = response.context["action_form"]
    assert action_form is None or "reverse_selected" not in dict(action_form.fields["action"].choices)
    # and posting it shows no confirmation page, and the confirmation reverses nothing
    for extra in ({"index": 0}, {"post": "yes", "reason": "Sneaky"}):
        data = {"action": "reverse_selected", ACTION_CHECKBOX_NAME: [recorded.pk], **extra}
        response = auditor.post(admin_url(Redemption), data)
        assert response.status_code in (200, 302)
        assert "reverse_selected_confirmation" not in " ".join(t.name or "" for t in response.templates)
    assert not RedemptionReversal.objects.exists()


def test_an_auditor_changes_nothing(auditor, org):
    # given
    promotion = PromotionFactory(org=org, name="Before")
    customer = CustomerFactory(org=org, first_name="Before")
    # then no add page, no saving, no deleting
    assert auditor.get(admin_url(Promotion, "add")).status_code == 403
    assert auditor.post(admin_url(Promotion, "change", promotion.pk), {"name": "After"}).status_code == 403
    assert (
        auditor.post(admin_url(Customer, "change", customer.pk), {"first_name": "After"}).status_code == 403
    )
    assert auditor.post(admin_url(Customer, "delete", customer.pk), {"post": "yes"}).status_code == 403
    promotion.refresh_from_db()
    customer.refresh_from_db()
    assert (promotion.name, customer.first_name) == ("Before", "Before")
    # and the change page is read-only
    assert 'name="_save"' not in auditor.get(admin_url(Promotion, "change", promotion.pk)).content.decode()
