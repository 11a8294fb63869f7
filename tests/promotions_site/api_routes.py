"""Every API route and method, and how to call it: the table the authorization matrix
(tests/promotions_site/test_authorization.py) and the audit-trail walk (tests/promotions_site/test_audit_trail.py) run.

A route is found in the URL configuration (`api_routes`); its case in `CASES` says how to call it for
an org seeded by `org_seed`, what the org's own call answers, and what a call naming another org's
ids answers (`Foreign`). Adding a route or a method to a view without a case here fails
tests/promotions_site/test_authorization.py::test_every_api_route_has_a_case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from django.urls import URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import PromoCode, PromotionType
from promotions_site.timefmt import to_epoch_ms
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CartLockFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    LoyaltyProgramFactory,
    LoyaltyPromotionFactory,
    PromotionFactory,
    TillFactory,
)

# Every path under these is an API route: it needs a case. The schema and the docs (`api/`) are
# public by decision; everything else needs an API client's credentials.
API_PREFIXES = ("api_gateway/", "v2/", "v3/", "api/")
# Not separate cases: DRF answers OPTIONS (metadata) and HEAD (as GET) for every route, behind the
# same authentication; tests/promotions_site/test_authorization.py checks that anonymously they are refused too.
IMPLICIT_METHODS = {"options", "head"}

_names = itertools.count(1)


def api_routes() -> dict[tuple[str, str], str]:
    """`{(route name, METHOD): path pattern}` for every route under `API_PREFIXES`, the methods being
    those its view class implements."""
    routes: dict[tuple[str, str], str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            path = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, path)
            elif path.startswith(API_PREFIXES):
                view = pattern.callback.view_class
                assert pattern.name, f"API route {path} has no name: name it so it can have a case"
                for method in view.http_method_names:
                    if method not in IMPLICIT_METHODS and hasattr(view, method):
                        key = (pattern.name, method.upper())
                        assert key not in routes, f"two API routes named {pattern.name}"
                        routes[key] = path

    walk(get_resolver().url_patterns, "")
    return routes


def case_id(key: tuple[str, str]) -> str:
    return " ".join(key)


def send(api: APIClient, method: str, call: Call, **headers):
    """`call` sent with `method` through the test client `api`."""
    url = call.path + (f"?{urlencode(call.query)}" if call.query else "")
    if method == "GET":
        return api.get(url, **headers)
    return getattr(api, method.lower())(url, call.body, format="json", **headers)


# --- The seed: two orgs, each with one of everything ----------------------------------------------


@dataclasses.dataclass
class OrgSeed:
    """One org with a write and a read-only API client and one row of each kind the API names."""

    org: Any
    client: Any  # the write-access ApiClient
    api: APIClient  # authenticated as `client`
    read_api: APIClient  # a read-only client of the org
    customer: Any
    customer_promotion: Any  # CUSTOMER, issued to `customer` (instance `earned`), active
    inactive_promotion: Any  # CUSTOMER, inactive
    earning_promotion: Any  # EARNING
    pos_promotion: Any  # POS, redeemed in `transaction`
    earned: Any  # `customer`'s ACTIVE instance of `customer_promotion`
    transaction: str  # the transactionIdentifier of `redemption`
    redemption: Any
    program: Any
    loyalty_promotion: Any
    cart: str  # the evaluationId of `customer`'s open cart (cart locks)
    optin_promotion: Any  # CUSTOMER with customerActivationRequired (not issued: opt-in may come first)
    till: Any  # a till of one of the org's stores
    code: Any  # an unlinked PromoCode of a CODE promotion


def _api(client) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    return api


def org_seed(org) -> OrgSeed:
    """Seeds `org`. The redemption is recorded through the API, so it is what a till would leave."""
    client = ApiClientFactory(org=org)
    api = _api(client)
    customer = CustomerFactory(org=org)
    customer_promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=5)
    pos_promotion = PromotionFactory(org=org, type=PromotionType.POS)
    transaction = f"TXN-{org.pk}-{next(_names)}"
    recorded = api.post(
        "/api_gateway/v1/promotions/redemptions",
        redemption_body(customer.pk, transaction, pos_promotion.pk),
        format="json",
    )
    assert recorded.status_code == 200, recorded.content
    program = LoyaltyProgramFactory(org=org)
    optin_promotion = PromotionFactory(
        org=org, type=PromotionType.CUSTOMER, customer_activation_required=True
    )
    return OrgSeed(
        org=org,
        client=client,
        api=api,
        read_api=_api(ApiClientFactory(org=org, access="READ")),
        customer=customer,
        customer_promotion=customer_promotion,
        inactive_promotion=PromotionFactory(org=org, active=False),
        earning_promotion=PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=-1),
        pos_promotion=pos_promotion,
        earned=EarnedPromotionFactory(org=org, customer=customer, promotion=customer_promotion),
        transaction=transaction,
        redemption=org.redemptions.get(transaction_identifier=transaction),
        program=program,
        loyalty_promotion=LoyaltyPromotionFactory(org=org, program=program, max_issuance_per_customer=-1),
        cart=CartLockFactory(org=org, customer=customer).pk,
        optin_promotion=optin_promotion,
        till=TillFactory(org=org),
        code=PromoCode.objects.create(
            org=org, promotion=PromotionFactory(org=org, type=PromotionType.CODE), code=f"SEED{org.pk}"
        ),
    )


# Ids that exist in no org: what "another org's id" must be indistinguishable from.
MISSING = SimpleNamespace(
    org=SimpleNamespace(pk=999_999_999),
    customer=SimpleNamespace(pk=9_000_000_000_001, mobile="919999999999", email="nobody@example.invalid",
                             external_id="NO-SUCH-CUSTOMER"),
    customer_promotion=SimpleNamespace(pk="0" * 24, name="No such promotion"),
    inactive_promotion=SimpleNamespace(pk="0" * 24),
    earning_promotion=SimpleNamespace(pk="0" * 24),
    pos_promotion=SimpleNamespace(pk="0" * 24),
    earned=SimpleNamespace(pk="0" * 24),
    transaction="NO-SUCH-TRANSACTION",
    redemption=SimpleNamespace(pk=9_000_000_001),
    program=SimpleNamespace(pk=9_000_000_001),
    loyalty_promotion=SimpleNamespace(pk=9_000_000_001),
    cart="0" * 24,
    optin_promotion=SimpleNamespace(pk="0" * 24),
    till=SimpleNamespace(pk=9_000_000_001),
    code=SimpleNamespace(pk=9_000_000_001, code="NOSUCHCODE1"),
)  # fmt: skip


class Ids:
    """The seeded rows a request names: `mine`'s, except those listed in `foreign`, taken from `theirs`."""

    def __init__(self, mine, theirs=None, foreign: frozenset[str] = frozenset()):
        self._mine, self._theirs, self._foreign = mine, theirs, foreign

    def __getattr__(self, name: str):
        return getattr(self._theirs if name in self._foreign else self._mine, name)

    def is_foreign(self, name: str) -> bool:
        return name in self._foreign


