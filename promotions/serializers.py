"""Shapes several promotion APIs share."""

from __future__ import annotations

from rest_framework import serializers

from promotions.models import Promotion
from promotions_site.timefmt import to_epoch_ms, to_iso


class PromotionOutputSerializer(serializers.ModelSerializer):
    """A cart promotion as the create/get/update APIs return it."""

    orgId = serializers.IntegerField(source="org_id")
    messageLabel = serializers.CharField(source="message_label")
    isStackable = serializers.BooleanField(source="is_stackable")
    campaignId = serializers.CharField(source="campaign_id")
    createdBy = serializers.CharField(source="created_by")
    lastUpdatedBy = serializers.CharField(source="last_updated_by")
    createdOn = serializers.SerializerMethodField()
    createdOnISO = serializers.SerializerMethodField()
    lastUpdatedOn = serializers.SerializerMethodField()
    lastUpdatedOnISO = serializers.SerializerMethodField()
    startDate = serializers.SerializerMethodField()
    startDateISO = serializers.SerializerMethodField()
    endDate = serializers.SerializerMethodField()
    endDateISO = serializers.SerializerMethodField()
    promotionRestrictions = serializers.JSONField(source="promotion_restrictions")
    earnLimitedToSpecificAudience = serializers.BooleanField(source="earn_limited_to_specific_audience")
    customFieldValues = serializers.JSONField(source="custom_field_values")
    customerActivationRequired = serializers.BooleanField(source="customer_activation_required")
    maxIssuancePerCustomer = serializers.IntegerField(source="max_issuance_per_customer")
    maxEarningPerCustomer = serializers.IntegerField(source="max_earning_per_customer", allow_null=True)
    earnedValidityDays = serializers.IntegerField(source="earned_validity_days", allow_null=True)
    earningCriteria = serializers.JSONField(source="earning_criteria", allow_null=True)

    class Meta:
        model = Promotion
        fields = [
            "id", "name", "orgId", "priority", "active", "messageLabel", "type", "condition", "action",
            "createdBy", "createdOn", "createdOnISO", "lastUpdatedBy", "lastUpdatedOn", "lastUpdatedOnISO",
            "startDate", "startDateISO", "endDate", "endDateISO", "campaignId", "promotionRestrictions",
            "earnLimitedToSpecificAudience", "customFieldValues", "customerActivationRequired", "mode",
            "maxIssuancePerCustomer", "maxEarningPerCustomer", "earnedValidityDays", "earningCriteria",
            "isStackable",
        ]  # fmt: skip

    def get_createdOn(self, obj) -> int:
        return to_epoch_ms(obj.created_on)

    def get_createdOnISO(self, obj) -> str:
        return to_iso(obj.created_on)

    def get_lastUpdatedOn(self, obj) -> int:
        return to_epoch_ms(obj.last_updated_on)

    def get_lastUpdatedOnISO(self, obj) -> str:
        return to_iso(obj.last_updated_on)

    def get_startDate(self, obj) -> int:
        return to_epoch_ms(obj.start_date)

    def get_startDateISO(self, obj) -> str:
        return to_iso(obj.start_date)

    def get_endDate(self, obj) -> int:
        return to_epoch_ms(obj.end_date)

    def get_endDateISO(self, obj) -> str:
        return to_iso(obj.end_date)
