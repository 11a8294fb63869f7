"""Shapes several promotion APIs share: the promotion as the APIs return it, the response bodies
(as `Shape`s, `promotions_site/shapes.py`) and the parts of the create/update input."""

from __future__ import annotations

import re
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from promotions.models import Promotion, PromotionMode, PromotionRestriction, PromotionType
from promotions.restrictions import RestrictionSpec, restrictions_data
from promotions_site.limits import free_json_size
from promotions_site.shapes import Shape, always, envelope, item, itself, serialized
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso

# --- Condition and action objects ---------------------------------------------------------------
# Capillary's promotion objects (docs/api.md, "Promotion objects"): each is a `type` and the one part
# that type names. Every variant is a serializer of its own; a tagged serializer picks the variant by
# `type`, validates and renders with it, and the schema shows the variants as a oneOf with a
# discriminator on `type`. Unknown keys and enum values are 400, so a promotion never holds a
# condition nothing can evaluate. What is stored, and echoed, is the variant's rendering: Capillary's
# shape, defaults filled in, every value a string with six decimals.

CONDITION_TYPES = [
    "CART", "PRODUCT", "COMBO_PRODUCT", "TENDER", "PAYMENT_MODE_SCOPE", "PAYMENT_MODE_COMBO_PRODUCT",
    "PAYMENT_MODE",
]  # fmt: skip
ACTION_TYPES = ["CART_BASED", "PRODUCT_BASED", "TENDER", "PER_UNIT", "FREE_PRODUCT", "FIXED_PRICE"]
CRITERIA_ENTITIES = ["SKU", "CATEGORY", "BRAND", "ATTRIBUTE", "PRODUCT_ID", "STYLE", "COLOR", "SIZE"]
CRITERIA_VALUES_MAX = 100
CRITERIA_LIST_MAX = 20  # criteria per product condition (Capillary documents no maximum)
COMPARISON_OPERATORS = ["EQUALS", "GREATER_THAN", "GREATER_THAN_OR_EQUAL"]
# A decimal as Capillary writes it in a string: digits, optionally a point and digits (no exponent).
DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


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
    expected = getattr(field, "json_type", None) or _json_type(field)
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
    """Rejects keys it does not know, so a typo ("cartCondtion") is a 400, not a silently empty rule.
    `REFUSED` names keys that get a message of their own instead of "Unknown field."."""

    REFUSED: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: self.REFUSED.get(key, "Unknown field.") for key in unknown}
                )
        return super().to_internal_value(data)