# --- Request bodies -----------------------------------------------------------------------------


def _now_ms(minutes: int = -5) -> int:
    return to_epoch_ms(timezone.now() + dt.timedelta(minutes=minutes))


def redemption_body(customer_id: int, transaction: str, promotion_id: str, earned_line=None) -> dict:
    body = {
        "customerId": str(customer_id),
        "transactionIdentifier": transaction,
        "transactionNumber": f"BILL-{transaction}",
        "transactionDate": _now_ms(),
        "amount": 1000,
        "redemptions": [_line(promotion_id)],
    }
    if earned_line is not None:
        body["lineItems"] = [_line(*earned_line)]
    return body


def _line(promotion_id: str, earned_id: str | None = None) -> dict:
    line = {
        "sku": "SKU-1",
        "promotionId": promotion_id,
        "redemptionCount": 1,
        "discount": 100,
        "discountAppliedOnQuantity": 1,
        "promotionAppliedOnQuantity": 1,
    }
    if earned_id is not None:
        line["earnedPromotionId"] = earned_id
    return line


def promotion_body(name: str, org_id: int) -> dict:
    start = timezone.now().replace(microsecond=0) - dt.timedelta(days=1)
    return {
        "orgId": org_id,  # not a field of create: the credentials decide the org
        "name": name,
        "type": "CUSTOMER",
        "active": True,
        "startDate": to_epoch_ms(start),
        "endDate": to_epoch_ms(start + dt.timedelta(days=60)),
        "mode": "DISCOUNT",
        "condition": {
            "type": "CART",
            "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": 1500},
        },
        "action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 200}},
    }


