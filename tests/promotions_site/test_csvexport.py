"""promotions_site.csvexport: the one cell rule and formula guard of every CSV the app writes."""

from __future__ import annotations

import ast
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from promotions_site.csvexport import CsvReportFile, CsvWriter, csv_cell, csv_lines
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


def test_a_report_is_moved_into_place_whole_when_closed(tmp_path):
    # given a report being written
    path = tmp_path / "customers.txt.rejects.csv"
    report = CsvReportFile(path, ["line", "value"])
    report.writerow([2, "=1+1"])
    # then nothing is at its path yet, so no reader sees half of it
    assert not path.exists()
    # when it is closed
    report.close()
    # then it is there whole, written by the one writer, and nothing else is left
    assert csv_table(path.read_text(encoding="utf-8")) == [["line", "value"], ["2", "'=1+1"]]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_two_reports_for_one_path_at_once_never_mix_nor_delete_each_others(tmp_path):
    # given an older report at the path, and two runs writing a report for it at the same time
    path = tmp_path / "rejects.csv"
    path.write_text("older\r\n", encoding="utf-8")
    first, second, empty = (CsvReportFile(path, ["line"]) for _ in range(3))
    first.writerows([[1], [2]])
    second.writerow([3])
    # when one that wrote no row ends first, then the others, in any order
    empty.close()
    second.close()
    first.close()
    # then no run failed, the older report is gone, and the last to end left its own report, whole
    assert csv_table(path.read_text(encoding="utf-8")) == [["line"], ["1"], ["2"]]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_report_without_rows_leaves_none_and_closing_twice_is_harmless(tmp_path):
    path = tmp_path / "rejects.csv"
    with CsvReportFile(path, ["line"]) as report:
        pass
    report.close()
    assert list(tmp_path.iterdir()) == []


APPS = ("promotions", "promotions_site", "wallets", "redemptions")
ROOT = Path(__file__).resolve().parents[2]


def _csv_writers_made(source: str) -> list[int]:
    """Lines of `source` that make a csv module writer (`csv.writer`, `csv.DictWriter`, or either imported)."""
    writers = ("writer", "DictWriter")
    found = []
    for node in ast.walk(ast.parse(source)):
        attribute = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if attribute and node.value.id == "csv" and node.attr in writers:
            found.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "csv":
            found += [node.lineno for alias in node.names if alias.name in writers]
    return found


def test_every_csv_the_apps_write_goes_through_the_one_writer():
    # a writer made anywhere else would skip the formula guard (the command-line export once did)
    elsewhere = {
        str(path.relative_to(ROOT)): lines
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if path != ROOT / "promotions_site" / "csvexport.py"
        and (lines := _csv_writers_made(path.read_text(encoding="utf-8")))
    }
    assert elsewhere == {}
