"""Bounded resource use: the body cap (413), JSON depth, every list's cap and every page's cap (400),
free-form JSON size, and the database statement timeout (JSON 503)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from promotions.models import AuditEvent, Promotion, PromotionType
from promotions.schema import PROMOTION_CREATE_EXAMPLE
from promotions_site.limits import RequestTooLarge, json_depth_exceeds, json_text_depth_exceeds
from promotions_site.parsers import BoundedJSONParser
from tests.factories import ApiClientFactory, CustomerFactory, PromotionFactory
from tests.redemptions.support import body as redemption_body
from tests.redemptions.support import line
from wallets.models import EarnedPromotion

PROMOTIONS = "/api_gateway/v1/promotions"
EARN_BULK = "/api_gateway/v1/promotions/earn/bulk"
REVOKE = "/api_gateway/v1/promotions/revokeEarn"
REDEMPTIONS = "/api_gateway/v1/promotions/redemptions"


def errors_of(response, status: int) -> list[str]:
    """The messages of a JSON error answer in the v1 envelope with this status."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and all(e["code"] == status for e in body["errors"])
    return [e["message"] for e in body["errors"]]


# --- Request body size -------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_413_in_json_and_writes_nothing(api, org, customer, settings):
    # given: a 2,000-byte cap and an issueBulk body just over it
    settings.API_MAX_BODY_BYTES = 2000
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    url = f"{PROMOTIONS}/{promotion.pk}/issueBulk?contextId=big"
    ids = [customer.pk] * 50  # under 1,100 bytes whatever the id
    over = json.dumps(ids).ljust(2001)
    # when
    response = api.post(url, over, content_type="application/json")
    # then
    assert errors_of(response, 413) == ["Request body too large: at most 2000 bytes."]
    assert not EarnedPromotion.objects.exists()
    # and a body of exactly the cap is read and served
    assert api.post(url, json.dumps(ids).ljust(2000), content_type="application/json").status_code == 200


def test_the_cap_holds_before_authentication_and_on_v2(db, settings):
    # The body is refused before anything reads it, even without credentials; v2 gets its envelope.
    from rest_framework.test import APIClient

    settings.API_MAX_BODY_BYTES = 100
    response = APIClient().post(
        "/v2/promotion/issue?identifierName=mobile&identifierValue=1&source=INSTORE",
        {"programId": 1, "promotionId": 1, "pad": "x" * 200},
        format="json",
    )
    assert response.status_code == 413
    assert response.json() == {
        "warnings": [],
        "errors": [{"status": False, "code": 413, "message": "Request body too large: at most 100 bytes."}],
    }


def test_the_json_parser_reads_no_more_than_the_cap(settings):
    # Django bounds the stream by Content-Length, which the middleware caps; the parser caps what it
    # reads itself too, for a server that hands over a stream without that bound.
    settings.API_MAX_BODY_BYTES = 10
    parser = BoundedJSONParser()
    assert parser.parse(io.BytesIO(b'["123456"]')) == ["123456"]
    with pytest.raises(RequestTooLarge):
        parser.parse(io.BytesIO(b'["1234567"]'))


@pytest.mark.parametrize("depth", [33, 100_000])
def test_json_nested_too_deep_is_400_not_500(api, depth):
    # 100,000 levels would exhaust the recursion limit of Python's JSON decoder.
    response = api.post(EARN_BULK, "[" * depth + "]" * depth, content_type="application/json")
    assert errors_of(response, 400) == ["JSON parse error - nested more than 32 levels deep."]


# JSON values whose strings are made of the characters that matter to the byte reading: quotes,
# brackets, backslashes, a letter and a non-ASCII one.
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='"[]{}\\aé ', max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='"[]{}\\a', max_size=3), children, max_size=3)
    ),
    max_leaves=30,
)