def _earn_body(ids: Ids) -> dict:
    return {
        "customerId": ids.customer.pk,
        "earnedFromType": "ACTIVITY",
        "earnedFromId": f"BILL-{next(_names)}",
        "eventTime": _now_ms(),
        "eventDetails": {"id": "BILL-1", "type": "TransactionAdd"},
    }


def _earn_bulk_body(ids: Ids) -> dict:
    return {
        "orgId": ids.org.pk,
        "customerId": ids.customer.pk,
        "eventTime": _now_ms(),
        "earnedFromType": "ACTIVITY",
        "eventDetails": {"id": "BILL-1", "type": "ACTIVITY"},
        "earnedPromotions": [
            {"promotionId": ids.earning_promotion.pk, "earnCount": 1, "earnedFromId": f"BILL-{next(_names)}"}
        ],
    }


def _revoke_body(ids: Ids) -> dict:
    return {
        "customerId": ids.customer.pk,
        "earnRevokeDetails": [{"promotionId": ids.customer_promotion.pk, "earnIds": [ids.earned.pk]}],
    }


def _customer_body(ids: Ids) -> dict:
    """A new customer; when `customer` is foreign, with that (other org's) customer's identifiers."""
    if ids.is_foreign("customer"):
        return {"mobile": ids.customer.mobile, "email": ids.customer.email, "firstName": "Same"}
    n = next(_names)
    return {"mobile": f"91877{n:07d}", "email": f"new{n}@example.com", "firstName": "New"}


def _promotion_body(ids: Ids) -> dict:
    """A new promotion; when `customer_promotion` is foreign, named as that (other org's) promotion."""
    foreign = ids.is_foreign("customer_promotion")
    name = ids.customer_promotion.name if foreign else f"New promotion {next(_names)}"
    return promotion_body(name, ids.org.pk)


# --- The cases ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    path: str
    body: Any = None
    query: dict | None = None


@dataclasses.dataclass(frozen=True)
class Foreign:
    """A call naming another org's `ids` (the rest are the caller's): it answers `status` with these
    error `codes`, exactly as when the ids exist in no org, and changes nothing of the other org.
    `check(response, mine, theirs)` asserts more (e.g. an empty list)."""

    ids: frozenset[str]
    status: int
    codes: tuple[int, ...] = ()
    check: Callable | None = None


@dataclasses.dataclass(frozen=True)
class Case:
    """How to call one route and method. `call(ids)` builds the request; the caller's own call answers
    `status` (`check(response, mine, theirs)` asserts more); `audit` is the action its write records."""

    call: Callable[[Ids], Call]
    status: int = 200
    foreign: tuple[Foreign, ...] = ()
    public: bool = False
    check: Callable | None = None
    audit: str | None = None
    # A POST a read-only client may call: it changes nothing, so it records no audit event (evaluate
    # keeps a record of the evaluation, with the client that asked).
    read_access: bool = False


def probe(*names: str, status: int = 404, codes: tuple[int, ...] | None = None, check=None) -> Foreign:
    """A `Foreign` probe naming another org's `names`; by default 404 with code 404."""
    return Foreign(frozenset(names), status, (status,) if codes is None else codes, check)


def data_of(response) -> Any:
    return response.json()["data"]


def _list_is_empty(response, mine, theirs) -> None:
    assert data_of(response) == []


def _promotions_are_mine(response, mine, theirs) -> None:
    assert [p["id"] for p in data_of(response)] == [mine.customer_promotion.pk]
    # and the whole list holds only the caller's promotions
    listed = {p["id"] for p in data_of(mine.api.get(f"{PROMOTIONS}/", {"limit": 1000}))}
    assert listed == set(mine.org.promotions.values_list("pk", flat=True))


