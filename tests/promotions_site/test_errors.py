"""Every failure class comes back as JSON in the documented envelope, never HTML, never a stray 500."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import timezone
from rest_framework.test import APIClient

from promotions import apis
from promotions.models import AuditEvent
from promotions_site.errors import ErrorCode, PromotionError, flatten_detail
from tests.factories import PromotionFactory


def assert_v1_envelope(response, status: int, code: int) -> list[dict]:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"]
    assert body["errors"] and all(set(e) == {"code", "message"} for e in body["errors"])
    assert body["errors"][0]["code"] == code
    return body["errors"]


def test_unknown_api_url_is_json_404(api):
    assert_v1_envelope(api.get("/api_gateway/v1/nothing/here"), 404, 404)


def test_unknown_v2_url_uses_the_v2_envelope(api):
    response = api.get("/v2/promotion/nothing")
    assert response.status_code == 404
    assert response.json() == {
        "warnings": [],
        "errors": [{"status": False, "code": 404, "message": "Not found."}],
    }


def test_unknown_object_is_json_404(api):
    errors = assert_v1_envelope(api.get("/api_gateway/v1/promotions/ffffffffffffffffffffffff"), 404, 404)
    assert errors[0]["message"] == "Passed promotion is not found"


def test_wrong_method_is_json_405(api, org):
    promotion = PromotionFactory(org=org)
    assert_v1_envelope(api.delete(f"/api_gateway/v1/promotions/{promotion.pk}"), 405, 405)


def test_malformed_json_is_400(db):
    response = APIClient().post("/v3/oauth/token/generate", "{bad json", content_type="application/json")
    errors = assert_v1_envelope(response, 400, 400)
    assert errors[0]["message"].startswith("JSON parse error")


def test_wrong_content_type_is_415(db):
    response = APIClient().post(
        "/v3/oauth/token/generate", "key=a", content_type="application/x-www-form-urlencoded"
    )
    assert_v1_envelope(response, 415, 415)


def test_validation_errors_name_each_field(db):
    response = APIClient().post("/v3/oauth/token/generate", {}, format="json")
    errors = assert_v1_envelope(response, 400, 400)
    assert {e["message"] for e in errors} == {
        "key: This field is required.",
        "secret: This field is required.",
    }


def test_unauthenticated_is_401_and_read_only_write_is_403(read_api, org):
    promotion = PromotionFactory(org=org)
    assert_v1_envelope(APIClient().get(f"/api_gateway/v1/promotions/{promotion.pk}"), 401, 401)
    assert_v1_envelope(read_api.put(f"/api_gateway/v1/promotions/{promotion.pk}/deactivate"), 403, 403)


def test_domain_error_706_for_an_expired_promotion(api, org):
    # given
    promotion = PromotionFactory(
        org=org,
        active=False,
        start_date=timezone.now() - dt.timedelta(days=9),
        end_date=timezone.now() - dt.timedelta(days=1),
    )
    # when
    response = api.put(f"/api_gateway/v1/promotions/{promotion.pk}/activate")
    # then
    assert assert_v1_envelope(response, 400, 706) == [{"code": 706, "message": "Promotion has expired."}]
    promotion.refresh_from_db()
    assert promotion.active is False


def test_domain_error_705_when_the_org_is_full_and_nothing_is_written(api, org):
    # given: an org allowing 2 active promotions, with 2 active and 1 inactive
    org.max_active_promotions = 2
    org.save()
    PromotionFactory.create_batch(2, org=org)
    inactive = PromotionFactory(org=org, active=False)
    # when
    response = api.put(f"/api_gateway/v1/promotions/{inactive.pk}/activate")
    # then
    assert_v1_envelope(response, 400, 705)
    inactive.refresh_from_db()
    assert inactive.active is False
    assert not AuditEvent.objects.filter(action="promotion.activate").exists()


def test_expired_promotions_do_not_count_towards_705(api, org):
    org.max_active_promotions = 1
    org.save()
    PromotionFactory(
        org=org,
        start_date=timezone.now() - dt.timedelta(days=9),
        end_date=timezone.now() - dt.timedelta(days=1),
    )
    inactive = PromotionFactory(org=org, active=False)
    assert api.put(f"/api_gateway/v1/promotions/{inactive.pk}/activate").json() == {
        "data": True,
        "errors": [],
    }
    inactive.refresh_from_db()
    assert inactive.active is True
    event = AuditEvent.objects.get(action="promotion.activate")
    assert event.object_id == inactive.pk and event.actor_name == api.api_client.username and event.request_id


def test_crash_is_json_500_without_details(api, org, monkeypatch):
    # given: a bug deep inside the view
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(apis, "promotion_get", explode)
    # when
    response = api.get("/api_gateway/v1/promotions/abc")
    # then
    errors = assert_v1_envelope(response, 500, 500)
    assert "secret internals" not in errors[0]["message"]


def test_database_outage_is_json_503_with_retry_after(api, monkeypatch):
    def unavailable(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(apis, "promotion_get", unavailable)
    response = api.get("/api_gateway/v1/promotions/abc")
    assert_v1_envelope(response, 503, 503)
    assert response["Retry-After"] == "1"


def test_request_id_is_echoed_or_generated(api):
    assert api.get("/api_gateway/v1/x", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    generated = api.get("/api_gateway/v1/x", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_admin_pages_stay_html(client):
    response = client.get("/admin/nothing/")
    assert response.status_code in (302, 404)
    assert not response.get("Content-Type", "").startswith("application/json")


def test_error_table_is_consistent():
    codes = [int(code) for code in ErrorCode]
    assert len(codes) == len(set(codes))
    for code in ErrorCode:
        assert 200 <= code.http_status < 600 and code.message
    error = PromotionError(ErrorCode.PROMOTION_EXPIRED)
    assert error.as_error() == {"code": 706, "message": "Promotion has expired."} and error.http_status == 400


@pytest.mark.parametrize(
    ("detail", "lines"),
    [
        ({"a": ["x"], "non_field_errors": ["y"]}, ["a: x", "y"]),
        ({"items": [{}, {"id": ["bad"]}]}, ["items[1].id: bad"]),
        (["plain"], ["plain"]),
    ],
)
def test_flatten_detail(detail, lines):
    assert flatten_detail(detail) == lines
