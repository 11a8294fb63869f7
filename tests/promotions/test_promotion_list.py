"""GET /api_gateway/v1/promotions?promotionIds=: full objects, org-scoped, filtered."""

import datetime as dt

from django.utils import timezone

from tests.factories import PromotionFactory, PromotionRestrictionFactory

URL = "/api_gateway/v1/promotions/"


def ids(response):
    return [item["id"] for item in response.json()["data"]]


def test_lists_the_requested_promotions_with_their_limits(api, org):
    # given
    wanted = PromotionFactory.create_batch(2, org=org)
    PromotionFactory(org=org)
    PromotionRestrictionFactory(promotion=wanted[0], level="Customer", kpi="DISCOUNT", limit=150)

    # when
    response = api.get(URL, {"promotionIds": f"{wanted[0].pk},{wanted[1].pk}"})

    # then
    assert response.status_code == 200
    assert sorted(ids(response)) == sorted(p.pk for p in wanted)
    first = next(item for item in response.json()["data"] if item["id"] == wanted[0].pk)
    assert first["promotionRestrictions"] == {"Customer": [{"kpi": "DISCOUNT", "limit": "150.000000"}]}
    assert response.json()["errors"] == []


def test_without_ids_lists_the_org_newest_first_and_never_another_org(api, org, other_org):
    mine = PromotionFactory.create_batch(3, org=org)
    theirs = PromotionFactory(org=other_org)

    response = api.get("/api_gateway/v1/promotions")

    assert ids(response) == [p.pk for p in reversed(mine)]
    assert theirs.pk not in ids(api.get(URL, {"promotionIds": theirs.pk}))


def test_filters_by_type_active_and_expiry(api, org):
    PromotionFactory(org=org, type="POS")
    earning = PromotionFactory(org=org, type="EARNING")
    inactive = PromotionFactory(org=org, active=False)
    ended = PromotionFactory(
        org=org,
        start_date=timezone.now() - dt.timedelta(days=9),
        end_date=timezone.now() - dt.timedelta(days=1),
    )

    assert ids(api.get(URL, {"type": "EARNING"})) == [earning.pk]
    assert ids(api.get(URL, {"active": "false"})) == [inactive.pk]
    assert ended.pk not in ids(api.get(URL, {"includeExpired": "false"}))
    assert ended.pk in ids(api.get(URL))


def test_limit_caps_the_list(api, org):
    PromotionFactory.create_batch(5, org=org)

    assert len(ids(api.get(URL, {"limit": 2}))) == 2


def test_bad_filters_are_400(api, org):
    for params in (
        {"limit": 0},
        {"limit": 1001},
        {"type": "NOPE"},
        {"promotionIds": ",".join(["a"] * 101)},
        {"includeExpired": "null"},
        {"active": "maybe"},
    ):
        response = api.get(URL, params)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["code"] == 400


def test_an_empty_optional_filter_reads_as_not_sent(api, org):
    promotion = PromotionFactory(org=org)

    response = api.get(f"{URL}?type=&active=&includeExpired=&limit=&promotionIds=")

    assert response.status_code == 200
    assert ids(response) == [promotion.pk]


def test_query_count_does_not_grow_with_the_list(api, org, django_assert_max_num_queries):
    for promotion in PromotionFactory.create_batch(20, org=org):
        PromotionRestrictionFactory(promotion=promotion)

    with django_assert_max_num_queries(6):
        assert len(ids(api.get(URL))) == 20