@given(value=_JSON_VALUES, limit=st.integers(min_value=1, max_value=8), ascii_only=st.booleans())
def test_the_depth_read_off_the_bytes_agrees_with_the_walk(value, limit, ascii_only):
    # given the value's JSON text, as a client may send it (escaped or not, spaced or not)
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    # when the parser reads its depth off the bytes
    read = json_text_depth_exceeds(raw, limit)
    # then it agrees with the walk of the parsed value, or says it cannot tell
    assert read is None or read == json_depth_exceeds(value, limit)
    if "\\" not in raw.decode() and not any(set(text) & set("[]{}") for text in _strings(value)):
        assert read is not None  # it tells whenever no string holds a bracket and nothing is escaped


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


@pytest.mark.parametrize("depth", [31, 32, 33, 5000])
def test_the_depth_read_off_the_bytes_counts_every_level(depth):
    raw = ('{"a": [' * depth + "1" + "]}" * depth).encode()
    assert json_text_depth_exceeds(raw) is (2 * depth > 32)
    assert json_text_depth_exceeds(b'["[", ' + b"[" * 40 + b"]" * 40 + b"]") is None  # a bracket in a string


def test_json_nested_32_levels_is_parsed(api):
    response = api.post(EARN_BULK, "[" * 32 + "]" * 32, content_type="application/json")
    assert "nested" not in " ".join(errors_of(response, 400))  # parsed, then refused as the wrong shape


# --- Every list input has a cap --------------------------------------------------------------------


def promotion_body(**changes):
    data = copy.deepcopy(PROMOTION_CREATE_EXAMPLE)
    data["startDateISO"] = (timezone.now() - dt.timedelta(days=1)).isoformat()
    data["endDateISO"] = (timezone.now() + dt.timedelta(days=30)).isoformat()
    data.update(changes)
    return data


def product_condition(criteria: int) -> dict:
    return {
        "type": "PRODUCT",
        "productCondition": {
            "criteriaList": [
                {"entity": "SKU", "operator": "IN", "values": [f"S{i}"]} for i in range(criteria)
            ]
        },
    }


def restrictions(count: int) -> dict:
    kpis = ["REDEMPTION", "TRANSACTION", "DISCOUNT"] * 3
    return {"Customer": [{"kpi": kpis[i], "limit": 5} for i in range(count)]}


def earn_bulk(customer, promotion, entries: int) -> dict:
    return {
        "customerId": customer.pk,
        "earnedFromType": "ACTIVITY",
        "eventTimeISO": timezone.now().isoformat(),
        "eventDetails": {"id": "E-1", "type": "ACTIVITY"},
        "earnedPromotions": [
            {"promotionId": promotion.pk, "earnCount": 1, "earnedFromId": f"E-{i}"} for i in range(entries)
        ],
    }


def revoke(customer, promotion, ids: int) -> dict:
    return {
        "customerId": customer.pk,
        "earnRevokeDetails": [{"promotionId": promotion.pk, "earnIds": [f"{i:024x}" for i in range(ids)]}],
    }


def redemption(customer, promotion, key: str, count: int) -> dict:
    lines = [line(promotion, discount=0) for _ in range(count)]
    return redemption_body(customer, amount=10, **{key: lines})


