"""The shape the promo-code batch endpoints share: a batch, in the v1 envelope."""

from __future__ import annotations

from rest_framework import serializers

from promotions_site.shapes import envelope, serialized
from promotions_site.timefmt import EpochMillisField


class PromoCodeBatchOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    promotionId = serializers.CharField(source="promotion_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    requestId = serializers.CharField(source="request_id")
    params = serializers.DictField(
        help_text="What was asked: the generation's parameters, or the upload's file."
    )
    total = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Codes written so far.")
    failed = serializers.IntegerField(help_text="Upload rows refused (0 for a generation).")
    error = serializers.CharField(help_text="Why a FAILED batch stopped; empty otherwise.")
    createdOn = EpochMillisField(source="created_at")
    finishedOn = EpochMillisField(source="finished_at", allow_null=True)


PROMO_CODE_BATCH_RESPONSE = envelope("PromoCodeBatchEnvelope", serialized(PromoCodeBatchOutputSerializer))
