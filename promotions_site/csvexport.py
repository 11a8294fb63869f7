"""The one way the app writes CSV: the admin's redemption export and bulk-job error report, the
`export_redemptions` command and the rejects files of `issue_promotion` and `import_customers`.

Cells (`csv_cell`), one rule for every file:

- None is an empty cell; True and False are `true` and `false` (as the JSON of the APIs says them);
- a number (int, Decimal, float) is `str(value)`, unguarded: a number is not text, so a Decimal -5
  stays `-5`;
- anything else is `str(value)` (a date or datetime as Python prints it; the API records the exports
  write already hold their dates as text), then guarded when it is text a spreadsheet would run.

The guard (OWASP's CSV injection advice): a text cell starting with `=`, `@`, a tab or a carriage
return, or with `+` or `-` followed by anything but digits, spaces and dots, gets a leading `'`, so
Excel, LibreOffice and Google Sheets show it as text instead of evaluating it. `+91 98450 12345` and
`-5.00` stay as they are: a mobile number or an amount written as text calls no function, and the
rejects files keep the values the operator sent as they were sent.

Rows end with `\\r\\n` (RFC 4180, the csv module's default, which the admin's downloads always used).

A report a command leaves beside its input (a rejects file) is a `CsvReportFile`: written under a name
of its own and moved to its path whole when the run ends, so two runs never write into one file and a
reader never sees half a report.
"""

from __future__ import annotations

import csv
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

_FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?![0-9 .]*$)")


def csv_cell(value: Any) -> str:
    """`value` as one cell of an export (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    text = str(value)
    return "'" + text if _FORMULA_START.match(text) else text


class CsvWriter:
    """`csv.writer` over `handle` (anything with `write(str)`) whose rows are made of `csv_cell`s."""

    def __init__(self, handle: Any):
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class _Echo:
    """A file-like object whose write returns the line, so a writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header, then each row, as CSV lines: the body of a `StreamingHttpResponse`."""
    writer = CsvWriter(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


class CsvReportFile:
    """A CSV report bound for `path`, with `header` as its first row: it is written to a file of its
    own in the same directory and, on `close`, moved to `path` in one step (`os.replace`) if it
    holds any row; a run that wrote no row leaves no report at `path` (an older run's is removed).

    Two runs naming one path each write their own file, and neither ever deletes the file the other
    is writing; the last to end decides what is left at `path` (its report, whole, or none). Opening
    raises `OSError` when the directory cannot be written.
    """

    def __init__(self, path: str | os.PathLike, header: Iterable[Any]):
        self.path = os.fspath(path)
        self.rows = 0
        self._partial = f"{self.path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
        self._handle = open(self._partial, "x", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = CsvWriter(self._handle)
        self._writer.writerow(header)

    def writerow(self, row: Iterable[Any]) -> None:
        self.rows += 1
        self._writer.writerow(row)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.close()
        if self.rows:
            os.replace(self._partial, self.path)
            return
        os.remove(self._partial)
        # An earlier run's report under this name no longer says what a run of this input rejects.
        Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> CsvReportFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
