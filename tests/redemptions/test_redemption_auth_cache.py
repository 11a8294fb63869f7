"""The hot paths: a redemption in one statement, the API client verified inside it; evaluate likewise.

After a client's first redemption in a process, its next ones are authenticated from the process's
cache and `redemption_record_v1` (for evaluate: the evaluation's insert) verifies the client inside
the write. A client deactivated, given
another secret or read-only access, or whose org changed the settings the write reads, is refused or
served afresh on its very next request: the cache never outlives a change.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from promotions.models import ApiClient, RedemptionStrategy
from promotions.services import organization_rules_version_bump
from promotions_site.client_secrets import secret_hash_make
from redemptions.models import Evaluation, Redemption
from tests.factories import EarnedPromotionFactory, PromotionFactory
from tests.redemptions.support import URL, body, line, redeem
from tests.redemptions.test_evaluation_create import CART_100_OFF, CART_OVER_1500, cart, evaluate

pytestmark = pytest.mark.postgres_only


def statements(api, data) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = redeem(api, data)
    return response, [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]


def test_a_redemption_is_one_statement_once_its_client_is_known(api, customer, pos_promotion):
    first, _ = statements(api, body(customer, txn="T1", line_items=[line(pos_promotion)]))
    assert first.status_code == 200, first.json()
    response, sql = statements(api, body(customer, txn="T2", line_items=[line(pos_promotion)]))
    assert response.status_code == 200, response.json()
    assert len(sql) == 1, sql
    assert sql[0].startswith("SELECT redemption_record_v1("), sql[0][:80]
    assert response.json()["data"]["lineItems"][0]["promotionId"] == pos_promotion.pk


def _prepared() -> dict[str, int]:
    """The statements prepared on this connection, each with how many times it ran (pg_prepared_statements)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def test_the_statement_is_prepared_on_the_connection_once(api, customer, pos_promotion):
    for n in range(3):
        assert redeem(api, body(customer, txn=f"P{n}", line_items=[line(pos_promotion)])).status_code == 200
    prepared = {
        sql: runs for sql, runs in _prepared().items() if sql.startswith("SELECT redemption_record_v1(")
    }
    assert list(prepared.values()) == [3], prepared  # prepared at the first redemption, run by all three
    assert Redemption.objects.filter(transaction_identifier__startswith="P").count() == 3


def test_behind_a_transaction_mode_pooler_nothing_is_prepared(api, customer, pos_promotion, settings):
    settings.DATABASE_POOLER = "transaction"
    for n in range(3):
        assert redeem(api, body(customer, txn=f"Q{n}", line_items=[line(pos_promotion)])).status_code == 200
    assert not [sql for sql in _prepared() if "redemption_record_v1" in sql]
    assert Redemption.objects.filter(transaction_identifier__startswith="Q").count() == 3


def test_a_wallet_redemption_names_the_instance_the_statement_took(api, org, customer, wallet_promotion):
    first, second = (
        EarnedPromotionFactory(org=org, customer=customer, promotion=wallet_promotion) for _ in range(2)
    )
    answers = [
        redeem(api, body(customer, txn=f"W{n}", line_items=[line(wallet_promotion)])) for n in range(2)
    ]
    taken = [answer.json()["data"]["lineItems"][0]["earnedPromotionId"] for answer in answers]
    assert sorted(taken) == sorted([first.pk, second.pk])


@pytest.mark.parametrize(
    "change, status",
    [
        ({"is_active": False}, 401),
        ({"secret_hash": secret_hash_make("another secret")}, 401),
        ({"access": ApiClient.Access.READ}, 403),
    ],
)
def test_a_client_changed_is_refused_on_its_next_redemption(api, customer, pos_promotion, change, status):
    assert redeem(api, body(customer, txn="T1", line_items=[line(pos_promotion)])).status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(**change)
    response = redeem(api, body(customer, txn="T2", line_items=[line(pos_promotion)]))
    assert response.status_code == status, response.json()
    assert not Redemption.objects.filter(transaction_identifier="T2").exists()


