"""Throttling of promo-code guesses: `code_guess_check` / `code_guess_record` directly, and through the
code look-up and link APIs (docs/code-link.md, "Guessing codes")."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import REGISTRY

from promotions.code_guard import CodeGuessLocked, code_fingerprint, code_guess_check, code_guess_record
from promotions.models import PromoCode, PromotionType
from tests.factories import ApiClientFactory, CustomerFactory, PromotionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.CODE_GUESS_LIMIT_PER_CLIENT = "5/m"
    settings.CODE_GUESS_LIMIT_PER_CUSTOMER = "3/m"


def failures(scope: str) -> float:
    return REGISTRY.get_sample_value("promotions_code_guess_failures_total", {"scope": scope}) or 0.0


def refused(scope: str) -> float:
    return REGISTRY.get_sample_value("promotions_code_guess_refused_total", {"scope": scope}) or 0.0


def test_a_client_is_locked_out_once_its_failures_fill_the_window(org):
    client = ApiClientFactory(org=org)
    before = failures("client")
    code_guess_record(client, None, 4)
    code_guess_check(client)  # 4 of 5: one more fits
    code_guess_record(client, None, 1)

    with pytest.raises(CodeGuessLocked) as locked:
        code_guess_check(client)

    assert locked.value.status_code == 429
    assert 1 <= locked.value.wait <= 60
    assert failures("client") - before == 5
    # another client is not locked out
    code_guess_check(ApiClientFactory(org=org))


def test_a_customer_is_locked_out_across_clients(org, other_org):
    first, second = ApiClientFactory(org=org), ApiClientFactory(org=org)
    code_guess_record(first, 42, 2)
    code_guess_record(second, 42, 1)
    before = refused("customer")

    with pytest.raises(CodeGuessLocked):
        code_guess_check(first, 42)
    with pytest.raises(CodeGuessLocked):
        code_guess_check(ApiClientFactory(org=org), 42)
    # the clients themselves (3 and 1 failures of 5) still look codes up for other customers
    code_guess_check(first, 43)
    code_guess_check(second)
    assert refused("customer") - before == 2
    # and a client of another org naming the same customer id is not locked out (its org's customer)
    code_guess_check(ApiClientFactory(org=other_org), 42)


def test_recording_no_failure_counts_nothing(org):
    client = ApiClientFactory(org=org)
    for _ in range(20):
        code_guess_record(client, 7, 0)
    code_guess_check(client, 7)


def test_the_window_slides(org, settings):
    settings.CODE_GUESS_LIMIT_PER_CLIENT = "2/2s"
    client = ApiClientFactory(org=org)
    code_guess_record(client, None, 2)
    with pytest.raises(CodeGuessLocked):
        code_guess_check(client)
    time.sleep(4.1)  # two windows later nothing is left of the failures
    code_guess_check(client)


def test_a_limit_turned_off_checks_nothing(org, settings):
    settings.CODE_GUESS_LIMIT_PER_CLIENT = "off"
    settings.CODE_GUESS_LIMIT_PER_CUSTOMER = "off"
    client = ApiClientFactory(org=org)
    code_guess_record(client, 1, 1000)
    code_guess_check(client, 1)


def test_failures_are_logged_without_the_code_in_clear(org, caplog):
    client = ApiClientFactory(org=org)
    with caplog.at_level(logging.INFO, logger="promotions.code_guard"):
        code_guess_record(client, 9, 1, codes=["SECRETCODE99"])
    [record] = [r for r in caplog.records if r.name == "promotions.code_guard"]
    assert record.codes == [code_fingerprint("SECRETCODE99")]
    assert record.codes[0].startswith("SE")
    assert "SECRETCODE99" not in repr(record.__dict__)
    # the fingerprint is stable and tells codes apart
    assert code_fingerprint("SECRETCODE99") == code_fingerprint("SECRETCODE99")
    assert code_fingerprint("SECRETCODE98") != code_fingerprint("SECRETCODE99")


# --- Through the APIs ------------------------------------------------------------------------------


def test_unknown_codes_in_look_ups_lock_the_client_out(api, org):
    promotion = PromotionFactory(org=org, type=PromotionType.CODE)
    PromoCode.objects.create(org=org, promotion=promotion, code="REAL1")
    url = "/api_gateway/v1/promotions/code"

    # found codes count nothing
    for _ in range(6):
        assert api.get(url, {"codes": "REAL1", "mode": "DISCOUNT"}).status_code == 200
    # 5 unknown codes in one look-up fill the window
    assert api.get(url, {"codes": "A1,A2,A3,A4,A5,REAL1", "mode": "DISCOUNT"}).status_code == 200

    response = api.get(url, {"codes": "REAL1", "mode": "DISCOUNT"})
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["errors"][0]["code"] == 429


def test_links_of_unknown_codes_lock_the_customer_out(api, org):
    promotion = PromotionFactory(org=org, type=PromotionType.CODE)
    PromoCode.objects.create(org=org, promotion=promotion, code="REAL2")
    customer, other = CustomerFactory(org=org), CustomerFactory(org=org)
    url = "/api_gateway/v1/promotions/code/link"

    def link(customer_id, code):
        return api.post(url, {"customerId": customer_id, "code": code, "mode": "DISCOUNT"}, format="json")

    for guess in ("G1", "G2", "G3"):
        assert link(customer.pk, guess).json()["errors"][0]["code"] == 1001
    # locked out for this customer, even with the right code
    response = link(customer.pk, "REAL2")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert PromoCode.objects.get(code="REAL2").customer_id is None
    # another customer is not (the client has 3 failures of 5)
    assert link(other.pk, "REAL2").status_code == 200