class DecimalValueField(serializers.DecimalField):
    """A value of a condition or an action as Capillary writes it, a decimal string with six decimals
    (`"500.000000"`), or as a JSON number (`500`). At most two significant decimals: the two-place
    rule is about digits that count, so `"10.000000"` is 10.00 and `"10.123"` is refused. Rendered
    (stored and echoed) with six decimals. Its schema, by direction, is in `promotions/schema.py`."""

    default_error_messages = {"invalid_type": 'Must be a JSON number or a decimal string ("500.000000").'}

    def __init__(self, **kwargs):
        super().__init__(max_digits=14, decimal_places=2, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid_type")
        if isinstance(data, str) and not DECIMAL_TEXT.fullmatch(data):
            self.fail("invalid_type")
        return super().to_internal_value(data)

    def validate_precision(self, value):
        sign, digits, exponent = value.as_tuple()
        while exponent < 0 and digits[-1] == 0:
            digits, exponent = digits[:-1] or (0,), exponent + 1
        super().validate_precision(Decimal((sign, digits, exponent)))
        return value

    def to_representation(self, value):
        return f"{Decimal(str(value)):.6f}"


def _positive(value):
    if value <= 0:
        raise serializers.ValidationError("Must be greater than 0.")


class CriteriaSerializer(_Strict):
    entity = serializers.ChoiceField(choices=CRITERIA_ENTITIES)
    operator = serializers.ChoiceField(choices=["IN", "NOT_IN"])
    values = serializers.ListField(
        child=serializers.CharField(max_length=255), allow_empty=False, max_length=CRITERIA_VALUES_MAX,
        error_messages={"max_length": f"SKU values exceed {CRITERIA_VALUES_MAX}."},
    )  # fmt: skip
    attributeName = serializers.CharField(
        max_length=255, required=False, help_text="The item attribute an ATTRIBUTE criteria matches."
    )

    def validate(self, attrs):
        if (attrs["entity"] == "ATTRIBUTE") != ("attributeName" in attrs):
            raise serializers.ValidationError(
                {"attributeName": "Required with entity ATTRIBUTE, and only with it."}
            )
        return attrs


class ProductConditionSerializer(_Strict):
    """kpi NONE (no threshold: the criteria alone) is stored and echoed, as Capillary echoes it,
    with operator NONE and value 0."""

    criteriaList = CriteriaSerializer(many=True, allow_empty=False, max_length=CRITERIA_LIST_MAX)
    kpi = serializers.ChoiceField(choices=["AMOUNT", "QUANTITY", "NONE"], default="NONE")
    operator = serializers.ChoiceField(choices=[*COMPARISON_OPERATORS, "NONE"], required=False)
    value = DecimalValueField(min_value=0, required=False)

    def validate(self, attrs):
        if attrs["kpi"] == "NONE":
            if attrs.get("operator", "NONE") != "NONE" or attrs.get("value", 0) != 0:
                raise serializers.ValidationError(
                    "With kpi NONE, operator is NONE and value is 0 (or both are left out)."
                )
            return {**attrs, "operator": "NONE", "value": Decimal(0)}
        if "operator" not in attrs or "value" not in attrs:
            raise serializers.ValidationError("operator and value are required when kpi is not NONE.")
        if attrs["operator"] == "NONE":
            raise serializers.ValidationError({"operator": "NONE goes only with kpi NONE."})
        return attrs


class CartConditionSerializer(_Strict):
    kpi = serializers.ChoiceField(choices=["SUBTOTAL", "ITEMCOUNT"])
    operator = serializers.ChoiceField(choices=COMPARISON_OPERATORS)
    value = DecimalValueField(min_value=0)


class ComboProductConditionSerializer(_Strict):
    productConditions = ProductConditionSerializer(many=True, allow_empty=False, max_length=20)


class TaggedSerializer(serializers.Serializer):
    """An object whose `type` names its variant (`VARIANTS`, type -> serializer class), which
    validates and renders it. `type` is checked first, so a wrong one is the only error reported."""

    VARIANTS: dict[str, type[serializers.Serializer]] = {}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
                    ]
                }
            )
        try:
            kind = serializers.ChoiceField(choices=list(self.VARIANTS)).run_validation(
                data.get("type", serializers.empty)
            )
        except serializers.ValidationError as error:
            raise serializers.ValidationError({"type": error.detail}) from None
        return self.VARIANTS[kind]().run_validation(data)

    def to_representation(self, instance):
        kind = instance.get("type") if isinstance(instance, dict) else None
        variant = self.VARIANTS.get(kind) if isinstance(kind, str) else None
        if variant is None:
            return instance
        # One variant serializer per type and field, reused: building a serializer's fields is most
        # of the cost of rendering a list of promotions (the engine's rules compile from them).
        renderers = self.__dict__.setdefault("_renderers", {})
        if kind not in renderers:
            renderers[kind] = variant()
        return renderers[kind].to_representation(instance)


def _variant(name: str, kind: str, what: str, **parts) -> type[_Strict]:
    """The serializer of one variant: `type` fixed to `kind`, and its parts. A part given as a
    serializer class is required, with a message naming the type; a field instance is used as is."""
    required = {"required": f"Required when {what} type is {kind}."}
    namespace = {
        "type": serializers.ChoiceField(choices=[kind]),
        **{
            key: part(error_messages=required) if isinstance(part, type) else part
            for key, part in parts.items()
        },
        "__module__": __name__,
        "__doc__": f"`{what}` of type {kind}.",
    }
    return type(name, (_Strict,), namespace)


ConditionCartSerializer = _variant("ConditionCartSerializer", "CART", "condition",
                                   cartCondition=CartConditionSerializer)  # fmt: skip
ConditionProductSerializer = _variant("ConditionProductSerializer", "PRODUCT", "condition",
                                      productCondition=ProductConditionSerializer)  # fmt: skip
ConditionComboProductSerializer = _variant("ConditionComboProductSerializer", "COMBO_PRODUCT", "condition",
                                           comboProductCondition=ComboProductConditionSerializer)  # fmt: skip


