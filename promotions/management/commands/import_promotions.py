"""Import cart promotions from a JSON or CSV file, each validated and created as the create API does.

    python manage.py import_promotions promotions.json --org 100737 [--partial]

JSON: an array of create-promotion bodies, or `{"promotions": [...]}`.
CSV: a header row of the create API's field names; one promotion per row. Scalar fields are plain
cells (`startDateISO`, `maxIssuancePerCustomer`, `isStackable` as true/false, ...); `condition`,
`action`, `promotionRestrictions`, `customFieldValues`, `earningCriteria`, `storeCriteria` and
`timeCriteria` hold JSON. An empty cell is an omitted field.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rest_framework import serializers
from tqdm import tqdm

from promotions.audit import Actor
from promotions.models import Organization
from promotions.serializers import PromotionInputSerializer
from promotions.services import (
    PromotionImportEntry,
    PromotionImportOutcome,
    PromotionImportResult,
    promotions_import,
)
from promotions_site.errors import flatten_detail
from promotions_site.timefmt import EpochMillisField

INTEGER = re.compile(r"-?[0-9]+")
# The CSV columns that hold a JSON value; every other field of the create API is a plain cell.
JSON_COLUMNS = (
    "condition", "action", "promotionRestrictions", "customFieldValues", "earningCriteria", "storeCriteria",
    "timeCriteria",
)  # fmt: skip


def import_entry(label: str, data) -> PromotionImportEntry:
    """One create-promotion body, validated by the create API's serializer."""
    name = data.get("name") if isinstance(data, dict) else None
    payload = PromotionInputSerializer(data=data)
    if not payload.is_valid():
        return PromotionImportEntry(
            label=label, name=str(name or ""), errors=flatten_detail(payload.errors) or ["Invalid request."]
        )
    return PromotionImportEntry(
        label=label,
        name=payload.validated_data["name"],
        fields=payload.service_fields(),
        restrictions=payload.restrictions() or [],
    )


def read_json(path: Path) -> list[PromotionImportEntry]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not valid JSON: {exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text.") from None
    if isinstance(document, dict) and set(document) == {"promotions"}:
        document = document["promotions"]
    if not isinstance(document, list):
        raise CommandError(f'{path}: expected an array of promotions, or {{"promotions": [...]}}.')
    return [import_entry(f"index {index}", data) for index, data in enumerate(document)]


def read_csv(path: Path) -> list[PromotionImportEntry]:
    known = set(PromotionInputSerializer().fields)
    entries = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = [column.strip() for column in next(reader, [])]
            if not any(header):
                raise CommandError(f"{path}: empty file; the first row must name the columns.")
            unknown = [column for column in header if column not in known]
            if unknown:
                raise CommandError(
                    f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; the columns are the "
                    f"create API's fields: {', '.join(sorted(known))}."
                )
            if len(set(header)) != len(header):
                raise CommandError(f"{path}: a column is named twice in the header.")
            line = reader.line_num
            for row in reader:
                start, line = line + 1, reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise CommandError(
                        f"{path}: line {start} has {len(row)} cells; the header has {len(header)}."
                    )
                entries.append(csv_entry(f"line {start}", dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        raise CommandError(f"{path}: malformed CSV at line {reader.line_num}: {exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text.") from None
    return entries


def csv_entry(label: str, row: dict[str, str]) -> PromotionImportEntry:
    data, errors = {}, []
    for column, cell in row.items():
        if cell.strip() == "":
            continue
        if column not in JSON_COLUMNS:
            data[column] = csv_scalar(column, cell)
            continue
        try:
            data[column] = json.loads(cell)
        except json.JSONDecodeError as exc:
            errors.append(f"{column}: not valid JSON ({exc}).")
    if errors:
        return PromotionImportEntry(label=label, name=row.get("name", ""), errors=errors)
    return import_entry(label, data)


@functools.cache
def _scalar_fields() -> dict:
    return dict(PromotionInputSerializer().fields)


def csv_scalar(column: str, cell: str):
    """A plain cell as the create API takes it: the API takes a boolean only as JSON `true`/`false`
    and an integer only as a JSON number, and a CSV cell is text. `true`/`false` (and DRF's other
    spellings: `1`, `yes`, ...) become a boolean, digits an integer; anything else stays text and
    is refused by the field as the API refuses it."""
    field, text = _scalar_fields()[column], cell.strip()
    if isinstance(field, serializers.BooleanField):
        if text in serializers.BooleanField.TRUE_VALUES:
            return True
        if text in serializers.BooleanField.FALSE_VALUES:
            return False
    elif isinstance(field, serializers.IntegerField | EpochMillisField) and INTEGER.fullmatch(text):
        return int(text)
    return cell


READERS = {".json": read_json, ".csv": read_csv}


class Command(BaseCommand):
    help = (
        "Import cart promotions from a JSON or CSV file into an org, validated and created as the "
        "create-promotion API does. All or nothing unless --partial."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .json or .csv file.")
        parser.add_argument("--org", type=int, required=True, help="Organization id.")
        parser.add_argument(
            "--partial",
            action="store_true",
            help="Create every valid promotion and report the others (exit code 1 if any failed). "
            "Default: any failure imports nothing.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar on stderr.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise CommandError(f"{path}: the file must end in .json or .csv.")
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        org = Organization.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"Organization {options['org']} does not exist.")

        # The whole file is read and validated before the first write: a malformed file imports
        # nothing, even with --partial. (Promotions files are small: an org runs a few hundred.)
        try:
            entries = reader(path)
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read ({exc.strerror}).") from None
        progress = tqdm(
            entries,
            desc="promotions",
            unit=" promotions",
            file=sys.stderr,
            disable=True if options["no_progress"] else None,
        )
        outcome = promotions_import(
            org=org, entries=progress, partial=options["partial"], actor=Actor.system("import_promotions")
        )
        self._report(outcome, path, org)

    def _report(self, outcome: PromotionImportOutcome, path: Path, org: Organization) -> None:
        for result in outcome.results:
            entry = result.entry
            where = f"{entry.label} {entry.name!r}" if entry.name else entry.label
            if result.status == PromotionImportResult.FAILED:
                for message in result.messages:
                    self.stderr.write(f"{where}: {result.code} {message}")
            elif outcome.committed and result.status == PromotionImportResult.CREATED:
                self.stdout.write(f"{where}: created {result.promotion_id}")
            elif outcome.committed:
                self.stdout.write(f"{where}: already exists ({result.promotion_id}), skipped")
        failed = outcome.count(PromotionImportResult.FAILED)
        total = len(outcome.results)
        if not outcome.committed:
            raise CommandError(
                f"{path}: {failed} of {total} promotion(s) failed; nothing was imported into org {org.pk} "
                "(use --partial to import the valid ones)."
            )
        self.stdout.write(
            f"{path}: {outcome.count(PromotionImportResult.CREATED)} created, "
            f"{outcome.count(PromotionImportResult.EXISTS)} already existed, {failed} failed "
            f"(org {org.pk}, {total} in file)."
        )
        if failed:
            raise CommandError(f"{path}: {failed} of {total} promotion(s) failed; the others were imported.")
