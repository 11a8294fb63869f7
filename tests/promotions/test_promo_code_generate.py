"""Generating a CODE promotion's codes: shape, uniqueness, the space rule, idempotency, resume."""

from __future__ import annotations

import pytest

from promotions.audit import Actor
from promotions.codegen import services
from promotions.codegen.services import (
    generation_params,
    promo_code_batch_cancel,
    promo_code_batch_generate,
    promo_code_batch_run,
)
from promotions.codegen.spec import ALPHANUMERIC, CodeSpec, spec_build
from promotions.models import PromoCode, PromoCodeBatch, PromotionType
from promotions_site.errors import ErrorCode, PromotionError
from tests.factories import PromotionFactory

ACTOR = Actor.system("test")


@pytest.fixture
def code_promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CODE)


def generate(promotion, request_id="r1", run=True, **params):
    batch = promo_code_batch_generate(
        promotion=promotion, params=generation_params(**params), request_id=request_id, actor=ACTOR
    )
    return promo_code_batch_run(batch_id=batch.pk) if run else batch


def codes_of(batch) -> list[str]:
    return list(PromoCode.objects.filter(batch=batch).values_list("code", flat=True))


@pytest.mark.parametrize(
    "params",
    [
        {"length": 10},
        {"pattern": "summer-####-??????"},
        {"length": 22, "prefix": "xmas-", "suffix": "-26", "charset": "CUSTOM", "alphabet": "abcdefgh"},
        {"length": 16, "charset": "NUMERIC"},
    ],
)
def test_100k_codes_are_unique_and_match_their_shape(code_promotion, settings, params):
    # given
    settings.PROMO_CODE_CHUNK_SIZE = 30_000  # several chunks
    spec = spec_build(**params)
    # when
    batch = generate(code_promotion, count=100_000, **params)
    # then
    codes = codes_of(batch)
    assert batch.status == PromoCodeBatch.Status.DONE
    assert batch.done == batch.total == len(codes) == len(set(codes)) == 100_000
    regex = spec.regex()
    assert all(regex.fullmatch(code) for code in codes)
    assert all(len(code) == spec.length for code in codes)


def test_default_alphabet_has_no_look_alikes():
    assert not set("01OIL") & set(ALPHANUMERIC)
    assert len(ALPHANUMERIC) == 31


def test_draw_is_uniform_over_the_alphabet():
    # given a 3-symbol alphabet (256 % 3 != 0: a biased mapping would favour the first symbol)
    spec = CodeSpec((spec_build(length=5, charset="CUSTOM", alphabet="ABC").segments[0],))
    # when
    drawn = "".join(spec.draw(60_000))
    # then each symbol is a third, within 1 %
    for symbol in "ABC":
        assert abs(drawn.count(symbol) / len(drawn) - 1 / 3) < 0.01


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"count": 10, "length": 4}, ErrorCode.PROMO_CODE_TOO_SHORT),
        ({"count": 10, "length": 41}, ErrorCode.PROMO_CODE_TOO_LONG),
        ({"count": 10, "length": 10, "prefix": "AB$"}, ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC),
        (
            {"count": 10, "length": 10, "charset": "CUSTOM", "alphabet": "AB!"},
            ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC,
        ),
        ({"count": 10, "length": 10, "charset": "CUSTOM", "alphabet": "aA"}, ErrorCode.BAD_REQUEST),
        ({"count": 10, "length": 10, "charset": "HEX"}, ErrorCode.BAD_REQUEST),
        ({"count": 10, "pattern": "CODE-####", "length": 9}, ErrorCode.BAD_REQUEST),
        ({"count": 10, "pattern": "NO-SLOTS"}, ErrorCode.BAD_REQUEST),
        ({"count": 0, "length": 10}, ErrorCode.BAD_REQUEST),
        ({"count": 10_000_001, "length": 30}, ErrorCode.BAD_REQUEST),
        ({"count": 10, "length": 6, "prefix": "ABCDEF"}, ErrorCode.BAD_REQUEST),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(code_promotion, params, code):
    with pytest.raises(PromotionError) as refused:
        generate(code_promotion, **params)
    assert refused.value.code == code
    assert not PromoCodeBatch.objects.exists()


