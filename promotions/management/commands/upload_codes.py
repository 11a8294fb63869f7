"""`upload_codes PROMOTION_ID FILE [--request-id ID] [--rejects FILE]`: add the codes of a CSV file
(one code per row, first column, an optional `code` header) to a CODE promotion, through the service
the admin uses. The file is streamed (memory holds one chunk). Refused rows (line, code, errorCode,
reason) are written to the rejects CSV, by default `FILE.rejects.csv`, through the project's CSV writer
(the first 10,000 are also kept on the batch; all are counted)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promotions.audit import Actor
from promotions.codegen.services import REPORT_COLUMNS, promo_codes_upload
from promotions.models import Promotion
from promotions_site.csvexport import CsvReportFile
from promotions_site.errors import PromotionError


class Command(BaseCommand):
    help = "Upload existing promo codes (CSV) into a CODE promotion."

    def add_arguments(self, parser):
        parser.add_argument("promotion_id")
        parser.add_argument("file")
        parser.add_argument("--request-id", default="")
        parser.add_argument("--rejects", default="", help="Where refused rows go (default FILE.rejects.csv).")

    def handle(self, *args, **options):
        promotion = Promotion.objects.filter(pk=options["promotion_id"]).first()
        if promotion is None:
            raise CommandError(f"No promotion {options['promotion_id']!r}.")
        path = options["file"]
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                batch = promo_codes_upload(
                    promotion=promotion,
                    file=handle,
                    file_name=path,
                    request_id=options["request_id"],
                    actor=Actor.system("upload_codes"),
                )
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{path} is not UTF-8 text: {error}") from error
        except PromotionError as error:
            raise CommandError(f"{error.message} (code {int(error.code)})") from error
        with CsvReportFile(options["rejects"] or f"{path}.rejects.csv", REPORT_COLUMNS) as report:
            report.writerows([entry[column] for column in REPORT_COLUMNS] for entry in batch.report)
        self.stdout.write(
            f"Batch {batch.pk} (requestId {batch.request_id}): {batch.status}, {batch.done:,} codes added, "
            f"{batch.failed:,} rows refused" + (f" (see {report.path})" if report.rows else "") + "."
        )