# (name, URL, body(customer, earning promotion, POS promotion, n), cap, message when over the cap)
LIST_CAPS = [
    (
        "criteriaList",
        lambda c, e, p, n: (PROMOTIONS, promotion_body(condition=product_condition(n))),
        20,
        "condition.productCondition.criteriaList: Ensure this field has no more than 20 elements.",
    ),
    (
        "criteria values",
        lambda c, e, p, n: (
            PROMOTIONS,
            promotion_body(
                condition={
                    "type": "PRODUCT",
                    "productCondition": {
                        "criteriaList": [
                            {"entity": "SKU", "operator": "IN", "values": [f"S{i}" for i in range(n)]}
                        ]
                    },
                }
            ),
        ),
        100,
        "condition.productCondition.criteriaList.0.values: SKU values exceed 100.",
    ),
    (
        "promotionRestrictions level",
        lambda c, e, p, n: (PROMOTIONS, promotion_body(promotionRestrictions=restrictions(n))),
        6,
        "promotionRestrictions.Customer: Ensure this field has no more than 6 elements.",
    ),
    (
        "earn/bulk earnedPromotions",
        lambda c, e, p, n: (EARN_BULK, earn_bulk(c, e, n)),
        100,
        "earnedPromotions: Ensure this field has no more than 100 elements.",
    ),
    (
        "revokeEarn earnIds",
        lambda c, e, p, n: (REVOKE, revoke(c, e, n)),
        1000,
        "earnRevokeDetails.0.earnIds: Ensure this field has no more than 1000 elements.",
    ),
    (
        "redemption lineItems",
        lambda c, e, p, n: (REDEMPTIONS, redemption(c, p, "line_items", n)),
        500,
        "lineItems: Ensure this field has no more than 500 elements.",
    ),
    (
        "redemption redemptions",
        lambda c, e, p, n: (REDEMPTIONS, redemption(c, p, "redemptions", n)),
        500,
        "redemptions: Ensure this field has no more than 500 elements.",
    ),
]


@pytest.mark.parametrize(
    ("build", "cap", "message"), [c[1:] for c in LIST_CAPS], ids=[c[0] for c in LIST_CAPS]
)
def test_every_list_has_a_cap_answered_with_a_json_400(api, org, customer, earning, build, cap, message):
    # given
    pos = PromotionFactory(org=org, type=PromotionType.POS)
    audit_events = AuditEvent.objects.count()
    # when: one over the cap
    url, over = build(customer, earning, pos, cap + 1)
    response = api.post(url, over, format="json")
    # then: a 400 naming the list, and nothing written
    assert errors_of(response, 400) == [message]
    assert AuditEvent.objects.count() == audit_events
    # and at the cap the list is accepted (the request may still fail for other reasons)
    url, at_cap = build(customer, earning, pos, cap)
    assert message not in api.post(url, at_cap, format="json").content.decode()


def test_issue_bulk_cap_is_a_setting(api, org, settings):
    # given
    settings.ISSUE_BULK_MAX_CUSTOMERS = 3
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    ids = [CustomerFactory(org=org).pk for _ in range(4)]
    url = f"{PROMOTIONS}/{promotion.pk}/issueBulk?contextId=cap"
    # when / then
    assert errors_of(api.post(url, ids, format="json"), 400) == ["At most 3 customer ids per request."]
    assert not EarnedPromotion.objects.exists()
    assert api.post(url, ids[:3], format="json").status_code == 200
    assert EarnedPromotion.objects.count() == 3


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("customFieldValues", lambda body, big: body.update(customFieldValues={"notes": big})),
        ("earningCriteria", lambda body, big: body.update(earningCriteria={"notes": big})),
    ],
)
def test_free_form_json_on_a_promotion_is_capped(api, settings, where, change):
    # given: a 1,000-byte cap on free-form JSON stored as sent
    settings.API_MAX_FREE_JSON_BYTES = 1000
    data = promotion_body()
    change(data, "x" * 1000)
    # when
    response = api.post(PROMOTIONS, data, format="json")
    # then
    assert errors_of(response, 400) == [f"{where}: At most 1000 bytes of JSON."]
    assert not Promotion.objects.exists()


def test_event_details_stored_as_sent_are_capped_on_both_earn_calls(api, org, customer, earning, settings):
    # given: eventDetails is stored with every instance as sent, unknown keys included
    settings.API_MAX_FREE_JSON_BYTES = 1000
    bulk = earn_bulk(customer, earning, 1)
    bulk["eventDetails"]["extra"] = "x" * 1000
    single = {
        "customerId": customer.pk,
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "E-1",
        "eventTimeISO": timezone.now().isoformat(),
        "eventDetails": {"id": "E-1", "type": "TransactionAdd", "eventPayload": {"bill": "x" * 1000}},
    }
    # when / then
    assert errors_of(api.post(EARN_BULK, bulk, format="json"), 400) == [
        "eventDetails: At most 1000 bytes of JSON."
    ]
    assert errors_of(api.post(f"{PROMOTIONS}/{earning.pk}/earn", single, format="json"), 400) == [
        "eventDetails: At most 1000 bytes of JSON."
    ]
    assert not EarnedPromotion.objects.exists()
    # and under the cap both earn
    bulk["eventDetails"]["extra"] = "x" * 100
    assert api.post(EARN_BULK, bulk, format="json").status_code == 200


