"""promotions_site.csvexport: the one cell rule and formula guard of every CSV the app writes."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from promotions_site.csvexport import CsvWriter, csv_cell, csv_lines
from tests.csv_support import FORMULAS, as_text, csv_table


@pytest.mark.parametrize("formula", FORMULAS)
def test_text_that_starts_a_formula_is_kept_as_text(formula):
    assert csv_cell(formula) == as_text(formula)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-5, "-5"),
        (Decimal("-5"), "-5"),
        (Decimal("-12.500000"), "-12.500000"),
        (-0.5, "-0.5"),
        (dt.date(2025, 12, 16), "2025-12-16"),
        (dt.datetime(2025, 12, 16, 9, 0, 45, tzinfo=dt.UTC), "2025-12-16 09:00:45+00:00"),
        ("", ""),
        ("SKU-1", "SKU-1"),
        (" =1+1", " =1+1"),  # a leading space: spreadsheets read it as text already
        ("a=b", "a=b"),
    ],
)
def test_numbers_dates_nulls_and_booleans(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.parametrize("text", ["-5", "-5.00", "+919876543210", "+91 98450 12345", "-", "+", "-.5"])
def test_a_number_written_as_text_is_not_guarded(text):
    # a mobile number or an amount calls no function, and the rejects files give back what was sent
    assert csv_cell(text) == text


@pytest.mark.parametrize("text", ["-1+1", "+1-cmd", "-A1", "+ SUM(A1)", "-5e3"])
def test_a_sign_followed_by_anything_else_is_guarded(text):
    assert csv_cell(text) == "'" + text


def test_the_writer_and_the_lines_write_the_same_rows():
    rows = [[1, "=1+1", None, True], [Decimal("-2.50"), "\tx", "plain", False]]
    handle = io.StringIO(newline="")
    writer = CsvWriter(handle)
    writer.writerow(["a", "b", "c", "d"])
    writer.writerows(rows)
    streamed = "".join(csv_lines(["a", "b", "c", "d"], rows))
    assert handle.getvalue() == streamed
    assert streamed.endswith("\r\n")
    assert csv_table(streamed) == [
        ["a", "b", "c", "d"],
        ["1", "'=1+1", "", "true"],
        ["-2.50", "'\tx", "plain", "false"],
    ]