def test_an_org_setting_changed_is_read_afresh(api, org, customer, pos_promotion):
    assert redeem(api, body(customer, txn="T1", line_items=[line(pos_promotion)])).status_code == 200
    org.redemption_strategy = RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED
    org.save(update_fields=["redemption_strategy"])
    # The capped strategy wants the cart: the cached org (not capped) would have recorded this.
    response = redeem(api, body(customer, txn="T2", line_items=[line(pos_promotion)]))
    assert response.status_code == 400, response.json()
    assert "cartItems" in response.json()["errors"][0]["message"]


def test_the_list_on_the_same_path_verifies_every_request(api, customer, pos_promotion):
    assert redeem(api, body(customer, txn="T1", line_items=[line(pos_promotion)])).status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(is_active=False)
    assert api.get(URL).status_code == 401


# --- Evaluate: the same cache, verified by the evaluation's insert ------------------------------------


def test_an_evaluation_of_a_known_client_is_refused_once_it_is_deactivated(api, customer):
    assert evaluate(api, cart(customer)).status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(is_active=False)
    response = evaluate(api, cart(customer))
    assert response.status_code == 401, response.json()
    # Nor does a refusal tell a deactivated client anything (an unknown customer: 401, not 404).
    assert evaluate(api, cart(customer, customerId=999_999_999)).status_code == 401


@pytest.mark.parametrize(
    "change, status",
    [({"secret_hash": secret_hash_make("another secret")}, 401), ({"is_active": False}, 401)],
)
def test_an_evaluation_of_a_changed_client_stores_nothing(api, customer, change, status):
    assert evaluate(api, cart(customer)).status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(**change)

    response = evaluate(api, cart(customer))

    assert response.status_code == status, response.json()
    assert Evaluation.objects.count() == 1  # evaluation_record_v1 refused the stale client's insert


def test_an_org_rounding_changed_is_read_afresh_by_the_next_evaluation(api, org, customer):
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    organization_rules_version_bump(org=org)
    assert evaluate(api, cart(customer)).status_code == 200
    org.rounding_precision = 0
    org.save(update_fields=["rounding_precision"])

    response = evaluate(api, cart(customer))

    # The cached state no longer holds: the client and its org were read afresh, and both stored.
    assert response.status_code == 200, response.json()
    assert Evaluation.objects.count() == 2


def test_a_promotion_created_applies_to_the_next_evaluation(api, org, customer):
    assert evaluate(api, cart(customer)).json()["data"]["appliedPromotions"] == []
    PromotionFactory(org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF)
    organization_rules_version_bump(org=org)  # as every write to a promotion does
    applied = evaluate(api, cart(customer)).json()["data"]["appliedPromotions"]
    assert [promotion["discount"] for promotion in applied] == ["100.000000"]


# --- The wallet read: the same cache, verified by the customer's query --------------------------------


def wallet(api, customer_id):
    return api.get(f"/api_gateway/v1/promotions/customer/{customer_id}")


def test_a_wallet_read_of_a_known_client_is_one_statement(api, org, customer, wallet_promotion):
    EarnedPromotionFactory(org=org, customer=customer, promotion=wallet_promotion)
    assert wallet(api, customer.pk).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = wallet(api, customer.pk)
    assert response.status_code == 200
    assert [entry["promotionId"] for entry in response.json()["data"]] == [wallet_promotion.pk]
    sql = [query["sql"] for query in captured.captured_queries]
    assert len(sql) == 1, sql
    assert "promotions_apiclient" in sql[0] and "wallets_earnedpromotion" in sql[0]


def test_a_wallet_read_of_a_deactivated_client_is_refused(api, customer):
    assert wallet(api, customer.pk).status_code == 200
    ApiClient.objects.filter(pk=api.api_client.pk).update(is_active=False)
    assert wallet(api, customer.pk).status_code == 401
    assert wallet(api, 999_999_999).status_code == 401


def test_an_unknown_customer_is_404_to_a_known_client(api, customer):
    assert wallet(api, customer.pk).status_code == 200
    assert wallet(api, 999_999_999).status_code == 404
    assert wallet(api, customer.pk).status_code == 200
