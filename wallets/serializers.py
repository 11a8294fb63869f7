"""Shapes the wallet APIs share."""

from __future__ import annotations

from rest_framework import serializers

from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso
from wallets.models import Customer, EarnedPromotion


def earned_promotion_data(instance: EarnedPromotion) -> dict:
    """An earned instance as earn and earn/bulk return it (`customerEarnedPromotions[]`)."""
    return {
        "id": instance.id,
        "customerId": instance.customer_id,
        "promotionId": instance.promotion_id,
        "earnedFromType": instance.earned_from_type,
        "earnedFromId": instance.earned_from_id,
        "eventTime": to_epoch_ms(instance.event_time),
        "eventTimeISO": to_iso(instance.event_time),
        "eventDetails": instance.event_details,
        "validTill": to_epoch_ms(instance.valid_till),
        "validTillISO": to_iso(instance.valid_till),
    }


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField also takes a number (`"lastName": 12`) and keeps
    its text, which the schema (`type: string`) refuses; `max_length` counts before trimming."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        # The limit holds for what was sent (the schema's maxLength), before whitespace is trimmed.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


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


class EventTimeInputSerializer(serializers.Serializer):
    """`eventTime` (epoch ms, being deprecated) or `eventTimeISO` (with its offset): one is required."""

    eventTime = EpochMillisField(required=False)
    eventTimeISO = IsoDateTimeField(required=False)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "eventTime" not in attrs and "eventTimeISO" not in attrs:
            raise serializers.ValidationError("One of eventTime or eventTimeISO is required.")
        attrs["event_time"] = attrs.get("eventTimeISO") or attrs["eventTime"]
        return attrs


def customer_data(customer: Customer) -> dict:
    """A customer as the customer APIs return it (`data`)."""
    return {
        "customerId": customer.pk,
        "mobile": customer.mobile,
        "email": customer.email,
        "externalId": customer.external_id,
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "source": customer.source,
        "createdOn": to_epoch_ms(customer.created_at),
        "createdOnISO": to_iso(customer.created_at),
    }


class CustomerSerializer(serializers.Serializer):
    """For the schema: the shape of `customer_data`."""

    customerId = serializers.IntegerField()
    mobile = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    externalId = serializers.CharField(allow_null=True)
    firstName = serializers.CharField()
    lastName = serializers.CharField()
    source = serializers.CharField()
    createdOn = serializers.IntegerField()
    createdOnISO = serializers.CharField()
