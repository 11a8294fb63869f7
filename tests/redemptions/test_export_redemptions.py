"""export_redemptions: the list API's records as CSV, streamed, for a date range of one org."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from tests.csv_support import FORMULAS, REDEMPTION_TEXT_COLUMNS, as_text
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)
from tests.redemptions.test_redemption_list import line_on

URL = "/api_gateway/v1/promotions/redemptions"
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))  # the factories' orgs are in Asia/Kolkata


def export(org, *args: str) -> tuple[list[dict], str, str]:
    """Run the command to stdout: (rows as dicts, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("export_redemptions", "--org", str(org.pk), "--no-progress", *args, stdout=out, stderr=err)
    return list(csv.DictReader(io.StringIO(out.getvalue()))), out.getvalue(), err.getvalue()


def ids(rows: list[dict]) -> list[str]:
    return [row["id"] for row in rows]


def test_rows_are_the_list_api_records(api, org):
    # given: a line item with an earned instance and a till, and a cart-level line without them
    till = ApiClientFactory(org=org, username="store.server")
    promotion = PromotionFactory(org=org, name="Flat 500, off", message_label='Say "hi"')
    customer = CustomerFactory(org=org)
    earned = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    redemption = RedemptionFactory(
        org=org,
        customer=customer,
        transaction_date=dt.datetime(2025, 12, 16, 9, 0, 45, 123000, tzinfo=dt.UTC),
        amount=Decimal("2000"),
        api_client=till,
    )
    RedemptionLineFactory(
        redemption=redemption,
        promotion=promotion,
        earned_promotion=earned,
        sku="SKU-1001",
        redemption_count=2,
        discount=Decimal("500"),
        discount_applied_on_quantity=Decimal("1.5"),
        promotion_applied_on_quantity=Decimal(3),
    )
    RedemptionLineFactory(redemption=redemption, promotion=promotion, level="CART", sku="")

    # when
    rows, output, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16")

    # then: the same records as the API, in the API's key order, nulls as empty cells
    records = api.get(URL, {"order": "ASC"}).json()["data"]
    assert output.splitlines()[0].split(",") == list(records[0])
    assert rows == [
        {key: "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
         for key, value in record.items()}
        for record in records
    ]  # fmt: skip
    assert rows[0]["promotionName"] == "Flat 500, off"
    assert rows[0]["promotionMessageLabel"] == 'Say "hi"'
    assert rows[0]["discount"] == "500.000000"
    assert rows[0]["redemptionTill"] == "store.server"
    assert rows[1]["redemptionType"] == "CART"
    assert rows[1]["sku"] == rows[1]["earnedPromotionId"] == rows[1]["promoCode"] == ""
    assert rows[0]["reversed"] == "false"


def test_a_date_is_a_whole_day_in_the_org_time_zone(org):
    # given: lines just before, at the start of, at the end of, and just after 16 Dec (IST)
    before = line_on(org, dt.datetime(2025, 12, 15, 23, 59, 59, 999000, tzinfo=IST))
    first = line_on(org, dt.datetime(2025, 12, 16, 0, 0, tzinfo=IST))
    last = line_on(org, dt.datetime(2025, 12, 16, 23, 59, 59, 999999, tzinfo=IST))
    after = line_on(org, dt.datetime(2025, 12, 17, 0, 0, tzinfo=IST))

    # when
    one_day, _, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16")
    two_days, _, _ = export(org, "--from", "2025-12-15", "--to", "2025-12-16")

    # then: --to is inclusive; oldest first
    assert ids(one_day) == [str(first.pk), str(last.pk)]
    assert ids(two_days) == [str(before.pk), str(first.pk), str(last.pk)]
    assert str(after.pk) not in ids(two_days)


def test_datetime_bounds_with_offset_are_inclusive_instants(org):
    # given
    early = line_on(org, dt.datetime(2025, 12, 16, 10, 0, tzinfo=dt.UTC))
    middle = line_on(org, dt.datetime(2025, 12, 16, 11, 0, 0, 500, tzinfo=dt.UTC))
    late = line_on(org, dt.datetime(2025, 12, 16, 12, 0, 0, 1000, tzinfo=dt.UTC))

    # when
    rows, _, _ = export(org, "--from", "2025-12-16T15:30:00+05:30", "--to", "2025-12-16T11:00:00Z")

    # then: from 10:00 UTC to the whole millisecond 11:00:00.000 UTC
    assert ids(rows) == [str(early.pk), str(middle.pk)]
    assert str(late.pk) not in ids(rows)


def test_only_the_orgs_redemptions_are_exported(org, other_org):
    # given
    when = dt.datetime(2025, 12, 16, 12, 0, tzinfo=IST)
    mine = line_on(org, when)
    line_on(other_org, when)

    # when
    rows, _, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16")

    # then
    assert ids(rows) == [str(mine.pk)]
    assert {row["orgId"] for row in rows} == {str(org.pk)}


def test_reversed_redemptions_are_left_out_unless_asked_for(org):
    # given
    when = dt.datetime(2025, 12, 16, 12, 0, tzinfo=IST)
    kept = line_on(org, when)
    reversed_line = line_on(org, when + dt.timedelta(minutes=1))
    RedemptionReversalFactory(redemption=reversed_line.redemption)

    # when
    default, _, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16")
    included, _, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16", "--include-reversed")

    # then
    assert ids(default) == [str(kept.pk)]
    assert [(row["id"], row["reversed"]) for row in included] == [
        (str(kept.pk), "false"),
        (str(reversed_line.pk), "true"),
    ]


def test_an_empty_range_still_has_the_header(org):
    # when
    rows, output, summary = export(org, "--from", "2020-01-01", "--to", "2020-01-31")

    # then
    assert rows == []
    assert output.splitlines() == [output.splitlines()[0]]
    assert output.startswith("id,orgId,promotionId,")
    assert "Exported 0 redemption lines" in summary


def test_many_lines_stream_in_chunks_in_order_to_a_file(org, tmp_path):
    # given: more lines than one chunk, some sharing a transaction date
    start = dt.datetime(2025, 12, 16, 9, 0, tzinfo=IST)
    lines = [line_on(org, start + dt.timedelta(minutes=i // 2)) for i in range(7)]
    target = tmp_path / "export.csv"
    out = io.StringIO()

    # when
    call_command(
        "export_redemptions", "--org", str(org.pk), "--from", "2025-12-16", "--to", "2025-12-16",
        "--output", str(target), "--chunk-size", "2", "--no-progress", stdout=out,
    )  # fmt: skip

    # then: every line once, by (date, id); the summary on stdout; no temporary file left behind
    with target.open(newline="") as handle:
        assert ids(list(csv.DictReader(handle))) == [str(line.pk) for line in lines]
    assert f"Exported 7 redemption lines of org {org.pk}" in out.getvalue()
    assert [path.name for path in tmp_path.iterdir()] == ["export.csv"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_text_that_starts_a_formula_is_exported_as_text(org, tmp_path, formula):
    # given: till and marketer text that a spreadsheet would run, in every free-text column
    promotion = PromotionFactory(org=org, name=formula, message_label=formula)
    redemption = RedemptionFactory(
        org=org,
        transaction_identifier=formula,
        transaction_number=formula,
        transaction_date=dt.datetime(2025, 12, 16, 9, tzinfo=dt.UTC),
    )
    RedemptionLineFactory(redemption=redemption, promotion=promotion, sku=formula, discount=Decimal(10))
    target = tmp_path / "out.csv"
    # when: to standard output and to a file
    [row], _, _ = export(org, "--from", "2025-12-16", "--to", "2025-12-16")
    call_command(
        "export_redemptions", "--org", str(org.pk), "--from", "2025-12-16", "--to", "2025-12-16",
        "--no-progress", "--output", str(target), stdout=io.StringIO(),
    )  # fmt: skip
    # then
    with target.open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == [row]
    for column in REDEMPTION_TEXT_COLUMNS:
        assert row[column] == as_text(formula), column
    assert row["discount"] == "10.000000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-13-01", "--to", "2025-12-31"], "is not a date"),
        (["--from", "yesterday", "--to", "2025-12-31"], "neither a date"),
        (["--from", "2025-12-01T00:00:00", "--to", "2025-12-31"], "no time zone offset"),
        (["--from", "2025-12-31", "--to", "2025-12-01"], "--from is after --to"),
        (["--from", "1900-01-01", "--to", "2025-12-01"], "between 1970 and 9999"),
        (["--from", "1969-12-31T23:59:59Z", "--to", "2025-12-01"], "between 1970 and 9999"),
    ],
)
def test_bad_dates_are_command_errors(org, tmp_path, args, message):
    target = tmp_path / "out.csv"
    with pytest.raises(CommandError, match=message):
        call_command("export_redemptions", "--org", str(org.pk), "--output", str(target), *args)
    assert list(tmp_path.iterdir()) == []


def test_unknown_org_and_missing_directory_are_command_errors(org, tmp_path):
    with pytest.raises(CommandError, match="Organization 999999 does not exist"):
        call_command("export_redemptions", "--org", "999999", "--from", "2025-12-01", "--to", "2025-12-01")
    with pytest.raises(CommandError, match="does not exist"):
        call_command(
            "export_redemptions", "--org", str(org.pk), "--from", "2025-12-01", "--to", "2025-12-01",
            "--output", str(tmp_path / "missing" / "out.csv"),
        )  # fmt: skip
