"""A client generated from the published schema works against the real server.

The test downloads `/api/schema/` from a live server, generates a Python client from it with
openapi-python-client (in a subprocess, into a temporary directory, offline), imports it and runs the
seed flows through it: an OAuth token, create a promotion, issueBulk, earn/bulk, a redemption with line
items and cart-level lines, the redemption list, the wallet and the v2 issue. Every answer must have a
documented status (an undocumented one raises), parse into the generated models, carry no key the
schema leaves out, and hold the expected values. A field the schema names differently, types
differently or leaves out, on either side, fails the flow.
"""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import types
import typing

import attrs
import httpx
import pytest
from django.utils import timezone

from promotions.models import PromotionType
from promotions.schema import PROMOTION_CREATE_EXAMPLE
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
)

PACKAGE = "promotions_client"
# No post-generation hooks: they would run ruff over the generated code, which the test does not need.
# The app as production runs it, behind a TLS-terminating proxy; one request per connection, so no
# server thread holds a database connection past its request (the test database is dropped at the end).
HEADERS = {"X-Forwarded-Proto": "https", "Connection": "close"}
GENERATOR_CONFIG = (
    f"package_name_override: {PACKAGE}\nproject_name_override: promotions-client\npost_hooks: []\n"
)


@pytest.fixture
def live_server(transactional_db):
    """pytest-django's live server, started for this test (its middleware reads the settings at start,
    after the test settings apply) and stopped after it."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def generated(live_server, tmp_path, monkeypatch):
    """The client package generated from the live server's schema, imported."""
    schema = httpx.get(f"{live_server.url}/api/schema/?format=json", headers=HEADERS, timeout=30)
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text(GENERATOR_CONFIG)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", "schema.json", "--config", "config.yaml", "--meta", "none"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    # The generator skips (with a warning) what it cannot read in a schema: that is a schema to fix.
    assert result.returncode == 0 and "warning" not in output.lower(), output
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module(PACKAGE)
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def operation(name: str):
    """A generated operation module: `operation("promotions.promotion_create")`."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def call(module, client, **kwargs):
    """One operation through the generated client: its parsed answer, which must be a 200."""
    response = module.sync_detailed(client=client, **kwargs)
    assert response.status_code == 200, response.content
    assert_documented(response.parsed)
    return response.parsed


def assert_documented(value, where: str = "body") -> None:
    """Each object of the answer holds only the keys its model declares (the generated models keep others
    apart in `additional_properties`; free-form objects declare none) and each value is of its declared
    type (the generated parsers pass scalars through unchecked)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            assert_documented(item, f"{where}[{index}]")
    if not attrs.has(type(value)):
        return
    model = type(value)
    hints = typing.get_type_hints(
        model, globalns=vars(sys.modules[model.__module__]), localns=vars(sys.modules[f"{PACKAGE}.models"])
    )
    declared = [field.name for field in attrs.fields(model) if field.name != "additional_properties"]
    extra = getattr(value, "additional_properties", {})
    assert not (declared and extra), f"{where}: keys the schema does not document: {sorted(extra)}"
    for name in declared:
        item = getattr(value, name)
        assert conforms(item, hints[name]), f"{where}.{name}: {item!r} is not {hints[name]}"
        assert_documented(item, f"{where}.{name}")
    for key, item in extra.items():
        assert_documented(item, f"{where}[{key!r}]")


