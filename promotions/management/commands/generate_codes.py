"""`generate_codes PROMOTION_ID --count N (--length L [--prefix P] [--suffix S] | --pattern P)
[--charset ALPHANUMERIC|NUMERIC|CUSTOM --alphabet A] [--request-id ID]`: generate a CODE promotion's
promo codes through the service the API and the admin use, chunk by chunk in this process, printing
the progress. Each chunk commits on its own: after an interruption, the same command with the same
`--request-id` writes only the codes still missing (docs/codes.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promotions.audit import Actor
from promotions.codegen.services import (
    generation_params,
    promo_code_batch_chunk_run,
    promo_code_batch_generate,
)
from promotions.models import PromoCodeBatch, Promotion
from promotions_site.errors import PromotionError


class Command(BaseCommand):
    help = "Generate promo codes for a CODE promotion (resumable with the same --request-id)."

    def add_arguments(self, parser):
        parser.add_argument("promotion_id")
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--length", type=int)
        parser.add_argument("--charset", default="ALPHANUMERIC")
        parser.add_argument("--alphabet", default="")
        parser.add_argument("--prefix", default="")
        parser.add_argument("--suffix", default="")
        parser.add_argument("--pattern", default="")
        parser.add_argument(
            "--request-id",
            default="",
            help="Names the request: run again with it to resume (default: a new one).",
        )

    def handle(self, *args, **options):
        promotion = Promotion.objects.filter(pk=options["promotion_id"]).first()
        if promotion is None:
            raise CommandError(f"No promotion {options['promotion_id']!r}.")
        params = generation_params(
            count=options["count"],
            length=options["length"],
            charset=options["charset"],
            alphabet=options["alphabet"],
            prefix=options["prefix"],
            suffix=options["suffix"],
            pattern=options["pattern"],
        )
        try:
            batch = promo_code_batch_generate(
                promotion=promotion,
                params=params,
                request_id=options["request_id"],
                actor=Actor.system("generate_codes"),
                start=False,
            )
            if batch.status == PromoCodeBatch.Status.FAILED:
                PromoCodeBatch.objects.filter(pk=batch.pk).update(
                    status=PromoCodeBatch.Status.RUNNING, error=""
                )
            while promo_code_batch_chunk_run(batch_id=batch.pk):
                batch.refresh_from_db(fields=["done", "total"])
                self.stderr.write(f"{batch.done:,} of {batch.total:,} codes")
        except PromotionError as error:
            raise CommandError(f"{error.message} (code {int(error.code)})") from error
        batch.refresh_from_db()
        self.stdout.write(
            f"Batch {batch.pk} (requestId {batch.request_id}): {batch.status}, {batch.done:,} of {batch.total:,} codes."
        )
