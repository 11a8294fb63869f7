"""The Idempotency-Key header on the writes without a natural key (promotions_site/idempotency.py)."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections import Counter
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import AuditEvent, IdempotencyKey, LoyaltyPromotion, Promotion
from promotions.schema import PROMOTION_CREATE_EXAMPLE
from redemptions.models import RedemptionReversal
from tests.concurrency import run_concurrently
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
)
from tests.redemptions.support import body as redemption_body
from tests.redemptions.support import line, redeem
from wallets.models import Customer, EarnedPromotion, LoyaltyEarnedPromotion

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
V2_QUERY = {"identifierName": "mobile", "identifierValue": "18767431754", "source": "INSTORE"}


def send(api, method, url, body, key=KEY, **extra):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return getattr(api, method)(url, body, format="json", **headers, **extra)


def codes(response) -> list[int]:
    return [error["code"] for error in response.json()["errors"]]


def promotion_body(name="Idempotent promotion") -> dict:
    data = copy.deepcopy(PROMOTION_CREATE_EXAMPLE)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    data.pop("startDateISO"), data.pop("endDateISO")
    data.update(
        name=name, startDateISO=start.isoformat(), endDateISO=(start + dt.timedelta(days=60)).isoformat()
    )
    return data


def v2_issue_url(**query) -> str:
    return "/v2/promotion/issue?" + urlencode({**V2_QUERY, **query})


def loyalty_setup(org, **promotion):
    program = LoyaltyProgramFactory(org=org)
    loyalty_promotion = LoyaltyPromotionFactory(
        org=org, program=program, max_issuance_per_customer=-1, **promotion
    )
    CustomerFactory(org=org, mobile="18767431754")
    return {"programId": program.pk, "promotionId": loyalty_promotion.pk}


# Each write that takes the header: given the org and a write-access client, (method, url, body).
def promotion_create_case(org, api):
    return "post", "/api_gateway/v1/promotions", promotion_body()


def promotion_update_case(org, api):
    promotion = PromotionFactory(org=org, start_date=timezone.now() + dt.timedelta(days=1))
    return "put", f"/api_gateway/v1/promotions/{promotion.pk}", {"name": "Renamed", "priority": 3}


def customer_create_case(org, api):
    return "post", "/api_gateway/v1/promotions/customers", {"mobile": "+919812345678", "firstName": "Ravi"}


def revoke_earn_case(org, api):
    instance = EarnedPromotionFactory(org=org)
    return (
        "post",
        "/api_gateway/v1/promotions/revokeEarn",
        {
            "customerId": instance.customer_id,
            "earnRevokeDetails": [{"promotionId": instance.promotion_id, "earnIds": [instance.pk]}],
        },
    )


def loyalty_issue_case(org, api):
    return "post", v2_issue_url(), loyalty_setup(org)


def redemption_reverse_case(org, api):
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="POS")
    assert redeem(api, redemption_body(customer, txn="T-1", redemptions=[line(promotion)])).status_code == 200
    return "post", "/api_gateway/v1/promotions/redemptions/reverse", {"transactionIdentifier": "T-1"}


WRITES = [
    promotion_create_case,
    promotion_update_case,
    customer_create_case,
    revoke_earn_case,
    loyalty_issue_case,
    redemption_reverse_case,
]


def snapshot() -> dict:
    """Row counts and states every one of these writes changes (each also records an audit event)."""
    return {
        "audit": AuditEvent.objects.count(),
        "promotions": list(Promotion.objects.order_by("pk").values_list("pk", "name", "priority")),
        "customers": Customer.objects.count(),
        "instances": list(EarnedPromotion.objects.order_by("pk").values_list("pk", "status")),
        "loyalty": LoyaltyEarnedPromotion.objects.count(),
        "reversals": RedemptionReversal.objects.count(),
    }


@pytest.mark.parametrize("case", WRITES, ids=lambda case: case.__name__.removesuffix("_case"))
def test_a_retry_with_the_key_replays_the_answer_and_writes_nothing(api, org, case):
    # given a write answered once under a key
    method, url, body = case(org, api)
    first = send(api, method, url, body)
    assert first.status_code in (200, 201), first.content
    assert "Idempotent-Replayed" not in first
    after_first = snapshot()

    # when the client retries it with the same key (the body's keys in another order)
    retry = send(api, method, url, dict(reversed(list(body.items()))))

    # then the same status and the same bytes come back, marked as a replay, and nothing is written
    assert (retry.status_code, retry.content) == (first.status_code, first.content)
    assert retry["Idempotent-Replayed"] == "true"
    assert retry["Content-Type"] == first["Content-Type"] == "application/json"
    assert snapshot() == after_first
    kept = IdempotencyKey.objects.get()
    assert (kept.api_client, kept.key, kept.response_status) == (api.api_client, KEY, first.status_code)
    assert kept.response_body.encode() == first.content


def test_without_the_header_nothing_changes(api, org):
    # given the v2 issue, which is not idempotent by itself
    body = loyalty_setup(org)
    # when it is sent twice without a key
    responses = [send(api, "post", v2_issue_url(), body, key=None) for _ in range(2)]
    # then it issues twice, as before, and no key is stored
    assert [r.status_code for r in responses] == [200, 200]
    assert (
        responses[0].json()["sideEffects"][0]["earnedId"] != responses[1].json()["sideEffects"][0]["earnedId"]
    )
    assert LoyaltyEarnedPromotion.objects.count() == 2
    assert not IdempotencyKey.objects.exists()
    assert "Idempotent-Replayed" not in responses[1]


def test_a_new_key_is_a_new_request(api, org):
    body = loyalty_setup(org)
    first = send(api, "post", v2_issue_url(), body, key="first")
    second = send(api, "post", v2_issue_url(), body, key="second")
    assert first.status_code == second.status_code == 200
    assert first.content != second.content
    assert LoyaltyEarnedPromotion.objects.count() == 2


def test_the_key_with_another_request_is_422_and_writes_nothing(api, org):
    # given a customer created under a key
    url = "/api_gateway/v1/promotions/customers"
    assert send(api, "post", url, {"mobile": "919812345678"}).status_code == 201
    promotion = PromotionFactory(org=org, start_date=timezone.now() + dt.timedelta(days=1))
    before = snapshot()

    # when the key comes back with another body, on another path, or with another method
    other_body = send(api, "post", url, {"mobile": "919812345679"})
    other_path = send(api, "post", "/api_gateway/v1/promotions", promotion_body())
    other_method = send(api, "put", f"/api_gateway/v1/promotions/{promotion.pk}", {"priority": 2})

    # then each is refused with 422 in the JSON envelope, and nothing is written
    for response in (other_body, other_path, other_method):
        assert response.status_code == 422
        assert response.json() == {
            "errors": [
                {
                    "code": 4221,
                    "message": "This Idempotency-Key was already used for a different request (another "
                    "body, query, method or path); send a new key.",
                }
            ]
        }
    assert snapshot() == before


def test_v2_the_key_with_another_query_is_422_in_the_v2_envelope(api, org):
    body = loyalty_setup(org)
    CustomerFactory(org=org, mobile="18767431755")
    assert send(api, "post", v2_issue_url(), body).status_code == 200

    response = send(api, "post", v2_issue_url(identifierValue="18767431755"), body)

    assert response.status_code == 422
    assert response.json()["warnings"] == []
    assert [(e["status"], e["code"]) for e in response.json()["errors"]] == [(False, 4221)]
    assert LoyaltyEarnedPromotion.objects.count() == 1


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, '"' + "x" * 256 + '"', "two words", 'a"b', "back\\slash", '"unbalanced', '""', "café"],
    ids=["empty", "256", "quoted-256", "space", "quote", "backslash", "unbalanced", "empty-quoted", "latin1"],
)
def test_a_malformed_key_is_400_and_nothing_is_written(api, org, key):
    body = loyalty_setup(org)
    response = send(api, "post", v2_issue_url(), body, key=key)
    assert response.status_code == 400
    assert codes(response) == [400]
    assert "Idempotency-Key must be 1 to 255" in response.json()["errors"][0]["message"]
    assert not LoyaltyEarnedPromotion.objects.exists() and not IdempotencyKey.objects.exists()


def test_keys_of_255_characters_work_and_quotes_are_the_draft_s_form_of_the_same_key(api, org):
    body = loyalty_setup(org)
    long_key = "k" * 255
    first = send(api, "post", v2_issue_url(), body, key=long_key)
    quoted = send(api, "post", v2_issue_url(), body, key=f'"{long_key}"')
    assert first.status_code == quoted.status_code == 200
    assert quoted.content == first.content and quoted["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.get().key == long_key
    assert LoyaltyEarnedPromotion.objects.count() == 1


def test_invalid_input_is_not_kept_so_the_corrected_request_can_use_the_key(api, org):
    url = "/api_gateway/v1/promotions/customers"
    # given a request refused for invalid input under a key
    refused = send(api, "post", url, {"mobile": "12"})
    assert (refused.status_code, codes(refused)) == (400, [400])
    # when the corrected request comes with the same key
    corrected = send(api, "post", url, {"mobile": "919812345678"})
    # then it runs (no 422), and its answer is the one kept
    assert corrected.status_code == 201 and "Idempotent-Replayed" not in corrected
    assert send(api, "post", url, {"mobile": "919812345678"}).content == corrected.content
    assert Customer.objects.count() == 1


def test_v2_parameter_checks_are_not_kept(api, org):
    body = loyalty_setup(org)
    missing = send(api, "post", "/v2/promotion/issue?identifierName=mobile", body)
    assert missing.status_code == 400 and missing.json()["errors"][0]["code"] == 11013
    assert send(api, "post", v2_issue_url(), body).status_code == 200
    assert LoyaltyEarnedPromotion.objects.count() == 1


def test_a_refusal_by_a_rule_is_kept_and_replayed(api, org):
    # given a reversal refused because the transaction is not recorded (404), under a key
    url = "/api_gateway/v1/promotions/redemptions/reverse"
    refused = send(api, "post", url, {"transactionIdentifier": "T-9"})
    assert (refused.status_code, codes(refused)) == (404, [404])
    # and the transaction recorded since
    customer, promotion = CustomerFactory(org=org), PromotionFactory(org=org, type="POS")
    assert redeem(api, redemption_body(customer, txn="T-9", redemptions=[line(promotion)])).status_code == 200

    # when the client retries with the same key
    retry = send(api, "post", url, {"transactionIdentifier": "T-9"})

    # then the first answer is replayed: a key stands for one attempt, its outcome final
    assert (retry.status_code, retry.content, retry["Idempotent-Replayed"]) == (404, refused.content, "true")
    assert not RedemptionReversal.objects.exists()
    # and a new key reverses it
    assert send(api, "post", url, {"transactionIdentifier": "T-9"}, key="another").status_code == 200


def test_the_v2_warning_is_kept_as_the_200_it_is(api, org):
    body = loyalty_setup(org, active=False)
    warned = send(api, "post", v2_issue_url(), body)
    assert warned.status_code == 200 and warned.json()["warnings"][0]["code"] == 8890
    LoyaltyPromotion.objects.update(active=True)
    retry = send(api, "post", v2_issue_url(), body)
    assert (retry.content, retry["Idempotent-Replayed"]) == (warned.content, "true")
    assert not LoyaltyEarnedPromotion.objects.exists()


def test_keys_belong_to_their_api_client(api, org):
    # given a key used by one client
    url = "/api_gateway/v1/promotions/customers"
    assert send(api, "post", url, {"mobile": "919812345678"}).status_code == 201
    # when another client of the org, and one of another org, use the same key with their own bodies
    for client_org in (org, OrganizationFactory()):
        other = ApiClientFactory(org=client_org)
        other_api = APIClient()
        other_api.credentials(HTTP_AUTHORIZATION=basic_auth(other.username, other.plain_secret))
        response = send(other_api, "post", url, {"mobile": "919800000042"})
        # then each runs as its own request: no 422, no replay of the first client's answer
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Customer.objects.filter(mobile="919800000042").count() == 2
    assert IdempotencyKey.objects.filter(key=KEY).count() == 3


def test_a_key_past_72_hours_is_a_new_key(api, org):
    # given a customer created under a key 73 hours ago
    url = "/api_gateway/v1/promotions/customers"
    assert send(api, "post", url, {"mobile": "919812345678"}).status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=73))
    # when the key comes again with another body
    response = send(api, "post", url, {"mobile": "919812345679"})
    # then it runs, and the key now keeps the new answer
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    kept = IdempotencyKey.objects.get()
    assert kept.response_body.encode() == response.content
    assert kept.created_at > timezone.now() - dt.timedelta(minutes=1)


def test_a_key_within_72_hours_is_still_kept(api, org):
    url = "/api_gateway/v1/promotions/customers"
    assert send(api, "post", url, {"mobile": "919812345678"}).status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=71))
    assert send(api, "post", url, {"mobile": "919812345679"}).status_code == 422


def test_schema_documents_the_header_and_the_409_and_422(db):
    schema = APIClient().get("/api/schema/?format=json").json()
    operations = [
        ("/api_gateway/v1/promotions", "post"),  # create, listed once: without the trailing slash
        ("/api_gateway/v1/promotions/{promotion_id}", "put"),
        ("/api_gateway/v1/promotions/customers", "post"),
        ("/api_gateway/v1/promotions/revokeEarn", "post"),
        ("/v2/promotion/issue", "post"),
        ("/api_gateway/v1/promotions/redemptions/reverse", "post"),
    ]
    for path, method in operations:
        operation = schema["paths"][path][method]
        header = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header and header[0]["in"] == "header" and not header[0].get("required"), path
        assert "4091" in operation["responses"]["409"]["description"], path
        assert "4221" in operation["responses"]["422"]["description"], path
    # and a write with a natural key does not offer it
    redeem_operation = schema["paths"]["/api_gateway/v1/promotions/redemptions"]["post"]
    assert all(p["name"] != "Idempotency-Key" for p in redeem_operation.get("parameters", []))


# --- Real concurrency (PostgreSQL row locks) ----------------------------------------------------------


def wait_for_lock_waiter(timeout: float = 10.0) -> None:
    """Wait until a backend of this database waits on a lock (the request held by the test's lock)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the first request never waited on the customer's lock")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_first_request_is_in_flight_is_409():
    # given a v2 issue under a key, held in flight: the test locks the customer row it needs
    org = OrganizationFactory()
    body = loyalty_setup(org)
    client = ApiClientFactory(org=org)
    auth = basic_auth(client.username, client.plain_secret)
    customer_locked, release = threading.Event(), threading.Event()
    first: dict = {}

    def hold_customer():
        from django.db import transaction

        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(org=org, mobile="18767431754")
                customer_locked.set()
                release.wait(20)
        finally:
            connection.close()

    def first_request():
        try:
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=auth)
            first["response"] = send(api, "post", v2_issue_url(), body)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_customer)
    holder.start()
    assert customer_locked.wait(10)
    requester = threading.Thread(target=first_request)
    requester.start()
    try:
        wait_for_lock_waiter()
        # the key's row is committed, without an answer yet, and nothing is issued
        assert IdempotencyKey.objects.get().completed_at is None
        assert not LoyaltyEarnedPromotion.objects.exists()

        # when the client retries with the same key
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=auth)
        started = time.monotonic()
        retry = send(api, "post", v2_issue_url(), body)

        # then it is refused at once with 409 in the v2 envelope, without waiting for the first
        assert time.monotonic() - started < 5
        assert retry.status_code == 409
        assert [(e["code"], e["status"]) for e in retry.json()["errors"]] == [(4091, False)]
    finally:
        release.set()
        holder.join()
        requester.join()

    # and once the first completes, a retry replays its answer
    assert first["response"].status_code == 200
    replay = send(api, "post", v2_issue_url(), body)
    assert (replay.status_code, replay.content) == (200, first["response"].content)
    assert LoyaltyEarnedPromotion.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_requests_with_one_key_have_exactly_one_effect():
    # given a write with no natural key (every v2 issue of a LOYALTY promotion issues once more)
    org = OrganizationFactory()
    body = loyalty_setup(org)

    # when 50 threads, each with its own connection, send it with one key at the same moment
    def call(api, _):
        response = send(api, "post", v2_issue_url(), body)
        return response.status_code, response.content, response.get("Idempotent-Replayed")

    results = run_concurrently(50, call, org=org)

    # then exactly one issue happened
    assert LoyaltyEarnedPromotion.objects.filter(org=org).count() == 1
    assert AuditEvent.objects.filter(org=org, action__startswith="loyalty_promotion.").count() == 1
    # and every other request got its answer replayed byte for byte, or 409 while it was in flight
    issued = [content for status, content, replayed in results if status == 200 and not replayed]
    replayed = [content for status, content, replayed in results if status == 200 and replayed]
    in_flight = [content for status, content, _ in results if status == 409]
    assert len(issued) == 1
    assert set(replayed) <= set(issued)
    assert len(issued) + len(replayed) + len(in_flight) == 50
    assert Counter(f"{status}" for status, _, _ in results).keys() <= {"200", "409"}
    assert all(b'"code":4091' in content for content in in_flight)
