"""`export_codes PROMOTION_ID [--output FILE]`: a CODE promotion's codes as CSV (code, customerId,
linkedOn, active, createdOn, batchId), streamed page by page through the project's CSV writer (which
guards formulas); to stdout by default."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promotions.codegen.selectors import EXPORT_COLUMNS, promo_codes_export_rows
from promotions.models import Promotion
from promotions_site.csvexport import CsvWriter


class Command(BaseCommand):
    help = "Export a promotion's promo codes as CSV."

    def add_arguments(self, parser):
        parser.add_argument("promotion_id")
        parser.add_argument("--output", default="", help="A file to write (default: stdout).")

    def handle(self, *args, **options):
        promotion = Promotion.objects.filter(pk=options["promotion_id"]).first()
        if promotion is None:
            raise CommandError(f"No promotion {options['promotion_id']!r}.")
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as handle:
                rows = self._write(handle, promotion)
        else:
            rows = self._write(self.stdout, promotion)
        self.stderr.write(f"{rows:,} codes exported.")

    def _write(self, handle, promotion: Promotion) -> int:
        writer = CsvWriter(handle)
        writer.writerow(EXPORT_COLUMNS)
        rows = 0
        for row in promo_codes_export_rows(promotion=promotion):
            writer.writerow(row)
            rows += 1
        return rows