def conforms(value, hint) -> bool:
    """Whether a parsed value is of a generated model's field type (scalars, lists, unions, models)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(conforms(item, typing.get_args(hint)[0]) for item in value)
    if hint is typing.Any:
        return True
    if typing.get_origin(hint) is dict:
        return isinstance(value, dict)
    if hint is type(None):
        return value is None
    if hint in (int, float):
        return isinstance(value, int if hint is int else int | float) and not isinstance(value, bool)
    return not isinstance(hint, type) or isinstance(value, hint)


def test_seed_flows_through_a_client_generated_from_the_schema(transactional_db, live_server, generated):
    # given: an org with its till, a customer, an EARNING, a POS and a loyalty promotion
    models = importlib.import_module(f"{PACKAGE}.models")
    org = OrganizationFactory()
    till = ApiClientFactory(org=org, secret="server123")
    customer = CustomerFactory(org=org)
    earning = PromotionFactory(org=org, type=PromotionType.EARNING)
    pos = PromotionFactory(org=org, type=PromotionType.POS)
    program = LoyaltyProgramFactory(org=org)
    loyalty = LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=3)
    anonymous = generated.Client(base_url=live_server.url, headers=HEADERS, raise_on_unexpected_status=True)

    # when: the till takes a token and uses it as a bearer token
    token = call(
        operation("authentication.oauth_token_generate"),
        anonymous,
        body=models.OAuthTokenGenerateApiInputRequest(key=till.username, secret="server123"),
    )
    assert token.data.ttl_seconds == 300
    client = generated.AuthenticatedClient(
        base_url=live_server.url,
        token=token.data.access_token,
        headers=HEADERS,
        raise_on_unexpected_status=True,
    )

    # then: create a CUSTOMER promotion from the documented example
    created = call(
        operation("promotions.promotion_create"),
        client,
        body=models.PromotionInputRequest.from_dict(PROMOTION_CREATE_EXAMPLE),
        idempotency_key="create-1",
    ).data
    assert created.type_ == models.PromotionTypeEnum.CUSTOMER
    assert created.org_id == org.pk and created.name == PROMOTION_CREATE_EXAMPLE["name"]
    assert created.promotion_restrictions.customer[0].limit == "2.000000"
    assert call(operation("promotions.promotion_get"), client, promotion_id=created.id).data.id == created.id

    # issueBulk: the new promotion, and the EARNING one under the id earn/bulk then names (the seeds')
    context = "68fb1c9731d91c625a8d9e80"
    issued = call(
        operation("issuing_and_earning.promotion_issue_bulk"),
        client,
        promotion_id=created.id,
        body=[customer.pk],
        context_id="CAMPAIGN-1",
    )
    instance = issued.data[str(customer.pk)]
    assert (instance.customer_id, instance.promotion_id) == (customer.pk, created.id)
    call(
        operation("issuing_and_earning.promotion_issue_bulk"),
        client,
        promotion_id=earning.pk,
        body=[customer.pk],
        context_id=context,
    )

    # earn/bulk, the seed's body
    event_time = timezone.now() - dt.timedelta(minutes=5)
    earned = call(
        operation("issuing_and_earning.promotion_earn_bulk"),
        client,
        body=models.EarnBulkApiInputRequest.from_dict(
            {
                "customerId": customer.pk,
                "eventTime": int(event_time.timestamp() * 1000),
                "earnedFromType": "BULK_ISSUE",
                "eventDetails": {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"},
                "earnedPromotions": [{"promotionId": earning.pk, "earnCount": 1, "earnedFromId": context}],
            }
        ),
    ).data
    assert [
        (entry.promotion_id, entry.successful_earn_count, entry.failed_earn_count) for entry in earned
    ] == [(earning.pk, 1, 0)]
    assert earned[0].customer_earned_promotions[0].customer_id == customer.pk

    # redeem: the issued instance on a line item, the POS promotion at cart level
    redeemed = call(
        operation("redemptions.redemption_create"),
        client,
        body=models.RedemptionCreateApiInputRequest.from_dict(
            {
                "customerId": str(customer.pk),
                "transactionIdentifier": "TXN-GEN-1",
                "transactionNumber": "BILL-GEN-1",
                "transactionDateISO": timezone.now().isoformat(),
                "amount": 2000,
                "lineItems": [
                    {
                        "sku": "SKU-1",
                        "promotionId": created.id,
                        "earnedPromotionId": instance.id,
                        "redemptionCount": 1,
                        "discount": 200,
                        "discountAppliedOnQuantity": 1,
                        "promotionAppliedOnQuantity": 1,
                    }
                ],
                "redemptions": [
                    {
                        "promotionId": pos.pk,
                        "redemptionCount": 1,
                        "discount": 10,
                        "discountAppliedOnQuantity": 1,
                        "promotionAppliedOnQuantity": 1,
                    }
                ],
            }
        ),
    ).data
    assert (redeemed.org_id, redeemed.customer_id, redeemed.amount) == (org.pk, customer.pk, 2000.0)
    assert redeemed.line_items[0].earned_promotion_id == instance.id
    assert redeemed.line_items[0].discount == "200.000000"
    assert redeemed.redemptions[0].promotion_id == pos.pk
    listed = call(operation("redemptions.redemption_list"), client, transaction_identifier="TXN-GEN-1")
    assert listed.pagination.total == 2
    assert {record.redemption_type for record in listed.data} == {
        models.RedemptionTypeEnum.LINEITEM,
        models.RedemptionTypeEnum.CART,
    }

    # the wallet: the redeemed instance reads REDEEMED, with its limits
    wallet = call(
        operation("wallet.customer_wallet_get"), client, customer_id=customer.pk, include_redemptions=True
    ).data
    by_id = {item.earned_promotion_id: item for item in wallet}
    assert by_id[instance.id].status == models.WalletItemStatusEnum.REDEEMED
    assert by_id[instance.id].restrictions.customer[0].max_limit == "2.000000"
    assert {item.promotion_id for item in wallet} >= {created.id, earning.pk}

    # v2 issue, by the customer's mobile
    v2 = call(
        operation("loyalty_promotions_v_2.loyalty_promotion_issue"),
        client,
        body=models.LoyaltyIssueRequest(program_id=program.pk, promotion_id=loyalty.pk),
        identifier_name=models.LoyaltyPromotionIssueIdentifierName.MOBILE,
        identifier_value=customer.mobile,
        source=models.LoyaltyPromotionIssueSource.INSTORE,
    )
    assert v2.errors == [] and v2.warnings == []
    assert (v2.side_effects[0].program_id, v2.side_effects[0].promotion_id) == (program.pk, loyalty.pk)
