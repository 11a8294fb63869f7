"""Import an org's store hierarchy (zones, concepts, stores, tills) from one CSV file.

    python manage.py import_stores stores.csv --org 100737 [--partial]

One row per zone, concept, store or till; the `kind` column says which. Columns (header row first, any
order, `kind` and `name` required, the others as the file needs them):

    kind     ZONE, CONCEPT, STORE or TILL
    id       the org's integer id of a zone, concept or store (what storeCriteria names)
    code     a store's code (optional), a till's code (required)
    name     required
    parent   the id of the parent zone (ZONE rows), concept (CONCEPT) or store (STORE)
    zone     a store's zone id
    concept  a store's concept id
    store    a till's store id

Upserts by id (by code for tills): zones and concepts first, then stores, then tills, whatever the
row order, so a store may name a zone defined further down. See `promotions.services.stores_import`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from promotions.audit import Actor
from promotions.models import Organization
from promotions.services import (
    STORE_IMPORT_COLUMNS,
    STORE_IMPORT_KINDS,
    StoreImportOutcome,
    StoreImportRow,
    stores_import,
)

KIND_LABELS = {"ZONE": "zones", "CONCEPT": "concepts", "STORE": "stores", "TILL": "tills"}


def read_rows(path: Path) -> list[StoreImportRow]:
    """The data rows of the file, each with its line. A file that is not UTF-8 CSV with a valid
    header, or a row with another number of cells than the header, is refused whole."""
    rows = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = [column.strip() for column in next(reader, [])]
            if not any(header):
                raise CommandError(f"{path}: empty file; the first row must name the columns.")
            unknown = [column for column in header if column not in STORE_IMPORT_COLUMNS]
            missing = [column for column in ("kind", "name") if column not in header]
            if unknown or missing or len(set(header)) != len(header):
                raise CommandError(
                    f"{path}: bad header row (unknown: {', '.join(unknown) or '-'}; missing: "
                    f"{', '.join(missing) or '-'}; a column may appear once); the columns are "
                    f"{', '.join(STORE_IMPORT_COLUMNS)}, kind and name required."
                )
            line = reader.line_num
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    raise CommandError(
                        f"{path}: line {start} has {len(cells)} cells; the header has {len(header)}."
                    )
                rows.append(StoreImportRow(start, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        raise CommandError(f"{path}: malformed CSV at line {reader.line_num}: {exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text.") from None
    return rows


class Command(BaseCommand):
    help = (
        "Insert or update an org's zones, concepts, stores and tills from one CSV file (a kind column "
        "says which each row is). All or nothing unless --partial."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A CSV file (UTF-8, header row first).")
        parser.add_argument("--org", type=int, required=True, help="Organization id.")
        parser.add_argument(
            "--partial",
            action="store_true",
            help="Import every valid row and report the others (exit code 1 if any was rejected). "
            "Default: any rejected row imports nothing.",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        org = Organization.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"Organization {options['org']} does not exist.")
        try:
            rows = read_rows(path)
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read ({exc.strerror}).") from None
        outcome = stores_import(
            org=org, rows=rows, partial=options["partial"], actor=Actor.system("import_stores")
        )
        self._report(outcome, path, org, len(rows))

    def _report(self, outcome: StoreImportOutcome, path: Path, org: Organization, total: int) -> None:
        for line, reason in outcome.rejects:
            self.stderr.write(f"line {line}: {reason}")
        rejected = len(outcome.rejects)
        if not outcome.committed:
            raise CommandError(
                f"{path}: {rejected} of {total} row(s) rejected; nothing was imported into org {org.pk} "
                "(use --partial to import the valid rows)."
            )
        for kind in STORE_IMPORT_KINDS:
            counts = outcome.counts[kind]
            self.stdout.write(
                f"{KIND_LABELS[kind]}: {counts['created']} created, {counts['updated']} updated, "
                f"{counts['unchanged']} unchanged"
            )
        self.stdout.write(f"{path}: {total} row(s), {rejected} rejected (org {org.pk}).")
        if rejected:
            raise CommandError(f"{path}: {rejected} of {total} row(s) rejected; the others were imported.")
