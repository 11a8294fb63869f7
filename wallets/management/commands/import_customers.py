"""import_customers FILE.csv --org ID: insert or update an org's customers from a CSV file.

The file is checked whole first (UTF-8, CSV, header), so a malformed file imports nothing; then it is
streamed in chunks, each decided and written by `wallets.services.customer_import.customers_import_chunk` in its own
transaction. Rows that cannot be imported go to a rejects CSV (`line,reason,` then the row's values as
written; by default `FILE.ORG_ID.rejects.csv`, so imports of one file into several orgs keep their own
reports, each written aside and moved into place whole). Ctrl-C rolls back the chunk under way, prints
the summary so far and exits 130; running the same command again completes the import (what is already
in counts as unchanged).
"""

from __future__ import annotations

import csv
import gc
import operator
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError
from tqdm import tqdm

from promotions.audit import Actor
from promotions.models import Organization
from promotions_site.csvexport import CsvReportFile
from wallets.services.customer_import import (
    CUSTOMER_IMPORT_COLUMNS,
    CustomerImport,
    CustomerImportChunk,
    CustomerImportReject,
    CustomerImportRow,
    customers_import,
    customers_import_chunk,
    customers_import_connection_check,
    customers_import_prepare,
)

DEFAULT_CHUNK_SIZE = 25_000


