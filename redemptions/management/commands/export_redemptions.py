"""Export an org's recorded redemptions as CSV, one row per redemption line, streamed.

    python manage.py export_redemptions --org 100737 --from 2025-12-01 --to 2025-12-31 --output dec.csv

The columns are the fields of a record of the redemption list API (`GET /redemptions`), in its
order, each cell written as every export of the app writes it (`promotions_site.csvexport`: empty
for nulls, `true`/`false` for `reversed`, text a spreadsheet would run as a formula kept as text).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError
from tqdm import tqdm

from promotions.models import Organization
from promotions_site.csvexport import CsvWriter
from promotions_site.errors import flatten_detail
from redemptions.selectors import EXPORT_CHUNK_SIZE, redemption_line_iter
from redemptions.serializers import REDEMPTION_LIST_RECORD, REDEMPTION_RECORD_KEYS

MILLISECOND = dt.timedelta(milliseconds=1)


def parse_bound(value: str, *, org: Organization, end: bool) -> dt.datetime:
    """`YYYY-MM-DD` (a whole day in the org's time zone: its start, or its last millisecond for the
    end bound) or an ISO 8601 datetime with its offset (that instant)."""
    if len(value) == 10:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None
        if not end:
            return dt.datetime.combine(day, dt.time.min, tzinfo=org.tz)
        if day == dt.date.max:
            return dt.datetime.combine(day, dt.time.max, tzinfo=org.tz)
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=org.tz) - MILLISECOND
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{value!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 datetime "
            "(e.g. 2025-12-16T14:30:45+05:30)."
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"{value!r} has no time zone offset, e.g. 2025-12-16T14:30:45+05:30.")
    return moment


class Command(BaseCommand):
    help = (
        "Export an org's redemptions in a date range as CSV, one row per redemption line, with the "
        "fields of the redemption list API. Streams: memory does not grow with the number of rows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", type=int, required=True, help="Organization id.")
        parser.add_argument(
            "--from",
            dest="start",
            required=True,
            help="First transaction date: YYYY-MM-DD (org time zone) or ISO 8601 with offset.",
        )
        parser.add_argument(
            "--to",
            dest="end",
            required=True,
            help="Last transaction date, inclusive: YYYY-MM-DD (the whole day) or ISO 8601 with offset.",
        )
        parser.add_argument("--output", help="CSV file to write (default: standard output).")
        parser.add_argument(
            "--include-reversed",
            action="store_true",
            help="Also export the lines of reversed redemptions (left out by default).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=EXPORT_CHUNK_SIZE,
            help=f"Lines fetched per database round trip (default {EXPORT_CHUNK_SIZE}).",
        )

    def handle(self, *args, **options):
        org = Organization.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"Organization {options['org']} does not exist.")
        start = parse_bound(options["start"], org=org, end=False)
        end = parse_bound(options["end"], org=org, end=True)
        if start > end:
            raise CommandError("--from is after --to.")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        try:
            lines = redemption_line_iter(
                org=org,
                start=start,
                end=end,
                include_reversed=options["include_reversed"],
                chunk_size=options["chunk_size"],
            )
        except ValidationError as exc:
            messages = "; ".join(flatten_detail(exc.detail))
            raise CommandError(
                messages.replace("startDateISO", "--from").replace("endDateISO", "--to")
            ) from None

        output = options["output"]
        if output is None:
            count = self._write(lines, self.stdout, options)
            summary_to = self.stderr
        else:
            count = self._write_file(lines, Path(output), options)
            summary_to = self.stdout
        summary_to.write(
            f"Exported {count} redemption line{'s' if count != 1 else ''} of org {org.pk} "
            f"from {start.isoformat()} to {end.isoformat()}"
            + (" (reversed included)" if options["include_reversed"] else "")
            + (f" to {output}." if output else ".")
        )

    def _write_file(self, lines, path: Path, options) -> int:
        """Write next to `path` and rename at the end: a failed export leaves no half-written file."""
        directory = path.resolve().parent
        if not directory.is_dir():
            raise CommandError(f"Directory {directory} does not exist.")
        fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                count = self._write(lines, handle, options)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return count

    def _write(self, lines, handle, options) -> int:
        writer = CsvWriter(handle)
        writer.writerow(REDEMPTION_RECORD_KEYS)
        count = 0
        progress = tqdm(
            lines,
            desc="redemption lines",
            unit=" rows",
            unit_scale=True,
            file=sys.stderr,
            disable=True if options["no_progress"] else None,
        )
        for line in progress:
            record = REDEMPTION_LIST_RECORD.render(line)
            writer.writerow([record[key] for key in REDEMPTION_RECORD_KEYS])
            count += 1
        return count
