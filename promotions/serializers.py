"""Shapes several promotion APIs share: the promotion as the APIs return it, the response bodies
(as `Shape`s, `promotions_site/shapes.py`) and the parts of the create/update input."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from promotions.models import Promotion, PromotionMode, PromotionRestriction, PromotionType
from promotions_site.limits import free_json_size
from promotions_site.shapes import Shape, always, envelope, item, itself, serialized
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso


class EchoedRestrictionSerializer(serializers.Serializer):
    """For the schema: one limit as the promotion APIs echo it (`RestrictionSpec.as_data`)."""

    kpi = serializers.ChoiceField(choices=PromotionRestriction.Kpi.values)
    limit = serializers.CharField(help_text='A decimal string with 6 decimals ("5000.000000").')
    frequency = serializers.CharField(required=False)
    windowType = serializers.CharField(required=False)
    minTimeBetweenRepeat = serializers.IntegerField(required=False)
    fixedWindowConfig = serializers.DictField(required=False)


class EchoedRestrictionsSerializer(serializers.Serializer):
    """For the schema: `promotionRestrictions` as echoed (`restrictions_data`): only the levels set."""

    Customer = EchoedRestrictionSerializer(many=True, required=False)
    Cart = EchoedRestrictionSerializer(many=True, required=False)
    Promotion = EchoedRestrictionSerializer(many=True, required=False)
    Earn = EchoedRestrictionSerializer(many=True, required=False)
    Code = EchoedRestrictionSerializer(many=True, required=False)


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
    promotionRestrictions = serializers.SerializerMethodField()
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

    @extend_schema_field(EchoedRestrictionsSerializer)
    def get_promotionRestrictions(self, obj) -> dict:
        from promotions.services import RestrictionSpec, restrictions_data

        return restrictions_data([RestrictionSpec.of(row) for row in obj.restrictions.all()])

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


# --- Response bodies -------------------------------------------------------------------------------

# The token, from oauth_token_issue's (token, ttl).
OAUTH_TOKEN_RESPONSE = Shape(
    "OAuthTokenResponse",
    {
        "data": (
            Shape(
                "OAuthToken",
                {
                    "accessToken": (serializers.CharField(), item(0)),
                    "ttlSeconds": (serializers.IntegerField(), item(1)),
                },
            ),
            itself,
        ),
        "errors": (serializers.JSONField(allow_null=True), always(None)),
    },
)
PROMOTION_RESPONSE = envelope("PromotionEnvelope", serialized(PromotionOutputSerializer))
PROMOTION_LIST_RESPONSE = envelope("PromotionListEnvelope", serialized(PromotionOutputSerializer, many=True))
# activate and deactivate: `data` is true.
BOOLEAN_RESPONSE = envelope("BooleanEnvelope", serializers.BooleanField())


# --- Input shapes of the create/update API ---------------------------------------------------------
# Capillary's create-promotion docs name these objects; we validate their shape strictly (unknown
# enum values and missing parts are 400) so a promotion never holds a condition nothing can evaluate.

CONDITION_TYPES = [
    "CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT",
    "PAYMENT_MODE",
]  # fmt: skip
ACTION_TYPES = ["CART_BASED", "PRODUCT_BASED", "TENDER", "PER_UNIT", "FREE_PRODUCT", "FIXED_PRICE"]
CRITERIA_ENTITIES = ["SKU", "CATEGORY", "BRAND", "ATTRIBUTE", "PRODUCT_ID", "STYLE", "COLOR", "SIZE"]
CRITERIA_VALUES_MAX = 100
CRITERIA_LIST_MAX = 20  # criteria per product condition (Capillary documents no maximum)
AMOUNT = {"max_digits": 14, "decimal_places": 2, "coerce_to_string": False}


def _json_type(field) -> tuple[str, tuple[type, ...]] | None:
    """The JSON type the schema documents for a field, and the Python types json.loads gives for it."""
    if isinstance(field, serializers.BooleanField):
        return "boolean", (bool,)
    if isinstance(field, serializers.IntegerField | EpochMillisField):
        return "integer", (int,)
    if isinstance(field, serializers.DecimalField) and getattr(field, "coerce_to_string", None) is False:
        return "number", (int, float)
    if isinstance(field, serializers.CharField) and not isinstance(field, serializers.DateTimeField):
        return "string", (str,)
    return None


def _json_type_errors(field, value) -> list[str]:
    if value is None:
        return []
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        return [
            f"Item {index}: {error}"
            for index, item in enumerate(value)
            for error in _json_type_errors(field.child, item)
        ]
    expected = _json_type(field)
    if expected is None:
        return []
    name, types = expected
    if isinstance(value, types) and (name == "boolean" or not isinstance(value, bool)):
        return []
    return [f"Must be a JSON {name}."]


class JsonTypesMixin:
    """Each value must be of the JSON type the schema documents for its field. DRF's fields also take
    `"1"` or `1.0` for an integer, `0` or `"yes"` for a boolean and `12` for a string; the schema says
    they are invalid, so a client generated from it, or a fuzzer, could not tell what is accepted."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {
                name: messages
                for name, field in self.fields.items()
                if name in data and (messages := _json_type_errors(field, data[name]))
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class _Strict(JsonTypesMixin, serializers.Serializer):
    """Rejects keys it does not know, so a typo ("cartCondtion") is a 400, not a silently empty rule."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: "Unknown field." for key in unknown})
        return super().to_internal_value(data)


class CriteriaSerializer(_Strict):
    entity = serializers.ChoiceField(choices=CRITERIA_ENTITIES)
    operator = serializers.ChoiceField(choices=["IN", "NOT_IN"])
    values = serializers.ListField(
        child=serializers.CharField(max_length=255), allow_empty=False, max_length=CRITERIA_VALUES_MAX,
        error_messages={"max_length": f"SKU values exceed {CRITERIA_VALUES_MAX}."},
    )  # fmt: skip


class ProductConditionSerializer(_Strict):
    criteriaList = CriteriaSerializer(many=True, allow_empty=False, max_length=CRITERIA_LIST_MAX)
    kpi = serializers.ChoiceField(choices=["AMOUNT", "QUANTITY", "NONE"], default="NONE")
    operator = serializers.ChoiceField(
        choices=["EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL"], required=False
    )
    value = serializers.DecimalField(min_value=0, required=False, **AMOUNT)

    def validate(self, attrs):
        if attrs["kpi"] != "NONE" and ("operator" not in attrs or "value" not in attrs):
            raise serializers.ValidationError("operator and value are required when kpi is not NONE.")
        return attrs


class CartConditionSerializer(_Strict):
    kpi = serializers.ChoiceField(choices=["SUBTOTAL", "ITEMCOUNT"])
    operator = serializers.ChoiceField(choices=["EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL"])
    value = serializers.DecimalField(min_value=0, **AMOUNT)


class ComboProductConditionSerializer(_Strict):
    productConditions = ProductConditionSerializer(many=True, allow_empty=False, max_length=20)


class ConditionSerializer(_Strict):
    """`condition`: its `type` says which one of the nested conditions must be present."""

    REQUIRED_PART = {
        "CART": "cartCondition",
        "PRODUCT": "productCondition",
        "COMBO_PRODUCT": "comboProductCondition",
        "PAYMENT_MODE_COMBO_PRODUCT": "comboProductCondition",
    }

    type = serializers.ChoiceField(choices=CONDITION_TYPES)
    cartCondition = CartConditionSerializer(required=False)
    productCondition = ProductConditionSerializer(required=False)
    comboProductCondition = ComboProductConditionSerializer(required=False)
    tenderCondition = serializers.DictField(required=False, validators=[free_json_size])
    paymentModeCondition = serializers.DictField(required=False, validators=[free_json_size])

    def validate(self, attrs):
        part = self.REQUIRED_PART.get(attrs["type"])
        if part and part not in attrs:
            raise serializers.ValidationError({part: f"Required when condition type is {attrs['type']}."})
        return attrs


class ProductBasedActionSerializer(_Strict):
    type = serializers.ChoiceField(choices=["ABSOLUTE", "PERCENTAGE", "FIXED_PRICE"])
    value = serializers.DecimalField(min_value=0, **AMOUNT)
    includeItemsFromConditionSet = serializers.BooleanField(default=True)
    productBasedCondition = ProductConditionSerializer(required=False)

    def validate(self, attrs):
        return _check_discount(attrs)


class CartBasedActionSerializer(_Strict):
    type = serializers.ChoiceField(choices=["ABSOLUTE", "PERCENTAGE"])
    value = serializers.DecimalField(min_value=0, **AMOUNT)

    def validate(self, attrs):
        return _check_discount(attrs)


class FreeProductActionSerializer(_Strict):
    includeItemsFromConditionSet = serializers.BooleanField(default=True)
    productBasedCondition = ProductConditionSerializer(required=False)
    quantity = serializers.IntegerField(min_value=1, required=False)


class FixedPriceActionSerializer(_Strict):
    value = serializers.DecimalField(min_value=0, **AMOUNT)
    includeItemsFromConditionSet = serializers.BooleanField(default=True)
    productBasedCondition = ProductConditionSerializer(required=False)


class PerUnitActionSerializer(_Strict):
    type = serializers.ChoiceField(choices=["ABSOLUTE", "PERCENTAGE"], default="ABSOLUTE")
    value = serializers.DecimalField(min_value=0, **AMOUNT)
    unit = serializers.DecimalField(min_value=0, required=False, **AMOUNT)
    includeItemsFromConditionSet = serializers.BooleanField(default=True)
    productBasedCondition = ProductConditionSerializer(required=False)

    def validate(self, attrs):
        return _check_discount(attrs)


def _check_discount(attrs):
    """Percentages are 0 to 100 exclusive of 0; amounts are positive (two decimals, by the field)."""
    if attrs["value"] <= 0:
        raise serializers.ValidationError({"value": "Must be greater than 0."})
    if attrs.get("type") == "PERCENTAGE" and attrs["value"] > 100:
        raise serializers.ValidationError({"value": "A percentage must be at most 100."})
    return attrs


class ActionSerializer(_Strict):
    """`action`: its `type` says which one of the nested actions must be present."""

    REQUIRED_PART = {
        "CART_BASED": "cartBasedAction",
        "PRODUCT_BASED": "productBasedAction",
        "FREE_PRODUCT": "freeProductAction",
        "FIXED_PRICE": "fixedPriceAction",
        "PER_UNIT": "perUnitAction",
        "TENDER": "tenderBasedAction",
    }

    type = serializers.ChoiceField(choices=ACTION_TYPES)
    cartBasedAction = CartBasedActionSerializer(required=False)
    productBasedAction = ProductBasedActionSerializer(required=False)
    freeProductAction = FreeProductActionSerializer(required=False)
    fixedPriceAction = FixedPriceActionSerializer(required=False)
    perUnitAction = PerUnitActionSerializer(required=False)
    tenderBasedAction = serializers.DictField(required=False, validators=[free_json_size])

    def validate(self, attrs):
        part = self.REQUIRED_PART[attrs["type"]]
        if part not in attrs:
            raise serializers.ValidationError({part: f"Required when action type is {attrs['type']}."})
        return attrs


# A number, as the documented bodies send it (`"limit": 2`), or the decimal string every answer
# echoes (`"2.000000"`), so a promotion read can be sent back as it is.
@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0.000001, "maximum": 10**12, "exclusiveMaximum": True},
            {"type": "string", "format": "decimal"},
        ]
    }
)
class RestrictionLimitField(serializers.DecimalField):
    pass


class RestrictionSerializer(_Strict):
    """One limit of `promotionRestrictions.<Level>[]`."""

    kpi = serializers.ChoiceField(choices=PromotionRestriction.Kpi.values)
    limit = RestrictionLimitField(max_digits=18, decimal_places=6, min_value=Decimal("0.000001"))
    frequency = serializers.ChoiceField(choices=["DAYS", "WEEKS", "DOES_NOT_REPEAT"], required=False)
    minTimeBetweenRepeat = serializers.IntegerField(min_value=0, required=False)
    windowType = serializers.ChoiceField(choices=["OVERALL", "MOVING", "FIXED", "CLASSIC"], required=False)
    fixedWindowConfig = serializers.DictField(required=False, validators=[free_json_size])


# One limit per level and kpi: at most one entry per kpi in each level's list.
_LEVEL_LIMITS = {
    "many": True,
    "required": False,
    "max_length": len(PromotionRestriction.Kpi.values),
    "help_text": "At most one limit per kpi in a level.",
}


class PromotionRestrictionsSerializer(_Strict):
    Customer = RestrictionSerializer(**_LEVEL_LIMITS)
    Cart = RestrictionSerializer(**_LEVEL_LIMITS)
    Promotion = RestrictionSerializer(**_LEVEL_LIMITS)
    Earn = RestrictionSerializer(**_LEVEL_LIMITS)
    Code = RestrictionSerializer(**_LEVEL_LIMITS)


def restriction_specs(validated: dict) -> list:
    """Validated `promotionRestrictions` as the service's RestrictionSpec list."""
    from promotions.services import RestrictionSpec

    return [
        RestrictionSpec(
            level=level,
            kpi=item["kpi"],
            limit=item["limit"],
            frequency=item.get("frequency", ""),
            window_type=item.get("windowType", ""),
            min_time_between_repeat=item.get("minTimeBetweenRepeat"),
            fixed_window_config=item.get("fixedWindowConfig"),
        )
        for level, items in validated.items()
        for item in items
    ]