# --- Every page has a cap ----------------------------------------------------------------------------


PAGE_CAPS = [
    ("promotion list", lambda customer: f"{PROMOTIONS}/", 1000),
    ("promotion list without slash", lambda customer: PROMOTIONS, 1000),
    ("wallet", lambda customer: f"{PROMOTIONS}/customer/{customer.pk}", 100),
    ("redemption list", lambda customer: REDEMPTIONS, 100),
]


@pytest.mark.parametrize(("url", "cap"), [c[1:] for c in PAGE_CAPS], ids=[c[0] for c in PAGE_CAPS])
def test_every_list_endpoint_caps_its_page(api, customer, url, cap):
    assert api.get(url(customer), {"limit": cap}).status_code == 200
    [message] = errors_of(api.get(url(customer), {"limit": cap + 1}), 400)
    assert message == f"limit: Ensure this value is less than or equal to {cap}."


# --- Statement timeout ---------------------------------------------------------------------------------


@pytest.mark.postgres_only
def test_every_connection_carries_the_statement_timeout(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "30s"


@pytest.mark.postgres_only
def test_db_statement_timeout_ms_cancels_a_long_statement(db):
    # given: a process configured with a 200 ms statement timeout
    # (the settings module alone, and the connection options it gives Django's backend), connecting to
    # the database under test: the one DATABASE_URL names need not exist (only the test one is created)
    script = (
        "import sys\n"
        "import psycopg\n"
        "from promotions_site import settings\n"
        "db = settings.DATABASES['default']\n"
        "with psycopg.connect(host=db['HOST'], port=db['PORT'], user=db['USER'], dbname=sys.argv[1],\n"
        "                     password=db['PASSWORD'] or None, options=db['OPTIONS']['options']) as conn:\n"
        "    print(conn.execute('SHOW statement_timeout').fetchone()[0])\n"
        "    try:\n"
        "        conn.execute('SELECT pg_sleep(5)')\n"
        "    except psycopg.errors.QueryCanceled as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "promotions_site.settings",
        "DB_STATEMENT_TIMEOUT_MS": "200",
        "SECRET_KEY": "statement-timeout-test",
    }
    # when
    result = subprocess.run(
        [sys.executable, "-c", script, connection.settings_dict["NAME"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then: the sleep was cancelled after 200 ms, not run for 5 s
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200ms", "QueryCanceled"]


@pytest.mark.postgres_only
def test_a_statement_timeout_in_a_request_is_a_json_503_and_writes_nothing(transactional_db, org, earning):
    # given: another transaction holds the customer's row lock, and a 300 ms statement timeout
    customer = CustomerFactory(org=org)
    client = ApiClientFactory(org=org)
    params = connection.get_connection_params()
    holder = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=False)
    try:
        holder.execute("SELECT 1 FROM wallets_customer WHERE id = %s FOR UPDATE", [customer.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 300")
        from rest_framework.test import APIClient

        from tests.conftest import basic_auth

        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
        # when: an earn waits for the customer's lock
        response = api.post(EARN_BULK, earn_bulk(customer, earning, 1), format="json")
    finally:
        holder.rollback()
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    # then
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["errors"][0]["code"] == 503
    assert not EarnedPromotion.objects.exists()
    # and the next request is served
    assert api.post(EARN_BULK, earn_bulk(customer, earning, 1), format="json").status_code == 200


def test_settings_default_body_cap_is_one_mebibyte():
    assert settings.API_MAX_BODY_BYTES == 1024 * 1024
