"""The redemption audit in the admin: list, filters, search, CSV export and the reverse action."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.storage import default_storage
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from promotions.models import AuditEvent
from redemptions.admin import REVERSE_MAX
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal
from redemptions.schema import REDEMPTION_RECORD_EXAMPLE
from tests.admin_support import admin_url, csv_header, csv_rows, staff_login
from tests.csv_support import FORMULAS, REDEMPTION_TEXT_COLUMNS, as_text
from tests.factories import (
    CustomerFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)
from tests.redemptions.support import URL as LIST_API_URL
from tests.redemptions.support import body, line, redeem
from wallets.models import BulkJob

CHANGELIST = "/admin/redemptions/redemption/"
EXPORT = "/admin/redemptions/redemption/export/"


def listed(client, params=None) -> set[str]:
    response = client.get(CHANGELIST, params or {})
    assert response.status_code == 200, response.status_code
    return {redemption.transaction_identifier for redemption in response.context["cl"].result_list}


def exported(client, params=None) -> list[dict]:
    """Export as a marketer does: the confirmation, then the job it starts (run at once in the tests),
    then the file its page offers."""
    query = urlencode(params or {})
    assert client.get(f"{EXPORT}?{query}").status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):  # the job starts once the request commits
        started = client.post(f"{EXPORT}?{query}")
    assert started.status_code == 302, started.status_code
    job = BulkJob.objects.get(pk=int(started["Location"].rstrip("/").split("/")[-2]))
    assert job.kind == BulkJob.Kind.EXPORT and job.status == BulkJob.Status.DONE, job.error
    response = client.get(reverse("admin:wallets_bulkjob_output", args=[job.pk]))
    assert response.status_code == 200
    rows = csv_rows(response)
    default_storage.delete(job.output_file.name)
    return rows


@pytest.fixture
def audit(org, other_org):
    """Three redemptions of `org` (one reversed, one 10 days old) and one of another org."""
    now = timezone.now()
    diwali = PromotionFactory(org=org, name="Diwali 10%")
    flat = PromotionFactory(org=org, name="Flat 500")
    asha = CustomerFactory(org=org, mobile="919800000011", email="asha@example.com", external_id="EXT-ASHA")
    ravi = CustomerFactory(org=org, mobile="919800000022", email="ravi@example.com", external_id="EXT-RAVI")
    a = RedemptionFactory(org=org, customer=asha, transaction_identifier="TXN-A", transaction_number="BILL-A",
                          transaction_date=now - dt.timedelta(hours=1), amount=Decimal("1000"))  # fmt: skip
    RedemptionLineFactory(redemption=a, promotion=diwali, discount=Decimal("100"), sku="SKU-1")
    RedemptionLineFactory(redemption=a, promotion=flat, discount=Decimal("50"), level="CART")
    b = RedemptionFactory(org=org, customer=ravi, transaction_identifier="TXN-B", transaction_number="BILL-B",
                          transaction_date=now - dt.timedelta(hours=2))  # fmt: skip
    RedemptionLineFactory(redemption=b, promotion=flat, discount=Decimal("500"))
    RedemptionReversalFactory(redemption=b, reason="Returned")
    c = RedemptionFactory(org=org, customer=asha, transaction_identifier="TXN-C", transaction_number="BILL-C",
                          transaction_date=now - dt.timedelta(days=10))  # fmt: skip
    RedemptionLineFactory(redemption=c, promotion=diwali, discount=Decimal("30"))
    # another org: same mobile, a promotion of the same name, its own redemption
    stranger = CustomerFactory(org=other_org, mobile="919800000011", email="asha@example.com")
    theirs = RedemptionFactory(org=other_org, customer=stranger, transaction_identifier="TXN-THEIRS",
                               transaction_number="BILL-A")  # fmt: skip
    their_promotion = PromotionFactory(org=other_org, name="Their promotion")
    RedemptionLineFactory(redemption=theirs, promotion=their_promotion)
    return {"diwali": diwali, "flat": flat, "asha": asha, "ravi": ravi, "a": a, "b": b, "c": c,
            "theirs": theirs, "their_promotion": their_promotion}  # fmt: skip


@pytest.fixture
def marketer(client, org):
    staff_login(client, org)
    return client


# --- the list ---------------------------------------------------------------------------------------


def test_the_list_shows_the_orgs_redemptions_with_their_facts(marketer, audit):
    # when
    response = marketer.get(CHANGELIST)
    # then
    html = response.content.decode()
    assert listed(marketer) == {"TXN-A", "TXN-B", "TXN-C"}
    assert "TXN-THEIRS" not in html
    for heading in ("Transaction", "Number", "Customer", "Amount", "Total discount",
                    "Promotions", "Date", "Reversed"):  # fmt: skip
        assert heading in html
    assert "1,000.00" in html and "150.00" in html  # TXN-A: its amount and both lines' discount
    assert "Flat 500, Diwali 10%" in html  # its lines in recorded order (cart level first), each name once
    assert admin_url(audit["asha"], "change", audit["asha"].pk) in html
    assert 'id="export-csv"' in html


def test_the_list_runs_a_fixed_number_of_queries(marketer, audit, org, django_assert_max_num_queries):
    # given many more redemptions, each with lines
    for _ in range(20):
        RedemptionLineFactory(redemption=RedemptionFactory(org=org, customer=audit["asha"]))
    # then a page costs the same few queries (no query per row)
    with django_assert_max_num_queries(12):
        assert marketer.get(CHANGELIST).status_code == 200


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"promotion": "diwali"}, {"TXN-A", "TXN-C"}),
        ({"promotion": "flat"}, {"TXN-A", "TXN-B"}),
        ({"status": "reversed"}, {"TXN-B"}),
        ({"status": "not_reversed"}, {"TXN-A", "TXN-C"}),
        ({"customer": "asha"}, {"TXN-A", "TXN-C"}),
        ({"customer": "ravi", "status": "reversed"}, {"TXN-B"}),
        ({"date_from": -10, "date_to": -10}, {"TXN-C"}),
        ({"date_from": -1}, {"TXN-A", "TXN-B"}),
        ({"date_to": -2}, {"TXN-C"}),
    ],
    ids=lambda value: "&".join(value) if isinstance(value, dict) else None,
)
def test_filters(marketer, audit, org, params, expected):
    # given the filter values as the sidebar links carry them (days in the org's zone, as the list)
    query = {}
    for name, value in params.items():
        if name in ("promotion", "customer"):
            value = audit[value].pk
        elif name.startswith("date"):
            value = (timezone.localdate(timezone=org.tz) + dt.timedelta(days=value)).isoformat()
        query[name] = value
    # then
    assert listed(marketer, query) == expected


def test_the_date_range_drills_down_to_a_day_without_a_date_hierarchy(marketer, audit, org):
    # the list has no date hierarchy (its year links need MIN/MAX over the table): the range does it,
    # in days of the org's zone
    day = timezone.localtime(audit["c"].transaction_date, org.tz).date().isoformat()
    assert listed(marketer, {"date_from": day, "date_to": day}) == {"TXN-C"}
    assert "transaction_date__year" not in marketer.get(CHANGELIST).content.decode()


def test_the_promotion_filter_offers_only_the_orgs_redeemed_promotions(marketer, audit, org):
    # given a promotion of the org never redeemed
    PromotionFactory(org=org, name="Never redeemed")
    # when
    html = marketer.get(CHANGELIST).content.decode()
    # then
    assert f"?promotion={audit['diwali'].pk}" in html and f"?promotion={audit['flat'].pk}" in html
    assert audit["their_promotion"].pk not in html and "Their promotion" not in html
    assert "Never redeemed" not in html


def test_another_orgs_promotion_or_customer_matches_nothing(marketer, audit):
    assert listed(marketer, {"promotion": audit["their_promotion"].pk}) == set()
    assert listed(marketer, {"customer": audit["theirs"].customer_id}) == set()


@pytest.mark.parametrize(
    "params",
    [{"customer": "abc"}, {"date_from": "yesterday"}, {"date_to": "2025-02-30"}],
    ids=["customer", "date", "date_to"],
)
def test_a_malformed_filter_value_is_flagged_not_an_error(marketer, audit, params):
    response = marketer.get(CHANGELIST, params)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("TXN-A", {"TXN-A"}),
        ("  TXN-C ", {"TXN-C"}),
        ("BILL-B", {"TXN-B"}),
        ("asha.id", {"TXN-A", "TXN-C"}),
        ("+919800000011", {"TXN-A", "TXN-C"}),
        ("919800000022", {"TXN-B"}),
        ("ASHA@example.com", {"TXN-A", "TXN-C"}),
        ("EXT-RAVI", {"TXN-B"}),
        ("TXN", set()),
        ("TXN-THEIRS", set()),
    ],
)
def test_search_by_transaction_or_customer_identifier(marketer, audit, term, expected):
    if term == "asha.id":
        term = str(audit["asha"].pk)
    assert listed(marketer, {"q": term}) == expected


def test_the_change_page_shows_the_lines_and_the_reversal(marketer, audit):
    # when
    html = marketer.get(admin_url(Redemption, "change", audit["b"].pk)).content.decode()
    # then
    # money with the org's precision (2), not the database's six decimals
    assert "Flat 500" in html and "500.00<" in html and "500.000000" not in html
    assert "Returned" in html and "Reversed " in html
    assert 'name="_save"' not in html
    assert "Not reversed" in marketer.get(admin_url(Redemption, "change", audit["a"].pk)).content.decode()


def test_another_orgs_redemption_page_is_not_found(marketer, audit):
    assert marketer.get(admin_url(Redemption, "change", audit["theirs"].pk)).status_code in (302, 404)


# --- CSV export -------------------------------------------------------------------------------------


def test_export_is_one_row_per_line_with_the_list_apis_fields(marketer, audit, read_api):
    # when: the export job started from the list is done
    with TestCase.captureOnCommitCallbacks(execute=True):
        started = marketer.post(EXPORT)
    job = BulkJob.objects.get(kind=BulkJob.Kind.EXPORT)
    assert started["Location"] == reverse("admin:wallets_bulkjob_change", args=[job.pk])
    output = reverse("admin:wallets_bulkjob_output", args=[job.pk])
    response = marketer.get(output)
    # then its file is an attachment
    assert response["Content-Disposition"].startswith('attachment; filename="redemptions-')
    assert response["Content-Type"].startswith("text/csv")
    assert csv_header(marketer.get(output)) == list(REDEMPTION_RECORD_EXAMPLE)
    # and its rows are the list API's records (reversed ones included), newest transaction first
    rows = csv_rows(response)
    api_records = read_api.get(LIST_API_URL, {"includeReversed": "true", "limit": 100}).json()["data"]
    as_text = [{key: "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in record.items()} for record in api_records]  # fmt: skip
    assert sorted(rows, key=lambda row: row["id"]) == sorted(as_text, key=lambda row: row["id"])
    assert [row["transactionIdentifier"] for row in rows] == ["TXN-A", "TXN-A", "TXN-B", "TXN-C"]
    assert [row["reversed"] for row in rows] == ["false", "false", "true", "false"]


def test_export_follows_the_changelists_filters_and_search(marketer, audit):
    # a filter on the promotion exports that promotion's lines only, like the list API's promotionId
    rows = exported(marketer, {"promotion": audit["diwali"].pk})
    assert [(row["transactionIdentifier"], row["promotionName"]) for row in rows] == [
        ("TXN-A", "Diwali 10%"),
        ("TXN-C", "Diwali 10%"),
    ]
    # the other filters and the search select transactions, all of whose lines are exported
    assert {row["transactionIdentifier"] for row in exported(marketer, {"status": "reversed"})} == {"TXN-B"}
    rows = exported(marketer, {"q": "asha@example.com", "status": "not_reversed"})
    assert sorted(row["id"] for row in rows) == sorted(
        str(pk)
        for pk in RedemptionLine.objects.filter(redemption__in=[audit["a"], audit["c"]]).values_list(
            "pk", flat=True
        )
    )
    assert exported(marketer, {"q": "TXN-THEIRS"}) == []
    # the export link carries the current filters
    html = marketer.get(CHANGELIST, {"status": "reversed", "q": "BILL-B"}).content.decode()
    assert f"{EXPORT}?" in html and "status=reversed" in html.split(EXPORT)[1].split('"')[0]


def test_export_never_contains_another_orgs_lines(marketer, audit):
    rows = exported(marketer)
    assert {row["orgId"] for row in rows} == {str(audit["a"].org_id)}
    assert "TXN-THEIRS" not in {row["transactionIdentifier"] for row in rows}


def test_export_of_nothing_is_the_header_alone(marketer, org):
    assert exported(marketer) == []


def test_export_keeps_formula_like_text_as_text(marketer, org):
    # given a till that sent a transaction number a spreadsheet would run as a formula
    redemption = RedemptionFactory(org=org, transaction_number='=HYPERLINK("http://x")')
    RedemptionLineFactory(redemption=redemption, sku="-SKU")
    # when
    [row] = exported(marketer)
    # then
    assert row["transactionNumber"] == '\'=HYPERLINK("http://x")'
    assert row["sku"] == "'-SKU"
    assert row["discount"] == "10.000000"


@pytest.mark.parametrize("formula", FORMULAS)
def test_export_keeps_every_formula_start_as_text(marketer, org, formula):
    # given: till and marketer text that a spreadsheet would run, in every free-text column
    promotion = PromotionFactory(org=org, name=formula, message_label=formula)
    redemption = RedemptionFactory(org=org, transaction_identifier=formula, transaction_number=formula)
    RedemptionLineFactory(redemption=redemption, promotion=promotion, sku=formula, discount=Decimal(10))
    # when
    [row] = exported(marketer)
    # then
    for column in REDEMPTION_TEXT_COLUMNS:
        assert row[column] == as_text(formula), column
    assert row["discount"] == "10.000000"


def test_export_with_a_malformed_filter_goes_back_to_the_list(marketer, audit):
    response = marketer.get(EXPORT, {"customer": "abc"})
    assert response.status_code == 302 and response["Location"] == f"{CHANGELIST}?e=1"


# --- the reverse action -----------------------------------------------------------------------------


def action(client, redemptions, *, confirm=False, **extra):
    data = {"action": "reverse_selected", ACTION_CHECKBOX_NAME: [r.pk for r in redemptions], **extra}
    if confirm:
        data["post"] = "yes"
    else:
        data["index"] = 0
    return client.post(CHANGELIST, data)


def test_reverse_asks_for_confirmation_first(marketer, audit):
    # when
    response = action(marketer, [audit["a"], audit["b"]])
    # then a confirmation page, and nothing reversed yet
    assert response.status_code == 200
    assert "admin/redemptions/redemption/reverse_selected_confirmation.html" in [
        t.name for t in response.templates
    ]
    html = response.content.decode()
    assert "TXN-A" in html and "TXN-B" in html and "Already reversed: nothing" in html
    assert "Reverse <strong>1</strong> redemption?" in html
    assert 'name="post" value="yes"' in html and 'name="reason"' in html
    assert RedemptionReversal.objects.count() == 1


def test_confirming_reverses_through_the_service(api, client, org, customer, wallet_promotion, instance):
    # given a real redemption that used a Customer limit and the earned instance
    PromotionRestrictionFactory(promotion=wallet_promotion, level="Customer", kpi="REDEMPTION", limit=1)
    assert (
        redeem(api, body(customer, txn="T1", line_items=[line(wallet_promotion, instance)])).status_code
        == 200
    )
    instance.refresh_from_db()
    assert (instance.status, RedemptionCounter.objects.get().used) == ("REDEEMED", 1)
    user = staff_login(client, org)
    # when
    response = action(client, [Redemption.objects.get()], confirm=True, reason="Returned at the store")
    # then back to the list, with the news
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("1 redemption(s) reversed" in message for message in messages)
    # and the limits and the instance are given back, by the service (its audit event names the user)
    assert RedemptionReversal.objects.get().reason == "Returned at the store"
    assert RedemptionCounter.objects.get().used == 0
    instance.refresh_from_db()
    assert (instance.status, instance.redemption_count) == ("ACTIVE", 0)
    event = AuditEvent.objects.get(action="redemption.reverse")
    assert (event.actor_type, event.actor_name, event.data["reason"]) == (
        "ADMIN_USER", user.username, "Returned at the store",
    )  # fmt: skip


def test_an_already_reversed_redemption_is_reported_and_left_alone(marketer, audit):
    # when
    response = action(marketer, [audit["a"], audit["b"]], confirm=True, reason="Cancelled")
    # then
    messages = [str(m) for m in marketer.get(response["Location"]).context["messages"]]
    assert any("1 redemption(s) reversed" in message for message in messages)
    assert any("1 already reversed, left as they were: TXN-B" in message for message in messages)
    assert RedemptionReversal.objects.get(redemption=audit["b"]).reason == "Returned"
    assert RedemptionReversal.objects.get(redemption=audit["a"]).reason == "Cancelled"


def test_confirming_without_a_reason_reverses_nothing(marketer, audit):
    response = action(marketer, [audit["a"]], confirm=True, reason="")
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not RedemptionReversal.objects.filter(redemption=audit["a"]).exists()


def test_another_orgs_redemption_cannot_be_reversed(marketer, audit):
    action(marketer, [audit["theirs"]], confirm=True, reason="Nope")
    assert not RedemptionReversal.objects.filter(redemption=audit["theirs"]).exists()


def test_too_many_at_once_is_refused(marketer, org, settings, monkeypatch):
    monkeypatch.setattr("redemptions.admin.REVERSE_MAX", 2)
    redemptions = [RedemptionFactory(org=org) for _ in range(3)]
    response = action(marketer, redemptions, confirm=True, reason="Bulk")
    messages = [str(m) for m in marketer.get(response["Location"]).context["messages"]]
    assert any("Select at most 2 redemptions" in message for message in messages)
    assert not RedemptionReversal.objects.exists()
    assert REVERSE_MAX == 500


def test_reversing_needs_the_reverse_permission(client, org, audit):
    # given a staff user who may view redemptions but not reverse them
    staff_login(client, org, codenames=["view_redemption", "view_redemptionline"])
    # then the action is not offered
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    action_form = response.context["action_form"]
    assert action_form is None or "reverse_selected" not in dict(action_form.fields["action"].choices)
    # and posting it anyway reverses nothing
    action(client, [audit["a"]], confirm=True, reason="Sneaky")
    assert not RedemptionReversal.objects.filter(redemption=audit["a"]).exists()
