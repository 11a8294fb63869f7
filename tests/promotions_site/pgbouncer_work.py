"""The app's work through PgBouncer in transaction mode, run by test_pgbouncer.py in a process of its
own whose DATABASE_URL names the pooler (`python -m tests.promotions_site.pgbouncer_work SETUP OUT`).

SETUP is a JSON file of what the test created (the API client's credentials, customers, promotions);
OUT receives what each step answered, for the test to check against the database. Every step runs
`rounds` times, more than psycopg's prepare threshold (5), so a statement prepared on one server
connection and run again on another would fail here.
"""

from __future__ import annotations

import json
import sys

import django


def main(setup_path: str, out_path: str) -> None:
    django.setup()

    from django.core.management import CommandError, call_command
    from django.db import connection
    from django.utils import timezone
    from rest_framework.test import APIClient

    from promotions.models import Organization, Promotion
    from promotions_site.timefmt import to_epoch_ms
    from wallets.models import BulkJob
    from wallets.services import bulk_job_create, bulk_job_start

    with open(setup_path) as setup_file:
        setup = json.load(setup_file)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=setup["authorization"])
    customer_id, wallet_promotion, pos_promotion = (
        setup["customer"],
        setup["wallet_promotion"],
        setup["pos_promotion"],
    )
    out: dict = {"status": [], "wallet_sizes": [], "evaluated_discounts": [], "backends": []}

    def answered(step: str, response) -> dict:
        out["status"].append([step, response.status_code])
        return response.json() if response.status_code == 200 else {}

    for round_ in range(setup["rounds"]):
        # issue to the customer (issueBulk: the instance is written with COPY)
        issued = answered(
            "issue",
            api.post(
                f"/api_gateway/v1/promotions/{wallet_promotion}/issueBulk?contextId=pgb-{round_}",
                [customer_id],
                format="json",
            ),
        )
        earned_id = issued["data"][str(customer_id)]["id"] if issued else None
        # read the wallet
        wallet = answered("wallet", api.get(f"/api_gateway/v1/promotions/customer/{customer_id}"))
        out["wallet_sizes"].append(len(wallet.get("data", [])))
        # evaluate an anonymous cart (the POS promotion takes 100 off it; the customer's instances,
        # 10 off, would compete with it)
        evaluated = answered(
            "evaluate",
            api.post(
                "/api_gateway/v1/promotions/evaluate",
                {
                    "amount": "2000.00",
                    "cartItems": [{"sku": "S1", "amount": "2000.00", "qty": "1"}],
                },
                format="json",
            ),
        )
        out["evaluated_discounts"].append(
            [p["discount"] for p in evaluated.get("data", {}).get("appliedPromotions", [])]
        )
        # redeem the instance just issued, with the POS promotion on the same bill
        line = {
            "sku": "S1",
            "redemptionCount": 1,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
        answered(
            "redeem",
            api.post(
                "/api_gateway/v1/promotions/redemptions",
                {
                    "customerId": str(customer_id),
                    "transactionIdentifier": f"PGB-{round_}",
                    "transactionNumber": f"BILL-PGB-{round_}",
                    "transactionDate": to_epoch_ms(timezone.now()),
                    "amount": 2000,
                    "lineItems": [
                        {
                            **line,
                            "promotionId": wallet_promotion,
                            "earnedPromotionId": earned_id,
                            "discount": 50,
                        }
                    ],
                    "redemptions": [{**line, "promotionId": pos_promotion, "discount": 100}],
                },
                format="json",
            ),
        )
        # and reverse every other bill
        if round_ % 2:
            answered(
                "reverse",
                api.post(
                    "/api_gateway/v1/promotions/redemptions/reverse",
                    {"transactionIdentifier": f"PGB-{round_}", "reason": "returned"},
                    format="json",
                ),
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            out["backends"].append(cursor.fetchone()[0])

    # a bulk job (the admin's issue to a customer list): items, then a chunk, COPY for the instances
    org = Organization.objects.get(pk=setup["org"])
    job = bulk_job_create(
        org=org,
        kind=BulkJob.Kind.ISSUE,
        promotion=Promotion.objects.get(pk=setup["bulk_promotion"]),
        params={"contextId": "pgb-bulk"},
        identifier_type="id",
        values=[str(pk) for pk in setup["bulk_customers"]],
        user=None,
    )
    bulk_job_start(job=job)
    job.refresh_from_db()
    out["bulk_job"] = [job.status, job.done, job.failed]
    # its items walked a row at a time outside a transaction, as the admin's error report streams them
    # (a server-side cursor there would be declared WITH HOLD in one transaction, fetched in others)
    items = job.items.order_by("id").values_list("customer_id", flat=True)
    out["bulk_job_items"] = list(items.iterator(chunk_size=1))

    # the customer import keeps TEMP tables across transactions: it refuses to run here
    try:
        call_command("import_customers", setup_path, org=org.pk, no_progress=True)
    except CommandError as exc:
        out["import_refused"] = str(exc)

    with open(out_path, "w") as out_file:
        json.dump(out, out_file)


if __name__ == "__main__":
    main(*sys.argv[1:3])