class BareProductConditionMixin:
    """The bare product condition this service took before (`{"criteriaList": ...}` where a condition
    belongs) is refused with the documented shape in the message; migration 0005 rewrote stored ones."""

    def to_internal_value(self, data):
        if isinstance(data, dict) and "type" not in data and "criteriaList" in data:
            raise serializers.ValidationError(
                {
                    api_settings.NON_FIELD_ERRORS_KEY: [
                        'productBasedCondition is a condition: {"type": "PRODUCT", "productCondition": '
                        '{"criteriaList": [...], "kpi": ..., "operator": ..., "value": ...}} (or type CART '
                        "with cartCondition, COMBO_PRODUCT with comboProductCondition)."
                    ]
                }
            )
        return super().to_internal_value(data)


class ProductBasedConditionSerializer(BareProductConditionMixin, TaggedSerializer):
    """`productBasedCondition` of an action: the items the benefit applies to, a condition of type
    PRODUCT, CART or COMBO_PRODUCT."""

    VARIANTS = {
        "PRODUCT": ConditionProductSerializer,
        "CART": ConditionCartSerializer,
        "COMBO_PRODUCT": ConditionComboProductSerializer,
    }


class _TargetedActionSerializer(_Strict):
    """An action with a target: the items that met the condition (`includeItemsFromConditionSet`
    true) or those of its `productBasedCondition`."""

    includeItemsFromConditionSet = serializers.BooleanField(default=True)
    productBasedCondition = ProductBasedConditionSerializer(required=False)

    def validate(self, attrs):
        if not attrs["includeItemsFromConditionSet"] and "productBasedCondition" not in attrs:
            raise serializers.ValidationError(
                {"productBasedCondition": "Required when includeItemsFromConditionSet is false."}
            )
        return attrs


def _check_discount(attrs):
    """Percentages are 0 to 100 exclusive of 0; amounts are positive (two decimals, by the field)."""
    if attrs["value"] <= 0:
        raise serializers.ValidationError({"value": "Must be greater than 0."})
    if attrs.get("type") == "PERCENTAGE" and attrs["value"] > 100:
        raise serializers.ValidationError({"value": "A percentage must be at most 100."})
    return attrs


class ProductBasedActionSerializer(_TargetedActionSerializer):
    type = serializers.ChoiceField(choices=["ABSOLUTE", "PERCENTAGE", "FIXED_PRICE"])
    value = DecimalValueField(min_value=0)

    def validate(self, attrs):
        return _check_discount(super().validate(attrs))


class CartBasedActionSerializer(_Strict):
    type = serializers.ChoiceField(choices=["ABSOLUTE", "PERCENTAGE"])
    value = DecimalValueField(min_value=0)

    def validate(self, attrs):
        return _check_discount(attrs)


class TenderBasedActionSerializer(CartBasedActionSerializer):
    """A discount for paying with the tenders of a TENDER condition."""


class FreeProductActionSerializer(_TargetedActionSerializer):
    quantity = DecimalValueField(
        required=False,
        validators=[_positive],
        help_text="How many target units are free (the UI's Custom n).",
    )


class FixedPriceActionSerializer(_TargetedActionSerializer):
    value = DecimalValueField(min_value=0)


ActionCartBasedSerializer = _variant("ActionCartBasedSerializer", "CART_BASED", "action",
                                     cartBasedAction=CartBasedActionSerializer)  # fmt: skip
ActionProductBasedSerializer = _variant("ActionProductBasedSerializer", "PRODUCT_BASED", "action",
                                        productBasedAction=ProductBasedActionSerializer)  # fmt: skip
ActionFreeProductSerializer = _variant("ActionFreeProductSerializer", "FREE_PRODUCT", "action",
                                       freeProductAction=FreeProductActionSerializer)  # fmt: skip
ActionFixedPriceSerializer = _variant("ActionFixedPriceSerializer", "FIXED_PRICE", "action",
                                      fixedPriceAction=FixedPriceActionSerializer)  # fmt: skip


class RewardActionSerializer(TaggedSerializer):
    """`perUnitAction.rewardAction`: the benefit each group of units earns."""

    VARIANTS = {
        "FREE_PRODUCT": ActionFreeProductSerializer,
        "PRODUCT_BASED": ActionProductBasedSerializer,
        "FIXED_PRICE": ActionFixedPriceSerializer,
    }