def test_space_must_hold_a_million_codes_per_code(code_promotion):
    # given: 31^5 = 28,629,151 five-symbol codes hold 28 codes at a million each
    # when / then
    assert generate(code_promotion, count=28, length=5).done == 28
    with pytest.raises(PromotionError) as refused:
        generate(code_promotion, request_id="r2", count=1, length=5)  # 29 with the 28 there
    assert refused.value.code == ErrorCode.PROMO_CODE_SPACE_TOO_SMALL
    with pytest.raises(PromotionError):
        generate(code_promotion, request_id="r3", count=1, length=5, charset="NUMERIC")  # 10^5 < 10^6


def test_only_code_promotions(org):
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    with pytest.raises(PromotionError) as refused:
        generate(promotion, count=1, length=10)
    assert refused.value.code == ErrorCode.UNSUPPORTED_PROMOTION_TYPE


def test_same_request_id_answers_the_same_batch(code_promotion):
    # given
    first = generate(code_promotion, count=500, length=10)
    # when
    again = generate(code_promotion, count=500, length=10)
    # then
    assert again.pk == first.pk
    assert PromoCode.objects.count() == 500
    with pytest.raises(PromotionError) as refused:
        generate(code_promotion, count=501, length=10)
    assert refused.value.code == ErrorCode.PROMO_CODE_REQUEST_ID_REUSED
    other = PromotionFactory(org=code_promotion.org, type=PromotionType.CODE)
    with pytest.raises(PromotionError):
        generate(other, count=500, length=10)


def test_interrupted_batch_resumes_without_duplicates_or_over_count(code_promotion, settings, monkeypatch):
    # given a batch that crashed in its third chunk (the first two committed)
    settings.PROMO_CODE_CHUNK_SIZE = 1000
    real_insert = services._codes_insert
    calls = []

    def crashing_insert(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("worker lost")
        return real_insert(**kwargs)

    monkeypatch.setattr(services, "_codes_insert", crashing_insert)
    batch = generate(code_promotion, count=4500, length=10, run=False)
    with pytest.raises(ConnectionError):
        promo_code_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.done, len(codes_of(batch))) == ("FAILED", 2000, 2000)
    # and one left RUNNING (a worker killed outright records nothing)
    PromoCodeBatch.objects.filter(pk=batch.pk).update(status="RUNNING", error="")
    monkeypatch.setattr(services, "_codes_insert", real_insert)
    # when it runs again (the same request, or the command)
    batch = generate(code_promotion, count=4500, length=10)
    # then
    codes = codes_of(batch)
    assert (batch.status, batch.done, len(codes), len(set(codes))) == ("DONE", 4500, 4500, 4500)


def test_collisions_are_drawn_again(code_promotion, monkeypatch):
    # given codes the org already has, which the first draw repeats
    existing = generate(code_promotion, request_id="seed", count=300, length=10)
    taken = codes_of(existing)
    real_draw = CodeSpec.draw
    draws = []

    def draw_with_repeats(self, count):
        draws.append(count)
        fresh = real_draw(self, count)
        return (taken[:100] + fresh[100:]) if len(draws) == 1 else fresh

    monkeypatch.setattr(CodeSpec, "draw", draw_with_repeats)
    # when
    batch = generate(code_promotion, count=1000, length=10)
    # then
    assert draws == [1000, 100]
    assert batch.done == 1000 and len(set(codes_of(batch))) == 1000


def test_cancel_stops_the_batch(code_promotion, settings):
    settings.PROMO_CODE_CHUNK_SIZE = 100
    batch = generate(code_promotion, count=1000, length=10, run=False)
    services.promo_code_batch_chunk_run(batch_id=batch.pk)
    promo_code_batch_cancel(batch=batch, actor=ACTOR)
    batch = promo_code_batch_run(batch_id=batch.pk)
    assert (batch.status, batch.done) == ("CANCELLED", 100)
    with pytest.raises(PromotionError) as refused:
        promo_code_batch_cancel(batch=batch, actor=ACTOR)
    assert refused.value.code == ErrorCode.CONFLICT