def _config_is_mine(response, mine, theirs) -> None:
    assert [p["promotionId"] for p in data_of(response)] == [mine.customer_promotion.pk]
    # and the whole list holds only the caller's promotions
    listed = {
        p["promotionId"] for p in data_of(mine.api.get(f"{PROMOTIONS}/config", {"includeInactive": "true"}))
    }
    assert listed == set(mine.org.promotions.values_list("pk", flat=True))


def _till_promotions_are_mine(response, mine, theirs) -> None:
    listed = {p["id"] for p in data_of(response)}
    assert listed == set(mine.org.promotions.filter(active=True).values_list("pk", flat=True))


def _redemptions_are_mine(response, mine, theirs) -> None:
    [record] = data_of(response)
    assert (record["orgId"], record["transactionIdentifier"]) == (mine.org.pk, mine.transaction)
    # and the whole list holds only the caller's redemptions
    listed = data_of(mine.api.get(f"{PROMOTIONS}/redemptions", {"limit": 100, "includeReversed": "true"}))
    assert {(r["orgId"], r["transactionIdentifier"]) for r in listed} == {(mine.org.pk, mine.transaction)}


def _wallet_is_mine(response, mine, theirs) -> None:
    items = data_of(response)
    assert [(i["customerId"], i["earnedPromotionId"]) for i in items] == [(mine.customer.pk, mine.earned.pk)]


def _code_is_mine(response, mine, theirs) -> None:
    data = data_of(response)
    [record] = data if isinstance(data, list) else [data]
    assert (record["orgId"], record["id"]) == (mine.org.pk, mine.code.pk)


def _customer_is_mine(response, mine, theirs) -> None:
    assert mine.org.customers.filter(pk=data_of(response)["customerId"]).exists()


def _promotion_is_mine(response, mine, theirs) -> None:
    assert mine.org.promotions.filter(pk=data_of(response)["id"]).exists()


def _nothing_issued_to_theirs(response, mine, theirs) -> None:
    assert data_of(response) == {}
    assert list(theirs.customer.earned_promotions.all()) == [theirs.earned]


def _pending_carts_are_mine(response, mine, theirs) -> None:
    assert [cart["cartEvaluationId"] for cart in data_of(response)["tempRedemptionDetails"]] == [mine.cart]


PROMOTIONS = "/api_gateway/v1/promotions"

_PROMOTION_LIST = Case(
    lambda ids: Call(f"{PROMOTIONS}/", query={"promotionIds": ids.customer_promotion.pk}),
    check=_promotions_are_mine,
    # Another org's id in promotionIds is left out, as an unknown one is.
    foreign=(probe("customer_promotion", status=200, codes=(), check=_list_is_empty),),
)
_PROMOTION_CREATE = Case(
    lambda ids: Call(f"{PROMOTIONS}/", _promotion_body(ids)),
    check=_promotion_is_mine,
    audit="promotion.create",
    foreign=(
        # Names are unique per org: another org's name is free (a 716 would reveal it).
        probe("customer_promotion", status=200, codes=(), check=_promotion_is_mine),
        # An `orgId` in the body is not a field: the promotion is the caller's org's.
        probe("org", status=200, codes=(), check=_promotion_is_mine),
    ),
)


def _redemption_list_query(ids: Ids) -> dict:
    return {
        "includeReversed": "true",
        "customerId": ids.customer.pk,
        "promotionId": ids.pos_promotion.pk,
        "transactionIdentifier": ids.transaction,
        "transactionEntityIdentifier": f"REGULAR_b_{ids.redemption.pk}",
    }


