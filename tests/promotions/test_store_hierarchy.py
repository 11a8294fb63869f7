"""The store hierarchy: zones, concepts, stores and tills of an org, the till of a request
(`till_resolve`) and the store scope the engine checks `storeCriteria` against (`store_scope_for_till`)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import RequestFactory
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from promotions.models import ApiClient, Store, Till, Zone
from promotions.selectors import TILL_CODE_HEADER, store_scope_for_till, till_for_request, till_resolve
from promotions_site.errors import ErrorCode, PromotionError
from tests.factories import ApiClientFactory, ConceptFactory, StoreFactory, TillFactory, ZoneFactory


def test_store_scope_names_the_store_and_every_zone_and_concept_above_it(org, django_assert_max_num_queries):
    # given zones West > Mumbai > Andheri and concepts Brand > Express, a store in Andheri / Express
    west = ZoneFactory(org=org, external_id=75175598)
    mumbai = ZoneFactory(org=org, external_id=75175599, parent=west)
    andheri = ZoneFactory(org=org, external_id=75175600, parent=mumbai)
    ZoneFactory(org=org, external_id=1, parent=west)  # a sibling: not above the store
    brand = ConceptFactory(org=org, external_id=500)
    express = ConceptFactory(org=org, external_id=501, parent=brand)
    store = StoreFactory(org=org, external_id=101, zone=andheri, concept=express)
    till = TillFactory(org=org, store=store, code="mum.101.t1")

    # when
    till = Till.objects.select_related("store").get(pk=till.pk)
    with django_assert_max_num_queries(1):
        scope = store_scope_for_till(till)

    # then
    assert scope.store_id == 101
    assert scope.zone_ids == {75175598, 75175599, 75175600}
    assert scope.concept_ids == {500, 501}


def test_store_scope_of_a_store_in_no_zone_or_concept_and_of_no_till(org):
    till = TillFactory(org=org, store=StoreFactory(org=org, external_id=7))
    assert (store_scope_for_till(till).store_id, store_scope_for_till(till).zone_ids) == (7, frozenset())
    assert store_scope_for_till(None) is None


def test_store_scope_stops_at_a_cycle_in_the_parents(org):
    # given two zones that name each other as parent (two concurrent edits can leave this)
    a = ZoneFactory(org=org, external_id=10)
    b = ZoneFactory(org=org, external_id=11, parent=a)
    Zone.objects.filter(pk=a.pk).update(parent=b)
    till = TillFactory(org=org, store=StoreFactory(org=org, zone=b))

    # when / then: both zones, once, and the walk ends
    assert store_scope_for_till(till).zone_ids == {10, 11}


def test_a_parent_that_would_make_a_cycle_is_a_validation_error(org):
    a = ZoneFactory(org=org)
    b = ZoneFactory(org=org, parent=a)
    c = ZoneFactory(org=org, parent=b)
    a.parent = c
    with pytest.raises(ValidationError, match="cycle"):
        a.full_clean()
    a.parent = a
    with pytest.raises(ValidationError, match="cycle"):
        a.full_clean()


def test_a_parent_zone_or_store_of_another_org_is_a_validation_error(org, other_org):
    foreign_zone = ZoneFactory(org=other_org)
    store = StoreFactory.build(org=org, external_id=5, name="S", zone=foreign_zone)
    with pytest.raises(ValidationError) as error:
        store.full_clean()
    assert error.value.message_dict == {"zone": ["Must belong to the same organization."]}
    till = Till(org=org, code="abc", name="T", store=StoreFactory(org=other_org))
    with pytest.raises(ValidationError) as error:
        till.full_clean()
    assert error.value.message_dict == {"store": ["Must belong to the same organization."]}


@pytest.mark.parametrize("code", ["ab", "1abc", "Abc", "ab c", "ab/c", "ąbc", ""])
def test_a_till_code_breaking_capillarys_rule_is_refused_by_the_form_and_the_database(org, code):
    store = StoreFactory(org=org)
    with pytest.raises(ValidationError):
        Till(org=org, code=code, name="T", store=store).full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Till.objects.create(org=org, code=code, name="T", store=store)


@pytest.mark.parametrize("code", ["abc", "a1.b_c-d", "pos.mumbai.101"])
def test_a_till_code_following_the_rule_is_taken(org, code):
    Till(org=org, code=code, name="T", store=StoreFactory(org=org)).full_clean()


def test_ids_and_codes_are_unique_per_org_not_across_orgs(org, other_org):
    StoreFactory(org=org, external_id=101, code="S1")
    StoreFactory(org=other_org, external_id=101, code="S1")
    TillFactory(org=org, code="abc")
    TillFactory(org=other_org, code="abc")
    for make in (
        lambda: StoreFactory(org=org, external_id=101),
        lambda: StoreFactory(org=org, code="S1"),
        lambda: TillFactory(org=org, code="abc"),
        lambda: ZoneFactory(org=org, external_id=0),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            make()
    assert Store.objects.for_org(org).count() == 2  # 101 and the store of till abc


# --- The till of a request ----------------------------------------------------------------------


def test_the_header_names_the_till_else_the_clients_default_else_none(org):
    header_till = TillFactory(org=org, code="till.header")
    default_till = TillFactory(org=org, code="till.default")
    client = ApiClientFactory(org=org)

    assert till_resolve(client=client, till_code=None) is None
    ApiClient.objects.filter(pk=client.pk).update(default_till=default_till)
    client.refresh_from_db()
    assert till_resolve(client=client, till_code=None) == default_till
    assert till_resolve(client=client, till_code="  ") == default_till  # blank: absent
    assert till_resolve(client=client, till_code="till.header") == header_till


@pytest.mark.parametrize("code", ["till.nowhere", "TILL.HEADER", "x" * 500, "a\x00b"])
def test_a_header_naming_no_till_of_the_org_is_4001(org, other_org, code):
    TillFactory(org=org, code="till.header")
    TillFactory(org=other_org, code="till.nowhere")
    client = ApiClientFactory(org=org)

    with pytest.raises(PromotionError) as error:
        till_resolve(client=client, till_code=code)

    assert (error.value.code, error.value.http_status) == (ErrorCode.TILL_CODE_UNKNOWN, 400)
    assert TILL_CODE_HEADER in error.value.message


def test_a_default_till_of_another_org_counts_as_none(org, other_org):
    client = ApiClientFactory(org=org)
    ApiClient.objects.filter(pk=client.pk).update(default_till=TillFactory(org=other_org))
    client.refresh_from_db()
    assert till_resolve(client=client, till_code=None) is None


def test_till_for_request_reads_the_header_and_the_authenticated_client(org):
    till = TillFactory(org=org, code="pos.1")
    request = RequestFactory().post("/", HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE="pos.1")
    request.user = ApiClientFactory(org=org)
    assert till_for_request(request) == till
    assert store_scope_for_till(till_for_request(request)).store_id == till.store.external_id


class _TillEchoApi(APIView):
    """A view resolving its request's till as the evaluate endpoint does."""

    def post(self, request):
        till = till_for_request(request)
        return Response({"till": till.code if till else None})


def _post_with_till(client, code=None):
    headers = {} if code is None else {"HTTP_X_CAP_API_ATTRIBUTION_TILL_CODE": code}
    request = APIRequestFactory().post("/api_gateway/v1/promotions/evaluate", {}, format="json", **headers)
    force_authenticate(request, user=client)
    return _TillEchoApi.as_view()(request)


def test_an_unknown_till_code_answers_400_in_the_api_envelope(org):
    client = ApiClientFactory(org=org)
    TillFactory(org=org, code="pos.1")

    assert _post_with_till(client, "pos.1").data == {"till": "pos.1"}
    assert _post_with_till(client).data == {"till": None}
    refused = _post_with_till(client, "pos.404")
    assert refused.status_code == 400
    assert refused.data == {
        "errors": [
            {
                "code": 4001,
                "message": "Unknown till: no till of the org has this code. "
                "X-CAP-API-ATTRIBUTION-TILL-CODE: 'pos.404'.",
            }
        ]
    }
