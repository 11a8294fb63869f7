"""`Redemption.till_code`: the till a redemption was recorded at, as evaluate resolves it.

The X-CAP-API-ATTRIBUTION-TILL-CODE header names a till of the org by its code (blank reads as not
sent; a code naming none is 400 with code 4001 and nothing is written); without it, the API client's
default till; without one, ''. Both paths: the one-statement function (PostgreSQL) and the general path
(the ORM: SQLite, the capped strategy), here called directly, and the API on whichever path the
database takes.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promotions.audit import Actor
from promotions.models import ApiClient, PromotionType
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.models import Redemption
from redemptions.services import (
    LineInput,
    RedemptionInput,
    redemption_record_general,
    redemption_record_one_statement,
)
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    TillFactory,
)
from tests.redemptions.support import body, line, redeem

_transactions = itertools.count(1)

PATHS = [
    pytest.param(redemption_record_one_statement, id="one-statement", marks=pytest.mark.postgres_only),
    pytest.param(redemption_record_general, id="general"),
]


@pytest.fixture
def shop(org):
    """A POS promotion, a customer, two tills of the org (one the client's default) and another org's."""
    return {
        "promotion": PromotionFactory(org=org, type=PromotionType.POS),
        "customer": CustomerFactory(org=org),
        "till": TillFactory(org=org, code="front.desk"),
        "default": TillFactory(org=org, code="back.office"),
        "foreign": TillFactory(org=OrganizationFactory(), code="elsewhere"),
    }


def record(path, org, shop, *, client: ApiClient, till_code: str | None):
    transaction = f"TXN-TILL-{next(_transactions)}"
    data = RedemptionInput(
        customer_lookup=("id", str(shop["customer"].pk)),
        transaction_identifier=transaction,
        transaction_number=f"BILL-{transaction}",
        transaction_date=timezone.now() - dt.timedelta(minutes=5),
        amount=Decimal(1000),
        lines=[
            LineInput(
                level="LINEITEM",
                position=0,
                promotion_id=shop["promotion"].pk,
                sku="SKU-1",
                earned_promotion_id=None,
                redemption_count=1,
                discount=Decimal(10),
                discount_applied_on_quantity=Decimal(1),
                promotion_applied_on_quantity=Decimal(1),
            )
        ],
        till_code=till_code,
    )
    outcome = path(org=org, data=data, fingerprint="f" * 64, actor=Actor.system("test"), api_client=client)
    stored = Redemption.objects.get(org=org, transaction_identifier=transaction).till_code
    assert outcome.redemption.till_code == stored
    return stored


@pytest.mark.parametrize("path", PATHS)
def test_the_header_names_the_till_and_wins_over_the_default(path, org, shop):
    # given: a client whose default till is another one
    client = ApiClientFactory(org=org, default_till=shop["default"])
    # when / then: the header's till, spaces around it stripped
    assert record(path, org, shop, client=client, till_code="front.desk") == "front.desk"
    assert record(path, org, shop, client=client, till_code="  front.desk ") == "front.desk"


@pytest.mark.parametrize("path", PATHS)
def test_without_the_header_the_clients_default_till(path, org, shop):
    # given
    client = ApiClientFactory(org=org, default_till=shop["default"])
    # when / then: not sent, or sent blank
    assert record(path, org, shop, client=client, till_code=None) == "back.office"
    assert record(path, org, shop, client=client, till_code="  ") == "back.office"


@pytest.mark.parametrize("path", PATHS)
def test_no_header_and_no_default_till_is_empty(path, org, shop):
    # given
    client = ApiClientFactory(org=org)
    # when / then
    assert record(path, org, shop, client=client, till_code=None) == ""


@pytest.mark.parametrize("path", PATHS)
def test_a_default_till_of_another_org_counts_as_none(path, org, shop):
    # given: a default till of another org (the admin refuses one; written behind its back)
    client = ApiClientFactory(org=org)
    ApiClient.objects.filter(pk=client.pk).update(default_till=shop["foreign"])
    client.refresh_from_db()
    # when / then
    assert record(path, org, shop, client=client, till_code=None) == ""


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("code", ["no.such.till", "elsewhere", "FRONT.DESK", "x" * 101, "front\x00desk"])
def test_an_unknown_till_is_4001_and_nothing_is_written(path, org, shop, code):
    # given: a client with a default till (an unknown header never falls back to it)
    client = ApiClientFactory(org=org, default_till=shop["default"])
    # when
    with pytest.raises(PromotionError) as refused:
        record(path, org, shop, client=client, till_code=code)
    # then
    assert refused.value.code == ErrorCode.TILL_CODE_UNKNOWN
    assert refused.value.http_status == 400
    assert not Redemption.objects.filter(org=org).exists()


def redeem_at(api, shop, txn: str, till_code: str):
    """A redemption of the shop's POS promotion sent at the till of `till_code` (the header)."""
    data = body(shop["customer"], txn=txn, line_items=[line(shop["promotion"])])
    return api.post(
        "/api_gateway/v1/promotions/redemptions",
        data,
        format="json",
        HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE=till_code,
    )


def test_the_api_records_the_headers_till(api, org, shop):
    # when
    response = redeem_at(api, shop, "TXN-API-TILL", "front.desk")
    # then
    assert response.status_code == 200, response.content
    assert Redemption.objects.get(org=org, transaction_identifier="TXN-API-TILL").till_code == "front.desk"


def test_the_api_answers_an_unknown_till_as_evaluate_does(api, org, shop):
    # when: another org's till
    response = redeem_at(api, shop, "TXN-API-UNKNOWN", "elsewhere")
    # then: 400, 4001, the words evaluate answers, nothing written
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == 4001
    assert "X-CAP-API-ATTRIBUTION-TILL-CODE: 'elsewhere'" in error["message"]
    assert not Redemption.objects.filter(org=org).exists()


def test_the_api_without_a_till(api, org, shop):
    # given: the client has no default till, the request no header
    response = redeem(api, body(shop["customer"], txn="TXN-API-NONE", line_items=[line(shop["promotion"])]))
    # then
    assert response.status_code == 200, response.content
    assert Redemption.objects.get(org=org, transaction_identifier="TXN-API-NONE").till_code == ""


# --- A known (cached) client, PostgreSQL -------------------------------------------------------------


@pytest.mark.postgres_only
def test_a_known_client_at_a_till_is_still_one_statement(api, org, shop):
    # given: the client's first redemption (its client cached)
    assert redeem_at(api, shop, "TXN-K1", "front.desk").status_code == 200
    # when
    with CaptureQueriesContext(connection) as captured:
        response = redeem_at(api, shop, "TXN-K2", "front.desk")
    # then: the till resolved inside the one statement
    assert response.status_code == 200, response.content
    sql = [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]
    assert len(sql) == 1 and sql[0].startswith("SELECT redemption_record_v1("), sql
    assert Redemption.objects.get(org=org, transaction_identifier="TXN-K2").till_code == "front.desk"


@pytest.mark.postgres_only
@pytest.mark.parametrize("code", ["elsewhere", "front\x00desk"])
def test_a_deactivated_known_client_learns_nothing_from_a_till_code(api, org, shop, code):
    # given: a known client, then deactivated
    assert redeem_at(api, shop, "TXN-D1", "front.desk").status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(is_active=False)
    # when: it names a till that does not exist
    response = redeem_at(api, shop, "TXN-D2", code)
    # then: 401, not the till's 4001
    assert response.status_code == 401, response.content