_PER_UNIT_SHAPE = (
    "perUnitAction is {rewardAction, perUnitKPI, perUnitDivider, includeItemsFromConditionSet}; "
    'the benefit goes in rewardAction, e.g. {"type": "PRODUCT_BASED", "productBasedAction": '
    '{"type": "ABSOLUTE", "value": "5.000000"}}.'
)


class PerUnitActionSerializer(_Strict):
    """The reward repeats for every `perUnitDivider` units (QUANTITY) or amount (AMOUNT) of the
    items in the condition set."""

    # unitType is in the create page's field table with no values or meaning: refused by name
    # (perUnitKPI says what a unit is). type/value/unit are this service's older shape.
    REFUSED = {
        "unitType": "Not supported: perUnitKPI (QUANTITY or AMOUNT) says what a unit is.",
        **{key: f"Not a field of perUnitAction. {_PER_UNIT_SHAPE}" for key in ("type", "value", "unit")},
    }

    rewardAction = RewardActionSerializer()
    perUnitKPI = serializers.ChoiceField(choices=["QUANTITY", "AMOUNT"], default="QUANTITY")
    perUnitDivider = DecimalValueField(validators=[_positive], default=Decimal(1))
    includeItemsFromConditionSet = serializers.BooleanField(default=True)


ActionPerUnitSerializer = _variant("ActionPerUnitSerializer", "PER_UNIT", "action",
                                   perUnitAction=PerUnitActionSerializer)  # fmt: skip
ActionTenderSerializer = _variant("ActionTenderSerializer", "TENDER", "action",
                                  tenderBasedAction=TenderBasedActionSerializer)  # fmt: skip


TENDER_MODE_TYPES = ["CARD", "CASH", "PAYMENT_VOUCHER"]
TENDER_IDENTIFIERS_MAX = 100  # identifiers per tender mode, and values per payment mode selection
TENDER_MODES_MAX = 20  # tender modes per tender condition (Capillary documents no maximum)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise serializers.ValidationError("This field may not be blank.")


def _tender_identifiers(**kwargs) -> serializers.ListField:
    """Tender identifiers (`CreditCard`, `CASH`, `POINTS`): non-empty strings, kept exactly as sent
    (the engine compares them exactly with the cart's tenders)."""
    return serializers.ListField(
        child=serializers.CharField(max_length=255, trim_whitespace=False, validators=[_not_blank]),
        allow_empty=False,
        max_length=TENDER_IDENTIFIERS_MAX,
        **kwargs,
    )


class TenderModeSerializer(_Strict):
    type = serializers.ChoiceField(choices=TENDER_MODE_TYPES)
    identifiers = _tender_identifiers(help_text="The cart tenders' identifiers this mode covers.")


class TenderNestedConditionSerializer(TaggedSerializer):
    """`tenderCondition.condition`: what the cart must also hold, a condition of type CART or PRODUCT."""

    VARIANTS = {"CART": ConditionCartSerializer, "PRODUCT": ConditionProductSerializer}


class TenderConditionSerializer(_Strict):
    """`tenderCondition`: paid with one of `tenderModes`, and (optional) the nested `condition` holds."""

    tenderModes = TenderModeSerializer(many=True, allow_empty=False, max_length=TENDER_MODES_MAX)
    condition = TenderNestedConditionSerializer(required=False)


class PaymentModeConditionSerializer(_Strict):
    """`paymentModeCondition`: a cart tender's identifier is in `values` (IN), or the cart has tenders
    and none is (NOT_IN)."""

    operator = serializers.ChoiceField(choices=["IN", "NOT_IN"])
    values = _tender_identifiers(help_text="Tender identifiers, e.g. POINTS.")


class ConditionSerializer(TaggedSerializer):
    """`condition`: what the cart must hold for the promotion to apply."""

    VARIANTS = {
        "CART": ConditionCartSerializer,
        "PRODUCT": ConditionProductSerializer,
        "COMBO_PRODUCT": ConditionComboProductSerializer,
        "TENDER": _variant("ConditionTenderSerializer", "TENDER", "condition",
                           tenderCondition=TenderConditionSerializer),
        "PAYMENT_MODE_SCOPE": _variant("ConditionPaymentModeScopeSerializer", "PAYMENT_MODE_SCOPE",
                                       "condition", paymentModeCondition=PaymentModeConditionSerializer,
                                       productCondition=ProductConditionSerializer),
        "PAYMENT_MODE_COMBO_PRODUCT": _variant(
            "ConditionPaymentModeComboProductSerializer", "PAYMENT_MODE_COMBO_PRODUCT", "condition",
            comboProductCondition=ComboProductConditionSerializer,
            paymentModeCondition=PaymentModeConditionSerializer,
        ),
        "PAYMENT_MODE": _variant("ConditionPaymentModeSerializer", "PAYMENT_MODE", "condition",
                                 paymentModeCondition=PaymentModeConditionSerializer),
    }  # fmt: skip