CASES: dict[tuple[str, str], Case] = {
    ("oauth-token-generate", "POST"): Case(
        lambda ids: Call("/v3/oauth/token/generate", {"key": ids.client.username, "secret": ids.client.plain_secret}),
        public=True,  # the credentials are its input: it is how a client logs in
    ),
    ("api-schema", "GET"): Case(lambda ids: Call("/api/schema/"), public=True),
    ("api-docs", "GET"): Case(lambda ids: Call("/api/docs/"), public=True),
    # Promotions
    ("promotion-collection", "GET"): _PROMOTION_LIST,
    ("promotion-collection", "POST"): _PROMOTION_CREATE,
    ("promotion-collection-bare", "GET"): dataclasses.replace(
        _PROMOTION_LIST, call=lambda ids: Call(PROMOTIONS, query={"promotionIds": ids.customer_promotion.pk})
    ),
    ("promotion-collection-bare", "POST"): dataclasses.replace(
        _PROMOTION_CREATE, call=lambda ids: Call(PROMOTIONS, _promotion_body(ids))
    ),
    ("promotion-detail", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.customer_promotion.pk}"),
        foreign=(probe("customer_promotion"),),
    ),
    ("promotion-detail", "PUT"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.customer_promotion.pk}", {"messageLabel": "Changed"}),
        foreign=(probe("customer_promotion"),),
        audit="promotion.update",
    ),
    ("promotion-activate", "PUT"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.inactive_promotion.pk}/activate"),
        foreign=(probe("inactive_promotion"),),
        audit="promotion.activate",
    ),
    ("promotion-deactivate", "PUT"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.customer_promotion.pk}/deactivate"),
        foreign=(probe("customer_promotion"),),
        audit="promotion.deactivate",
    ),
    ("promotion-config", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/config", query={"promotionIds": ids.customer_promotion.pk}),
        check=_config_is_mine,
        # Another org's id in promotionIds is left out, as an unknown one is.
        foreign=(probe("customer_promotion", status=200, codes=(), check=_list_is_empty),),
    ),
    ("promotion-till", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/till/{ids.till.pk}"),
        check=_till_promotions_are_mine,
        foreign=(probe("till"),),
    ),
    # A customer's opt-in (POST; the PUT above is the org level)
    ("promotion-activate", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.optin_promotion.pk}/activate", query={"customerId": ids.customer.pk}),
        foreign=(probe("optin_promotion"), probe("customer")),
        audit="promotion.customer_activate",
    ),
    ("promotion-deactivate", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.optin_promotion.pk}/deactivate", query={"customerId": ids.customer.pk}),
        foreign=(probe("optin_promotion"), probe("customer")),
        audit="promotion.customer_deactivate",
    ),
    # Issuing and earning
    ("promotion-issue-bulk", "POST"): Case(
        lambda ids: Call(
            f"{PROMOTIONS}/{ids.customer_promotion.pk}/issueBulk", [ids.customer.pk], {"contextId": "authz"}
        ),
        foreign=(
            probe("customer_promotion"),
            # Per customer: another org's customer is an unknown customer (1007) in `errors`.
            probe("customer", status=200, codes=(1007,), check=_nothing_issued_to_theirs),
        ),
        audit="promotion.issue_bulk",
    ),
    ("promotion-earn", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/{ids.earning_promotion.pk}/earn", _earn_body(ids)),
        foreign=(probe("earning_promotion"), probe("customer")),
        audit="promotion.earn",
    ),
    ("promotion-earn-bulk", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/earn/bulk", _earn_bulk_body(ids)),
        # The documented `orgId` of the body must be the credentials' org: 400.
        foreign=(probe("earning_promotion"), probe("customer"), probe("org", status=400)),
        audit="promotion.earn",
    ),
    ("promotion-revoke-earn", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/revokeEarn", _revoke_body(ids)),
        foreign=(
            probe("customer"),
            probe("customer_promotion"),
            # Another org's instance is not this customer's instance of this promotion: 731.
            probe("earned", status=400, codes=(731,)),
        ),
        audit="promotion.revoke_earn",
    ),
    # Promo codes
    ("promo-code-lookup", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/code", query={"codes": ids.code.code, "mode": "DISCOUNT"}),
        check=_code_is_mine,
        # Another org's code is unknown, as a missing one: left out, with a 1001 entry.
        foreign=(probe("code", status=200, codes=(1001,), check=_list_is_empty),),
    ),
    ("promo-code-link", "POST"): Case(
        lambda ids: Call(
            f"{PROMOTIONS}/code/link", {"customerId": ids.customer.pk, "code": ids.code.code, "mode": "DISCOUNT"}
        ),
        check=_code_is_mine,
        foreign=(probe("code", status=400, codes=(1001,)), probe("customer", status=400, codes=(1006,))),
        audit="promo_code.link",
    ),
    # Customers and wallets
    ("customer-wallet", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/customer/{ids.customer.pk}"),
        check=_wallet_is_mine,
        foreign=(probe("customer"),),
    ),
    ("customers", "GET"): Case(
        lambda ids: Call(
            f"{PROMOTIONS}/customers", query={"identifierName": "mobile", "identifierValue": ids.customer.mobile}
        ),
        foreign=(probe("customer"),),
    ),
    ("customers", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/customers", _customer_body(ids)),
        status=201,
        check=_customer_is_mine,
        audit="customer.create",
        # Identifiers are unique per org: another org's mobile and email are free (a 409 would
        # reveal them), and the customer is the caller's org's.
        foreign=(probe("customer", status=201, codes=(), check=_customer_is_mine),),
    ),
    ("loyalty-promotion-issue", "POST"): Case(
        lambda ids: Call(
            "/v2/promotion/issue",
            {"programId": ids.program.pk, "promotionId": ids.loyalty_promotion.pk},
            {"identifierName": "mobile", "identifierValue": ids.customer.mobile, "source": "INSTORE"},
        ),
        audit="loyalty_promotion.issue",
        # v2 answers ids it does not find with its documented codes (HTTP 400, v2 envelope).
        foreign=(
            probe("program", status=400, codes=(1101,)),
            probe("loyalty_promotion", status=400, codes=(8874,)),
            probe("customer", status=400, codes=(8015,)),
        ),
    ),
    # Redemptions
    ("redemption-collection", "POST"): Case(
        lambda ids: Call(
            f"{PROMOTIONS}/redemptions",
            redemption_body(
                ids.customer.pk, f"TXN-NEW-{next(_names)}", ids.pos_promotion.pk,
                earned_line=(ids.customer_promotion.pk, ids.earned.pk),
            ),
        ),
        audit="redemption.record",
        foreign=(
            probe("customer"),
            # A line's promotion not in the org: the documented 400 "not found for org".
            probe("pos_promotion", status=400),
            # Another org's instance is not this customer's instance of this promotion: 715.
            probe("earned", status=400, codes=(715,)),
        ),
    ),
    ("redemption-collection", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/redemptions", query=_redemption_list_query(ids)),
        check=_redemptions_are_mine,
        # Each filter naming another org's row matches nothing: an empty list, never 404 (documented).
        foreign=tuple(
            probe(name, status=200, codes=(), check=_list_is_empty)
            for name in ("customer", "pos_promotion", "transaction", "redemption")
        ),
    ),
    ("evaluation-create", "POST"): Case(
        lambda ids: Call(
            f"{PROMOTIONS}/evaluate",
            {"amount": "1000", "customerId": ids.customer.pk, "cartItems": [{"sku": "SKU-1", "amount": "1000", "qty": "1"}]},
        ),
        read_access=True,
        foreign=(probe("customer"),),
    ),
    # Pending carts (cart locks)
    ("pending-cart-list", "GET"): Case(
        lambda ids: Call(f"{PROMOTIONS}/customer/{ids.customer.pk}/evaluations/pending_carts"),
        check=_pending_carts_are_mine,
        foreign=(probe("customer"),),
    ),
    **{
        (name, method): Case(
            lambda ids, word=word: Call(f"{PROMOTIONS}/customer/{ids.customer.pk}/{word}/{ids.cart}/cancel"),
            audit="cart.cancel",
            # Another org's customer or cart: the documented 404 "Passed evaluation log id is not found".
            foreign=(probe("customer"), probe("cart")),
        )
        for name, word in (("cart-cancel", "evaluations"), ("cart-cancel-singular", "evaluation"))
        for method in ("PUT", "POST")
    },
    ("redemption-reverse", "POST"): Case(
        lambda ids: Call(f"{PROMOTIONS}/redemptions/reverse", {"transactionIdentifier": ids.transaction}),
        foreign=(probe("transaction"),),
        audit="redemption.reverse",
    ),
}  # fmt: skip