def _limit_field(value):
    if value != -1 and not 1 <= value <= 50:
        raise serializers.ValidationError("Must be -1 (unlimited) or between 1 and 50.")


def _earning_limit_field(value):
    if value is not None and value != -1 and value < 1:
        raise serializers.ValidationError("Must be -1 (unlimited) or at least 1.")


# The validators' rules, as the schema can say them (-1 or a range, so a minimum and a description).
@extend_schema_field(
    {"type": "integer", "minimum": -1, "maximum": 50, "description": "-1 (unlimited) or 1 to 50."}
)
class IssuanceLimitField(serializers.IntegerField):
    pass


@extend_schema_field({"type": "integer", "minimum": -1, "description": "-1 (unlimited) or at least 1."})
class EarningLimitField(serializers.IntegerField):
    pass


class PromotionInputSerializer(JsonTypesMixin, serializers.Serializer):
    """The body of create (POST) and update (PUT): Capillary's field names.

    Dates come as epoch ms (`startDate`, `endDate`) or ISO 8601 with an offset (`startDateISO`,
    `endDateISO`, which win when both are sent). On update every field may be omitted and keeps
    its value; `type` and `active` may be sent but must not change.
    """

    name = serializers.CharField(min_length=1, max_length=50, help_text="Unique in the org (else 716).")
    type = serializers.ChoiceField(choices=PromotionType.values)
    messageLabel = serializers.CharField(max_length=255, allow_blank=True, required=False)
    active = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    isStackable = serializers.BooleanField(required=False)
    startDate = EpochMillisField(required=False)
    startDateISO = IsoDateTimeField(required=False)
    endDate = EpochMillisField(required=False)
    endDateISO = IsoDateTimeField(required=False)
    campaignId = serializers.CharField(max_length=100, allow_blank=True, required=False)
    mode = serializers.ChoiceField(choices=PromotionMode.values, required=False)
    condition = ConditionSerializer()
    action = ActionSerializer()
    customerActivationRequired = serializers.BooleanField(required=False)
    maxIssuancePerCustomer = IssuanceLimitField(required=False, validators=[_limit_field])
    maxEarningPerCustomer = EarningLimitField(
        required=False, allow_null=True, validators=[_earning_limit_field]
    )
    earnedValidityDays = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True
    )
    earnLimitedToSpecificAudience = serializers.BooleanField(required=False)
    earningCriteria = serializers.DictField(required=False, allow_null=True, validators=[free_json_size])
    customFieldValues = serializers.DictField(required=False, validators=[free_json_size])
    promotionRestrictions = PromotionRestrictionsSerializer(required=False)

    FIELD_NAMES = {
        "name": "name", "type": "type", "messageLabel": "message_label", "active": "active",
        "priority": "priority", "isStackable": "is_stackable", "campaignId": "campaign_id", "mode": "mode",
        "customerActivationRequired": "customer_activation_required",
        "maxIssuancePerCustomer": "max_issuance_per_customer", "maxEarningPerCustomer": "max_earning_per_customer",
        "earnedValidityDays": "earned_validity_days",
        "earnLimitedToSpecificAudience": "earn_limited_to_specific_audience",
        "earningCriteria": "earning_criteria", "customFieldValues": "custom_field_values",
    }  # fmt: skip

    def __init__(self, *args, partial_update: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.partial_update = partial_update
        if partial_update:
            for name in ("name", "type", "condition", "action"):
                self.fields[name].required = False

    def validate(self, attrs):
        for name in ("start", "end"):
            value = attrs.get(f"{name}DateISO") or attrs.get(f"{name}Date")
            if value is None and not self.partial_update:
                raise serializers.ValidationError(f"One of {name}Date or {name}DateISO is required.")
            attrs[f"{name}_date"] = value
        return attrs

    def service_fields(self) -> dict:
        """The validated body as model field values; JSON parts are stored as the client sent them."""
        data, raw = self.validated_data, self.initial_data
        fields = {model: data[api] for api, model in self.FIELD_NAMES.items() if api in data}
        for name in ("start_date", "end_date"):
            if data.get(name) is not None:
                fields[name] = data[name]
        for name in ("condition", "action"):
            if name in data:
                fields[name] = raw[name]
        return fields

    def restrictions(self) -> list | None:
        """The validated `promotionRestrictions` as RestrictionSpecs; None when not sent."""
        if "promotionRestrictions" not in self.validated_data:
            return None
        return restriction_specs(self.validated_data["promotionRestrictions"])


class PromotionUpdateSerializer(PromotionInputSerializer):
    """The update's body: the create's fields, none required (an omitted field keeps its value, so
    an empty or absent body changes nothing)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial_update=True, **kwargs)
