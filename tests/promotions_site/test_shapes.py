"""`promotions_site.shapes`: one declaration renders a body (keys in order, nested shapes, optional keys)
and documents it (the same component a hand-written serializer gave)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from promotions.models import Promotion
from promotions.serializers import PROMOTION_RESPONSE, PromotionOutputSerializer
from promotions_site.shapes import (
    Shape,
    Shaped,
    ShapedJSONRenderer,
    always,
    envelope,
    item,
    itself,
    no_errors,
    or_none,
    serialized,
    via,
)
from promotions_site.timefmt import to_epoch_ms, to_iso
from wallets.models import EarnedPromotion
from wallets.serializers import EARNED_PROMOTION, ISSUE_BULK_RESPONSE, IssueBulkBody, IssuedItem
from wallets.services import IssuedInstance

WHEN = dt.datetime(2025, 3, 4, 10, 11, 12, tzinfo=dt.UTC)


def components(serializer) -> dict:
    """The components drf-spectacular publishes for a response documented by `serializer`."""

    class Probe(APIView):
        @extend_schema(responses={200: serializer})
        def get(self, request):
            raise NotImplementedError

    document = SchemaGenerator(patterns=[path("probe", Probe.as_view())]).get_schema(
        request=None, public=True
    )
    return document["components"]["schemas"]


ITEM = Shape(
    "Item", {"name": (serializers.CharField(), "name"), "size": (serializers.IntegerField(), "size")}
)


def test_render_keeps_the_declared_key_order_whatever_the_getters():
    # given: keys declared out of alphabetical order, one per kind of getter
    shape = Shape(
        "Mixed",
        {
            "zeta": (serializers.CharField(), "owner.name"),
            "alpha": (serializers.IntegerField(), via(to_epoch_ms, "when")),
            "mid": (serializers.CharField(allow_null=True), or_none("label")),
            "beta": (serializers.CharField(), item("code")),
            "const": (serializers.BooleanField(), always(True)),
            "called": (serializers.IntegerField(), lambda source: len(source["code"])),
        },
    )

    class Source(SimpleNamespace):
        def __getitem__(self, key):
            return {"code": "ABC"}[key]

    source = Source(owner=SimpleNamespace(name="Ann"), when=WHEN, label="")

    # when
    body = shape.render(source)

    # then
    assert list(body) == ["zeta", "alpha", "mid", "beta", "const", "called"] == list(shape.keys)
    assert body == {
        "zeta": "Ann",
        "alpha": to_epoch_ms(WHEN),
        "mid": None,
        "beta": "ABC",
        "const": True,
        "called": 3,
    }


def test_every_getter_also_works_on_its_own():
    source = SimpleNamespace(a=SimpleNamespace(b=""), when=WHEN)
    assert via(to_iso, "when")(source) == to_iso(WHEN)
    assert or_none("a.b")(source) is None
    assert item(1)(("x", "y")) == "y"
    assert always("SUCCESS")(source) == "SUCCESS"
    assert itself(source) is source
    assert no_errors(source) == [] and no_errors(source) is not no_errors(source)


def test_nested_shapes_render_one_object_a_list_and_a_dict_of_objects():
    # given
    shape = Shape(
        "Box",
        {
            "first": (ITEM, "first"),
            "all": (ITEM.many(), "items"),
            "byName": (ITEM.by_key(), "by_name"),
        },
    )
    pen, cup = SimpleNamespace(name="pen", size=1), SimpleNamespace(name="cup", size=2)

    # when
    body = shape.render(SimpleNamespace(first=pen, items=[pen, cup], by_name={"b": cup, "a": pen}))

    # then: lists keep their order, a dict its keys' order
    assert json.dumps(body) == json.dumps(
        {
            "first": {"name": "pen", "size": 1},
            "all": [{"name": "pen", "size": 1}, {"name": "cup", "size": 2}],
            "byName": {"b": {"name": "cup", "size": 2}, "a": {"name": "pen", "size": 1}},
        }
    )


def test_an_optional_key_is_left_out_when_none_or_empty_and_a_required_one_never():
    # given: `errors` and `details` not required, `note` required but nullable
    shape = Shape(
        "Answer",
        {
            "data": (serializers.IntegerField(), "data"),
            "details": (ITEM.field(required=False), "details"),
            "note": (serializers.CharField(allow_null=True), "note"),
            "errors": (serializers.ListField(required=False), "errors"),
        },
    )

    # when / then: absent when None or empty, in place (declared order) when set
    assert shape.render(SimpleNamespace(data=1, details=None, note=None, errors=[])) == {
        "data": 1,
        "note": None,
    }
    assert shape.render(SimpleNamespace(data=1, details=None, note="n", errors={})) == {
        "data": 1,
        "note": "n",
    }
    full = shape.render(
        SimpleNamespace(data=1, details=SimpleNamespace(name="pen", size=0), note=None, errors=["e"])
    )
    assert list(full) == ["data", "details", "note", "errors"]
    assert full["details"] == {"name": "pen", "size": 0}  # a zero inside is a value, not "empty"


def test_an_attribute_several_paths_share_is_read_once():
    # given: `owner` is expensive (a related-object lookup on a model)
    reads = []

    class Source:
        @property
        def owner(self):
            reads.append("owner")
            return SimpleNamespace(name="Ann", mobile="1", email="")

    shape = Shape(
        "Owner",
        {
            "name": (serializers.CharField(), "owner.name"),
            "mobile": (serializers.CharField(), "owner.mobile"),
            "email": (serializers.CharField(allow_null=True), or_none("owner.email")),
        },
    )

    # when
    body = shape.render(Source())

    # then
    assert body == {"name": "Ann", "mobile": "1", "email": None}
    assert reads == ["owner"]


def test_a_getter_path_must_be_attribute_names():
    with pytest.raises(ValueError):
        Shape("Bad", {"x": (serializers.CharField(), "a-b")})
    with pytest.raises(ValueError):
        via(str, "a;b")


def test_serialized_and_envelope_render_through_the_serializer(db):
    # given
    promotion = Promotion(
        id="6620a1b2c3d4e5f6a7b8c9d0", org_id=1, name="Ten off", start_date=WHEN, end_date=WHEN
    )
    promotion.created_on = promotion.last_updated_on = WHEN

    # when
    body = PROMOTION_RESPONSE.render(promotion)

    # then
    assert body == {"data": PromotionOutputSerializer(promotion).data, "errors": []}
    box = envelope("ListBox", serialized(PromotionOutputSerializer, many=True))
    assert box.render([promotion]) == {
        "data": PromotionOutputSerializer([promotion], many=True).data,
        "errors": [],
    }


def test_the_serializer_lists_its_fields_in_key_order_even_when_a_nested_field_was_made_later():
    # given: the plain field below is created before the nested shape's field
    later = Shape("Later", {"data": (ITEM, itself), "errors": (serializers.ListField(), no_errors)})

    # then
    assert list(later.serializer().fields) == ["data", "errors"]
    assert later.serializer.__name__ == "Later"


# --- The schema component is the one the hand-written serializer published --------------------------


class EarnedPromotionSerializer(serializers.Serializer):
    """For the schema: the shape of `earned_promotion_data`."""

    id = serializers.CharField()
    customerId = serializers.IntegerField()
    promotionId = serializers.CharField()
    earnedFromType = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
    earnedFromId = serializers.CharField()
    eventTime = serializers.IntegerField()
    eventTimeISO = serializers.CharField()
    eventDetails = serializers.JSONField()
    validTill = serializers.IntegerField()
    validTillISO = serializers.CharField()


class IssuedPromotionSerializer(serializers.Serializer):
    id = serializers.CharField()
    customerId = serializers.IntegerField()
    promotionId = serializers.CharField()
    earnedFromId = serializers.CharField()
    eventTime = serializers.IntegerField()
    validTill = serializers.IntegerField()


class IssueBulkErrorSerializer(serializers.Serializer):
    customerId = serializers.IntegerField()
    code = serializers.IntegerField()
    message = serializers.CharField()


class IssueBulkResponseSerializer(serializers.Serializer):
    data = serializers.DictField(child=IssuedPromotionSerializer())
    errors = IssueBulkErrorSerializer(many=True, required=False)


@pytest.mark.parametrize(
    ("shape", "hand_written"),
    [(EARNED_PROMOTION, EarnedPromotionSerializer), (ISSUE_BULK_RESPONSE, IssueBulkResponseSerializer)],
    ids=["flat, with a description", "nested, by key and a list, an optional key"],
)
def test_the_schema_component_is_the_hand_written_one(shape, hand_written):
    published = components(shape.serializer)
    assert json.dumps(published) == json.dumps(components(hand_written))
    assert shape.name in published


def test_issue_bulk_renders_what_the_hand_written_renderer_did():
    # given
    instance = IssuedInstance("6600", "C-1", WHEN, WHEN + dt.timedelta(days=30))
    errors = [{"customerId": 9, "code": 8015, "message": "Customer not found."}]

    # when
    body = ISSUE_BULK_RESPONSE.render(IssueBulkBody({"7": IssuedItem(7, "P-1", instance)}, errors))

    # then
    assert json.dumps(body) == json.dumps(
        {
            "data": {
                "7": {
                    "id": "6600",
                    "customerId": 7,
                    "promotionId": "P-1",
                    "earnedFromId": "C-1",
                    "eventTime": to_epoch_ms(WHEN),
                    "validTill": to_epoch_ms(WHEN + dt.timedelta(days=30)),
                }
            },
            "errors": errors,
        }
    )
    assert ISSUE_BULK_RESPONSE.render(IssueBulkBody({}, [])) == {"data": {}}


# --- The JSON text written directly (`render_json`, `Shaped`, `ShapedJSONRenderer`) --------------------

TAG = Shape(
    "Tag", {"label": (serializers.CharField(), "label"), "weight": (serializers.IntegerField(), "weight")}
)
SINK = Shape(
    "Sink",
    {
        "text": (serializers.CharField(), "text"),
        "count": (serializers.IntegerField(), "count"),
        "flag": (serializers.BooleanField(), "flag"),
        "mode": (serializers.ChoiceField(choices=["A", "B"]), "mode"),
        "anything": (serializers.JSONField(), "anything"),
        "maybe": (serializers.CharField(required=False), "maybe"),
        "tags": (TAG.many(), "tags"),
        "main": (TAG.field(), "main"),
        "byKey": (TAG.by_key(), "by_key"),
        "later": (serializers.IntegerField(required=False), "later"),
        "stamp": (serializers.IntegerField(), via(to_epoch_ms, "when")),
    },
)
# Optional keys first: the separator before a key depends on what was written before it.
OPTIONAL_FIRST = Shape(
    "OptionalFirst",
    {
        "a": (serializers.CharField(required=False), "a"),
        "b": (serializers.ListField(required=False), "b"),
        "c": (serializers.IntegerField(), "c"),
    },
)

_numbers = st.one_of(
    st.integers(),
    st.decimals(min_value=-(10**9), max_value=10**9, places=4),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
# Texts of every kind (quotes, backslashes, control characters, U+2028 and U+2029, any plane), and values
# of another type than the field's, which go through json.dumps as the dict's did.
_texts = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from('"\\\u2028\u2029\x00\x1f')
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)
_tags = st.builds(
    SimpleNamespace, label=_texts | st.integers() | st.none(), weight=st.integers() | st.booleans() | _texts
)
_sinks = st.builds(
    SimpleNamespace,
    text=_texts | _numbers | st.none(),
    count=st.integers() | st.booleans() | _texts | st.none() | _numbers,
    flag=st.booleans() | st.none(),
    mode=st.sampled_from(["A", "B"]) | _texts,
    anything=_json,
    maybe=st.none() | st.just("") | st.just([]) | _texts,
    tags=st.lists(_tags, max_size=3),
    main=_tags,
    by_key=st.dictionaries(_texts, _tags, max_size=3),
    later=st.none() | st.integers(),
    when=st.datetimes(timezones=st.just(dt.UTC)),
)
_optional_firsts = st.builds(
    SimpleNamespace,
    a=st.none() | st.just("") | _texts,
    b=st.none() | st.just([]) | st.lists(_texts, max_size=2),
    c=st.integers(),
)


@settings(max_examples=300, deadline=None)
@given(source=_sinks)
def test_the_direct_json_text_is_the_bytes_json_renderer_writes_of_the_built_body(source):
    # when the body is written directly and built as dicts then rendered by DRF's renderer
    written = ShapedJSONRenderer().render(Shaped(SINK, source))

    # then the bytes are the same
    assert written == JSONRenderer().render(SINK.render(source))


@settings(max_examples=100, deadline=None)
@given(source=_optional_firsts)
def test_the_separators_follow_the_keys_written_when_optional_keys_come_first(source):
    assert ShapedJSONRenderer().render(Shaped(OPTIONAL_FIRST, source)) == JSONRenderer().render(
        OPTIONAL_FIRST.render(source)
    )


def test_a_client_asking_for_indented_json_gets_what_json_renderer_indents():
    # given a body and an Accept header asking for an indent
    source = SimpleNamespace(a="x\u2028y", b=["é"], c=3)
    accept = "application/json; indent=4"

    # when / then: the direct writer steps aside for the built body
    written = ShapedJSONRenderer().render(Shaped(OPTIONAL_FIRST, source), accept, {})
    assert written == JSONRenderer().render(OPTIONAL_FIRST.render(source), accept, {})
    assert b"\n    " in written and b"\\u2028" in written


def test_a_shaped_body_reads_as_the_dict_its_shape_renders():
    source = SimpleNamespace(a="", b=None, c=7)
    shaped = Shaped(OPTIONAL_FIRST, source)

    assert shaped == OPTIONAL_FIRST.render(source) == {"a": "", "c": 7}
    assert (list(shaped), shaped["c"], len(shaped)) == (["a", "c"], 7, 2)
    # DRF's own renderer (the idempotency record's) reads it as a mapping too
    assert JSONRenderer().render(shaped) == b'{"a":"","c":7}'


def test_the_direct_writer_steps_aside_for_renderer_settings_it_does_not_write():
    class AsciiRenderer(ShapedJSONRenderer):
        ensure_ascii = True

    source = SimpleNamespace(a="é", b=None, c=1)
    assert AsciiRenderer().render(Shaped(OPTIONAL_FIRST, source)) == b'{"a":"\\u00e9","c":1}'
