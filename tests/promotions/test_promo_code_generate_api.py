"""POST /api_gateway/v1/promotions/{promotionId}/codes/generate and the batch's GET and cancel."""

from __future__ import annotations

import pytest

from promotions.models import PromoCode, PromoCodeBatch, PromotionType
from tests.factories import PromotionFactory


@pytest.fixture
def code_promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CODE)


def url(promotion, *rest):
    return f"/api_gateway/v1/promotions/{promotion.pk}/codes/" + "/".join(rest)


def test_generate_answers_the_batch_and_writes_the_codes(transactional_db, api, code_promotion):
    # when (autocommit, as in production: a small batch runs before the answer)
    response = api.post(
        url(code_promotion, "generate"),
        {"count": 250, "pattern": "spring-####-????", "requestId": "spring-1"},
        format="json",
    )
    # then
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert response.json()["errors"] == []
    assert (data["status"], data["done"]) == ("DONE", 250)
    assert (data["total"], data["requestId"], data["kind"]) == (250, "spring-1", "GENERATE")
    assert PromoCode.objects.filter(promotion=code_promotion).count() == 250
    # and the batch's GET shows it finished
    progress = api.get(url(code_promotion, "batches", str(data["id"]))).json()["data"]
    assert (progress["status"], progress["done"], progress["failed"]) == ("DONE", 250, 0)
    assert progress["finishedOn"] is not None
    # the same request again: the same batch, no new code
    again = api.post(
        url(code_promotion, "generate"),
        {"count": 250, "pattern": "spring-####-????", "requestId": "spring-1"},
        format="json",
    )
    assert again.json()["data"]["id"] == data["id"]
    assert PromoCode.objects.count() == 250


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"count": 10, "length": 4}, 400, 903),
        ({"count": 10, "length": 41}, 400, 904),
        ({"count": 10, "length": 10, "prefix": "a b"}, 400, 902),
        ({"count": 1000, "length": 5, "charset": "NUMERIC"}, 400, 4002),
        ({"count": 0, "length": 10}, 400, 400),
        ({"length": 10}, 400, 400),
        ({"count": 10, "length": 10, "charset": "HEX"}, 400, 400),
        ({"count": 10, "pattern": "#####", "length": 5}, 400, 400),
    ],
)
def test_errors_in_the_envelope(api, code_promotion, body, status, code):
    response = api.post(url(code_promotion, "generate"), body, format="json")
    assert response.status_code == status
    errors = response.json()["errors"]
    assert errors[0]["code"] == code and errors[0]["message"]
    assert set(response.json()) == {"errors"}
    assert not PromoCodeBatch.objects.exists()


def test_request_id_reused_with_other_params(api, code_promotion):
    api.post(url(code_promotion, "generate"), {"count": 5, "length": 12, "requestId": "x"}, format="json")
    response = api.post(
        url(code_promotion, "generate"), {"count": 6, "length": 12, "requestId": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 4003


def test_not_a_code_promotion_and_unknown_promotion(api, org):
    promotion = PromotionFactory(org=org, type=PromotionType.POS)
    response = api.post(url(promotion, "generate"), {"count": 5, "length": 12}, format="json")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, 707)
    response = api.post(
        "/api_gateway/v1/promotions/nope/codes/generate", {"count": 5, "length": 12}, format="json"
    )
    assert response.status_code == 404


def test_read_only_client_cannot_generate(read_api, code_promotion):
    response = read_api.post(url(code_promotion, "generate"), {"count": 5, "length": 12}, format="json")
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == 403


def test_other_promotion_batch_is_404_and_cancel(api, code_promotion, org):
    response = api.post(url(code_promotion, "generate"), {"count": 5, "length": 12}, format="json")
    batch_id = str(response.json()["data"]["id"])
    other = PromotionFactory(org=org, type=PromotionType.CODE)
    assert api.get(url(other, "batches", batch_id)).status_code == 404
    assert api.get(url(code_promotion, "batches", "99999999999999999999999")).status_code == 404
    # the batch never ran (no commit in this test): it can be cancelled, once
    cancelled = api.post(url(code_promotion, "batches", batch_id, "cancel"))
    assert cancelled.json()["data"]["status"] == "CANCELLED"
    again = api.post(url(code_promotion, "batches", batch_id, "cancel"))
    assert (again.status_code, again.json()["errors"][0]["code"]) == (409, 409)