class Command(BaseCommand):
    help = (
        "Insert or update an org's customers from a CSV file with the header customerId, mobile, email, "
        "externalId, firstName, lastName, source (any order). Rows that cannot be imported go to a "
        "rejects CSV with their line and reason. Each chunk of rows commits on its own; re-running the "
        "same file changes nothing, so an interrupted import is completed by running it again."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (UTF-8, comma-separated, header row first).")
        parser.add_argument("--org", type=int, required=True, help="The organization's id.")
        parser.add_argument(
            "--rejects",
            help="Where to write the rejected rows (default: FILE.ORG_ID.rejects.csv next to FILE; none when "
            "no row is rejected).",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help=f"Rows per transaction (default {DEFAULT_CHUNK_SIZE:,}).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")

    def handle(self, *args, **options):
        # Every chunk allocates a few hundred thousand objects and frees them: with the default
        # thresholds the cyclic collector runs thousands of times per million rows, walking every
        # object Django keeps as well (a third of the command's time). None of these objects form
        # cycles, so: Django's objects out of the collector's sight, and collections far apart.
        thresholds, switch_interval = gc.get_threshold(), sys.getswitchinterval()
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
        # The reading thread holds the GIL while it parses; the writing thread needs it back after
        # every 128 kB it streams to PostgreSQL, and would wait up to 5 ms each time.
        sys.setswitchinterval(0.0005)
        try:
            self._import(options)
        finally:
            sys.setswitchinterval(switch_interval)
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    def _import(self, options):
        started = time.perf_counter()
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        try:
            customers_import_connection_check()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        org = Organization.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization {options['org']}.")
        path = Path(options["file"])
        rejects_path = Path(options["rejects"] or f"{path}.{org.pk}.rejects.csv")
        if rejects_path.resolve() == path.resolve():
            raise CommandError("--rejects must not be the input file.")
        order, total = _check_file(path)

        counts = {"read": 0, "inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        try:
            rejects = CsvReportFile(rejects_path, ("line", "reason", *CUSTOMER_IMPORT_COLUMNS))
        except OSError as exc:
            raise CommandError(f"Cannot write the rejects file {rejects_path}: {exc.strerror}.") from exc
        stopped: CommandError | None = None
        try:
            with (
                rejects,
                tqdm(
                    total=total,
                    unit=" rows",
                    unit_scale=True,
                    file=sys.stderr,
                    disable=True if options["no_progress"] else None,
                ) as progress,
                customers_import(org=org, actor=Actor.system("import_customers"), label=path.name) as run,
            ):
                for outcome, read, chunk_rejects in self._chunks_imported(path, order, options, run):
                    counts["read"] += read
                    counts["inserted"] += outcome.inserted
                    counts["updated"] += outcome.updated
                    counts["unchanged"] += outcome.unchanged
                    counts["rejected"] += len(chunk_rejects)
                    rejects.writerows((r.line, r.reason, *r.values) for r in chunk_rejects)
                    progress.update(read)
        except KeyboardInterrupt:
            stopped = CommandError(
                "Interrupted: the rows counted above are imported (the chunk under way was rolled back). "
                "Run the same command again to complete the import.",
                returncode=130,
            )
        except _ChunkClash as clash:
            stopped = CommandError(
                f"The rows from line {clash.first_line} on clashed with concurrent writes to the same "
                f"customers three times and were not imported; the rows before line {clash.first_line} "
                f"are. Run the same command again to complete the import ({clash.__cause__})."
            )
        finally:
            rejects.close()

        elapsed = time.perf_counter() - started
        rate = counts["read"] / elapsed if elapsed else 0.0
        where = f" (in {rejects_path})" if counts["rejected"] else ""
        self.stdout.write(
            f"rows read: {counts['read']}\n"
            f"inserted: {counts['inserted']}\n"
            f"updated: {counts['updated']}\n"
            f"unchanged: {counts['unchanged']}\n"
            f"rejected: {counts['rejected']}{where}\n"
            f"elapsed: {elapsed:.2f} s\n"
            f"rows/s: {rate:.0f}"
        )
        if stopped is not None:
            raise stopped

    def _chunks_imported(self, path: Path, order: list[int], options, run: CustomerImport):
        """Import the file chunk by chunk: (outcome, rows read, rejects) for each.

        One thread reads and checks the next chunk (no database) while this one is written.
        """
        chunks = _chunks(path, order, options["chunk_size"])
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-read") as reader:
            upcoming = reader.submit(_next_chunk, chunks, run)
            while (current := upcoming.result()) is not None:
                upcoming = reader.submit(_next_chunk, chunks, run)
                chunk, bad_rows, first_line = current
                try:
                    outcome = customers_import_chunk(run=run, chunk=chunk)
                except IntegrityError as exc:
                    raise _ChunkClash(first_line) from exc
                read = len(chunk.alone) + len(chunk.rest) + len(chunk.rejects) + len(bad_rows)
                yield outcome, read, sorted([*bad_rows, *outcome.rejects], key=lambda reject: reject.line)


class _ChunkClash(Exception):
    def __init__(self, first_line: int):
        super().__init__(first_line)
        self.first_line = first_line


def _next_chunk(
    chunks: Iterator[tuple[list[CustomerImportRow], list[CustomerImportReject]]], run: CustomerImport
) -> tuple[CustomerImportChunk, list[CustomerImportReject], int] | None:
    """The next chunk of the file checked (`customers_import_prepare`), its misshapen rows, and
    its first line."""
    rows_and_bad = next(chunks, None)
    if rows_and_bad is None:
        return None
    rows, bad_rows = rows_and_bad
    first_line = min(row.line for row in (*rows[:1], *bad_rows[:1]))
    # The COPY text of the rows that look new is only wanted while the import meets new customers
    # (a hint: if it changes meanwhile, the chunk's writer formats the text itself).
    return customers_import_prepare(rows, new_rows_text=run.expect_new), bad_rows, first_line


def _open(path: Path):
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc


def _check_file(path: Path) -> tuple[list[int], int]:
    """Read the whole file once before importing anything: (the header position of each of
    CUSTOMER_IMPORT_COLUMNS, the number of data rows). A file that is not UTF-8, not CSV, or has a
    bad header is refused here, so nothing of it is imported."""
    with _open(path) as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise CommandError(f"{path} is empty: the first row must be the header.")
            order = _header_order([name.strip() for name in header], path)
            total = sum(1 for row in reader if row)
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"{path} is not UTF-8 text (line {_first_bad_line(path)}: {exc.reason})."
            ) from exc
        except csv.Error as exc:
            raise CommandError(f"{path} is not a valid CSV file (line {reader.line_num}: {exc}).") from exc
    return order, total


def _first_bad_line(path: Path) -> int:
    """The number of the first line that is not UTF-8 (text is decoded in blocks, so the reader
    cannot tell)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _header_order(header: list[str], path: Path) -> list[int]:
    unknown = [name for name in header if name not in CUSTOMER_IMPORT_COLUMNS]
    missing = [name for name in CUSTOMER_IMPORT_COLUMNS if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (("unknown", unknown), ("missing", missing), ("repeated", repeated))
        if names
    ]
    if problems:
        raise CommandError(
            f"{path}: bad header row ({'; '.join(problems)}); the columns are "
            f"{', '.join(CUSTOMER_IMPORT_COLUMNS)} (any order, all required)."
        )
    return [header.index(name) for name in CUSTOMER_IMPORT_COLUMNS]


def _chunks(
    path: Path, order: list[int], size: int
) -> Iterator[tuple[list[CustomerImportRow], list[CustomerImportReject]]]:
    """The data rows, `size` at a time: (well-shaped rows, rows with the wrong number of fields)."""
    width = max(order) + 1
    pick = operator.itemgetter(*order)
    with _open(path) as handle:
        reader = csv.reader(handle, strict=True)
        next(reader)
        rows: list[CustomerImportRow] = []
        bad_rows: list[CustomerImportReject] = []
        line = reader.line_num + 1  # a row's first line (a quoted value may span lines)
        for fields in reader:
            if fields:
                if len(fields) == width:
                    rows.append(CustomerImportRow(line, pick(fields)))
                else:
                    values = tuple(fields[i] if i < len(fields) else "" for i in order)
                    reason = f"malformed: {len(fields)} fields, the header has {width}"
                    bad_rows.append(CustomerImportReject(line, values, reason))
                if len(rows) + len(bad_rows) == size:
                    yield rows, bad_rows
                    rows, bad_rows = [], []
            line = reader.line_num + 1
        if rows or bad_rows:
            yield rows, bad_rows
