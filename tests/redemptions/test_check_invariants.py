"""manage.py check_invariants: the invariants of redemptions.invariants over stored data, read-only."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import InternalError, connection

from redemptions import invariants
from redemptions.invariants import INVARIANTS
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionCounterFactory,
)
from tests.redemptions.support import URL, body, line

pytestmark = pytest.mark.postgres_only


def check(*args: str) -> str:
    out = io.StringIO()
    call_command("check_invariants", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_data_the_services_wrote_passes_with_a_one_line_summary(api, org, other_org):
    # given: a redemption and a reversal through the API
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="EARNING")
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, kind="EARNED")
    assert (
        api.post(URL, body(customer, "TXN-1", line_items=[line(promotion)]), format="json").status_code == 200
    )
    assert api.post(f"{URL}/reverse", {"transactionIdentifier": "TXN-1"}, format="json").status_code == 200
    # when
    every_org = check()
    some_orgs = check("--org", str(org.pk), "--org", str(other_org.pk))
    # then
    assert every_org.count("\n") == 1
    assert every_org.startswith(f"All {len(INVARIANTS)} invariants hold for every org (")
    assert some_orgs.startswith(f"All {len(INVARIANTS)} invariants hold for org {org.pk}, {other_org.pk} (")


def test_corrupted_data_is_listed_and_exits_1(org):
    # given: a counter holding a use no redemption recorded, and an instance in another org's wallet
    RedemptionCounterFactory(restriction__promotion__org=org, used=Decimal(1))
    EarnedPromotionFactory(org=org, customer=CustomerFactory())
    out = io.StringIO()
    # when
    with pytest.raises(CommandError) as raised:
        call_command("check_invariants", stdout=out)
    # then
    assert raised.value.returncode == 1
    assert str(raised.value).startswith(f"2 of {len(INVARIANTS)} invariants violated for every org")
    report = out.getvalue().splitlines()
    failed = [row.removeprefix("FAIL ") for row in report if row.startswith("FAIL ")]
    assert failed == [
        "counter equals the non-reversed redemptions it counts, within its limit",
        "nothing crosses orgs",
    ]
    assert sum(row.startswith("ok   ") for row in report) == len(INVARIANTS) - 2
    assert any("wallets.EarnedPromotion: org_id vs customer__org_id differ in row" in row for row in report)


def test_org_restricts_the_check_to_those_orgs(org, other_org):
    # given: a corrupted counter in the other org only
    RedemptionCounterFactory(restriction__promotion__org=other_org, used=Decimal(1))
    # then
    assert check("--org", str(org.pk)).startswith("All ")
    with pytest.raises(CommandError, match=f"invariants violated for org {other_org.pk}"):
        check("--org", str(other_org.pk))


def test_an_unknown_org_is_a_command_error(org):
    with pytest.raises(CommandError, match="Organization 999999 does not exist"):
        check("--org", "999999")


@pytest.mark.django_db(transaction=True)
def test_the_checks_run_in_a_read_only_transaction(org, monkeypatch):
    # given: a check that tries to write
    def writing(org_ids):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE promotions_organization SET name = 'changed'")
        return []

    monkeypatch.setattr("redemptions.management.commands.check_invariants.violations", writing)
    # then
    with pytest.raises(InternalError, match="read-only transaction"):
        check()
    org.refresh_from_db()
    assert org.name != "changed"
    assert invariants.violations() == []


@pytest.mark.parametrize(("seconds", "setting"), [("90", "90s"), ("0", "0"), ("0.5", "500ms")])
def test_the_statement_timeout_can_be_raised_for_a_large_database(org, monkeypatch, seconds, setting):
    # given: a check that reads the timeout it runs under
    seen = []

    def reading(org_ids):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen.append(cursor.fetchone()[0])
        return []

    monkeypatch.setattr("redemptions.management.commands.check_invariants.violations", reading)
    # when
    check("--statement-timeout", seconds)
    # then
    assert seen == [setting]


def test_a_negative_statement_timeout_is_a_command_error(org):
    with pytest.raises(CommandError, match="--statement-timeout must be 0"):
        check("--statement-timeout", "-1")