class ActionSerializer(TaggedSerializer):
    """`action`: the benefit."""

    VARIANTS = {
        "CART_BASED": ActionCartBasedSerializer,
        "PRODUCT_BASED": ActionProductBasedSerializer,
        "FREE_PRODUCT": ActionFreeProductSerializer,
        "FIXED_PRICE": ActionFixedPriceSerializer,
        "PER_UNIT": ActionPerUnitSerializer,
        "TENDER": ActionTenderSerializer,
    }


STORE_CRITERIA_VALUES_MAX = 1000  # ids per storeCriteria (Capillary documents no maximum)


class StoreCriteriaSerializer(_Strict):
    """`storeCriteria`: the stores (or zones, or concepts, by id) where the promotion applies, or
    (NOT_IN) where it does not."""

    type = serializers.ChoiceField(choices=["STORE", "ZONE", "CONCEPT"])
    values = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=STORE_CRITERIA_VALUES_MAX,
        help_text="Ids of the stores, zones or concepts `type` names.",
    )
    operator = serializers.ChoiceField(choices=["IN", "NOT_IN"])


# The repeats of a limit's window and of a time window: one enum in the schema.
REPEAT_FREQUENCIES = ["DAYS", "WEEKS", "DOES_NOT_REPEAT"]
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
START_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
DIGITS = re.compile(r"[0-9]{1,2}")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 24},
            {"type": "string", "pattern": "^[0-9]{1,2}$"},
        ],
        "description": 'Whole hours, 1 to 24: a JSON integer or a digit string ("2", as Capillary\'s '
        "example writes it); echoed as an integer.",
    }
)
class DurationHoursField(serializers.IntegerField):
    json_type = ("integer or a digit string", (int, str))

    def to_internal_value(self, data):
        if isinstance(data, str) and not DIGITS.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class TimeCriteriaSerializer(_Strict):
    """`timeCriteria`: a window opening at `startTime` (the org's time zone) for `durationInHours`, on
    the days `repeatFrequency` names (WEEKS: `weeklyValues`; DAYS: every day; DOES_NOT_REPEAT: the
    promotion's first day). Stored and echoed with `durationInHours` an integer."""

    startTime = serializers.CharField(help_text='Local time "HH:mm", 00:00 to 23:59.')
    durationInHours = DurationHoursField(min_value=1, max_value=24)
    repeatFrequency = serializers.ChoiceField(choices=REPEAT_FREQUENCIES)
    weeklyValues = serializers.ListField(
        child=serializers.ChoiceField(choices=WEEKDAYS),
        required=False,
        max_length=len(WEEKDAYS),
        help_text="The days of the window; required (at least one) with WEEKS and only with it.",
    )

    def validate_startTime(self, value):
        if not START_TIME.fullmatch(value):
            raise serializers.ValidationError('Must be a time "HH:mm" from 00:00 to 23:59.')
        return value

    def validate_weeklyValues(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each day may appear once.")
        return value

    def validate(self, attrs):
        weekly = attrs.get("weeklyValues")
        if attrs["repeatFrequency"] == "WEEKS" and not weekly:
            raise serializers.ValidationError(
                {"weeklyValues": "Required (at least one day) with repeatFrequency WEEKS."}
            )
        if attrs["repeatFrequency"] != "WEEKS" and weekly is not None:
            raise serializers.ValidationError({"weeklyValues": "Only with repeatFrequency WEEKS."})
        return attrs


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
    storeCriteria = StoreCriteriaSerializer(source="store_criteria", allow_null=True)
    timeCriteria = TimeCriteriaSerializer(source="time_criteria", allow_null=True)
    isLoyaltyOnly = serializers.BooleanField(source="is_loyalty_only")
    condition = ConditionSerializer()
    action = ActionSerializer()

    class Meta:
        model = Promotion
        fields = [
            "id", "name", "orgId", "priority", "active", "messageLabel", "type", "condition", "action",
            "createdBy", "createdOn", "createdOnISO", "lastUpdatedBy", "lastUpdatedOn", "lastUpdatedOnISO",
            "startDate", "startDateISO", "endDate", "endDateISO", "campaignId", "promotionRestrictions",
            "earnLimitedToSpecificAudience", "customFieldValues", "customerActivationRequired", "mode",
            "maxIssuancePerCustomer", "maxEarningPerCustomer", "earnedValidityDays", "earningCriteria",
            "isStackable", "storeCriteria", "timeCriteria", "isLoyaltyOnly",
        ]  # fmt: skip

    @extend_schema_field(EchoedRestrictionsSerializer)
    def get_promotionRestrictions(self, obj) -> dict:
        # A promotion not stored yet (the create service compiles it first) brings its limits along.
        specs = self.context.get("restriction_specs")
        if specs is None:
            specs = [RestrictionSpec.of(row) for row in obj.restrictions.all()]
        return restrictions_data(specs)

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


def _amount_text(value) -> str:
    """`"200.000000"` -> `200`, `"12.500000"` -> `12.5`: an amount as a sentence writes it."""
    text = str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _benefit_text(kind: str | None, value) -> str:
    if kind == "PERCENTAGE":
        return f"{_amount_text(value)}% off"
    if kind == "FIXED_PRICE":
        return f"at a fixed price of {_amount_text(value)}"
    return f"{_amount_text(value)} off"


def reward_text(action: dict) -> str:
    """The promotion's benefit in words (`reward` of the config API: Capillary documents it as text),
    e.g. "200 off the cart", "10% off the items", "1 item free", "at a fixed price of 99"."""
    kind = (action or {}).get("type")
    if kind in ("CART_BASED", "TENDER"):
        body = action.get("cartBasedAction") or action.get("tenderBasedAction") or {}
        where = "the cart" if kind == "CART_BASED" else "the tender"
        return f"{_benefit_text(body.get('type'), body.get('value'))} {where}"
    if kind == "PRODUCT_BASED":
        body = action.get("productBasedAction") or {}
        return f"{_benefit_text(body.get('type'), body.get('value'))} the items"
    if kind == "FREE_PRODUCT":
        quantity = (action.get("freeProductAction") or {}).get("quantity")
        return f"{_amount_text(quantity) if quantity else 1} item(s) free"
    if kind == "FIXED_PRICE":
        return _benefit_text("FIXED_PRICE", (action.get("fixedPriceAction") or {}).get("value"))
    if kind == "PER_UNIT":
        body = action.get("perUnitAction") or {}
        inner = reward_text(body.get("rewardAction") or {})
        divider = _amount_text(body.get("perUnitDivider", 1))
        unit = "units" if body.get("perUnitKPI", "QUANTITY") == "QUANTITY" else "spent"
        return f"{inner}, for every {divider} {unit}"
    return str(kind or "")


class PromotionConfigSerializer(serializers.ModelSerializer):
    """A promotion's summary, as the config API returns it."""

    promotionId = serializers.CharField(source="id")
    promotionName = serializers.CharField(source="name")
    promotionType = serializers.ChoiceField(source="type", choices=PromotionType.values)
    expiry = serializers.SerializerMethodField()
    expiryISO = serializers.SerializerMethodField()
    description = serializers.CharField(source="message_label", help_text="The messageLabel.")
    reward = serializers.SerializerMethodField(help_text="The benefit in words.")
    isActive = serializers.BooleanField(source="active")
    customFieldValues = serializers.JSONField(source="custom_field_values")
    promotionRestrictions = serializers.SerializerMethodField()

    class Meta:
        model = Promotion
        fields = [
            "promotionId", "promotionName", "promotionType", "expiry", "expiryISO", "description",
            "reward", "isActive", "customFieldValues", "promotionRestrictions",
        ]  # fmt: skip

    def get_expiry(self, obj) -> int:
        return to_epoch_ms(obj.end_date)

    def get_expiryISO(self, obj) -> str:
        return to_iso(obj.end_date)

    def get_reward(self, obj) -> str:
        return reward_text(obj.action)

    @extend_schema_field(EchoedRestrictionsSerializer)
    def get_promotionRestrictions(self, obj) -> dict:
        return restrictions_data([RestrictionSpec.of(row) for row in obj.restrictions.all()])


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
PROMOTION_CONFIG_RESPONSE = envelope(
    "PromotionConfigListEnvelope", serialized(PromotionConfigSerializer, many=True)
)
# activate and deactivate: `data` is true.
BOOLEAN_RESPONSE = envelope("BooleanEnvelope", serializers.BooleanField())


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
    frequency = serializers.ChoiceField(choices=REPEAT_FREQUENCIES, required=False)
    minTimeBetweenRepeat = serializers.IntegerField(min_value=0, required=False)
    windowType = serializers.ChoiceField(choices=["OVERALL", "MOVING", "FIXED", "CLASSIC"], required=False)
    fixedWindowConfig = serializers.DictField(required=False, validators=[free_json_size])


# At most two entries per kpi in each level's list (a lifetime limit and one whose window resets).
_LEVEL_LIMITS = {
    "many": True,
    "required": False,
    "max_length": 2 * len(PromotionRestriction.Kpi.values),
    "help_text": "At most one limit per kpi in a level, or two: one lifetime (OVERALL) and one whose "
    "window resets (FIXED, MOVING, CLASSIC with a frequency).",
}


class PromotionRestrictionsSerializer(_Strict):
    Customer = RestrictionSerializer(**_LEVEL_LIMITS)
    Cart = RestrictionSerializer(**_LEVEL_LIMITS)
    Promotion = RestrictionSerializer(**_LEVEL_LIMITS)
    Earn = RestrictionSerializer(**_LEVEL_LIMITS)
    Code = RestrictionSerializer(**_LEVEL_LIMITS)


def restriction_specs(validated: dict) -> list:
    """Validated `promotionRestrictions` as the service's RestrictionSpec list."""
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


@extend_schema_field(
    {"oneOf": [{"type": "string", "maxLength": 100}, {"type": "integer"}], "description": "Kept as text."}
)
class CampaignIdField(serializers.CharField):
    """Capillary's create page documents a string; its published objects carry a number
    (`"campaignId": 264140`). Both are taken and kept as text, so a copied object is accepted."""

    json_type = ("string or integer", (str, int))

    def to_internal_value(self, data):
        return super().to_internal_value(str(data) if isinstance(data, int) else data)


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
    campaignId = CampaignIdField(max_length=100, allow_blank=True, required=False)
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
    storeCriteria = StoreCriteriaSerializer(
        required=False, allow_null=True, help_text="null (or left out on create): every store."
    )
    timeCriteria = TimeCriteriaSerializer(
        required=False, allow_null=True, help_text="null (or left out on create): at any time of day."
    )
    isLoyaltyOnly = serializers.BooleanField(required=False)

    FIELD_NAMES = {
        "name": "name", "type": "type", "messageLabel": "message_label", "active": "active",
        "priority": "priority", "isStackable": "is_stackable", "campaignId": "campaign_id", "mode": "mode",
        "customerActivationRequired": "customer_activation_required",
        "maxIssuancePerCustomer": "max_issuance_per_customer", "maxEarningPerCustomer": "max_earning_per_customer",
        "earnedValidityDays": "earned_validity_days",
        "earnLimitedToSpecificAudience": "earn_limited_to_specific_audience",
        "earningCriteria": "earning_criteria", "customFieldValues": "custom_field_values",
        "storeCriteria": "store_criteria", "timeCriteria": "time_criteria", "isLoyaltyOnly": "is_loyalty_only",
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
        """The validated body as model field values. `condition`, `action`, `storeCriteria` and
        `timeCriteria` are stored as they are echoed (Capillary's shape, values as six-decimal
        strings, `durationInHours` an integer), so a body read and sent back compares equal to what
        is stored."""
        data = self.validated_data
        fields = {model: data[api] for api, model in self.FIELD_NAMES.items() if api in data}
        for name in ("start_date", "end_date"):
            if data.get(name) is not None:
                fields[name] = data[name]
        for name, model in (
            ("condition", "condition"),
            ("action", "action"),
            ("storeCriteria", "store_criteria"),
            ("timeCriteria", "time_criteria"),
        ):
            if data.get(name) is not None:
                fields[model] = self.fields[name].to_representation(data[name])
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
