"""The wallet APIs' shapes: the input parts several APIs share, and the response bodies.

Each documented body has its serializer (what the schema shows) right above the function that renders
it: the function builds plain dicts, so the hot paths (issueBulk, earn, the wallet) never run a
serializer's `.data`, and `tests/promotions_site/test_response_shapes.py` checks every rendered body
against the schema, key by key and in order. A comment, not a docstring, describes a response
serializer: its docstring would land in the schema.
"""

from __future__ import annotations

import functools
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from promotions.models import Promotion, PromotionRestriction
from promotions_site.limits import StoredAsSentMixin
from promotions_site.schema import V2MessageSerializer
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso
from wallets.models import Customer, EarnedPromotion
from wallets.selectors import WALLET_LEVELS, RestrictionUsage, WalletEntry

# Request limits the views validate and the schema states.
REVOKE_EARN_MAX_IDS = 1000
WALLET_LIMIT_DEFAULT = 10
WALLET_LIMIT_MAX = 100


def earned_promotion_data(instance: EarnedPromotion) -> dict:
    """An earned instance as earn and earn/bulk return it (`customerEarnedPromotions[]`); an issued
    instance the earn unlocked names the earn (its earnedFromType and earnedFromId)."""
    return {
        "id": instance.id,
        "customerId": instance.customer_id,
        "promotionId": instance.promotion_id,
        "earnedFromType": instance.earn_from_type,
        "earnedFromId": instance.earn_from_id,
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


# What `eventDetails.type` may say: the earnedFromType itself, or (for an ACTIVITY or MILESTONE earn,
# which an event triggers: the promotion's earningCriteria pairs the two) the event's type.
EARN_EVENT_TYPES = ("TransactionAdd", "CustomerRegistration", "CustomerUpdate")
EVENT_TRIGGERED_EARNS = ("ACTIVITY", "MILESTONE")
EARN_EVENT_DETAIL_TYPES = (*EarnedPromotion.EarnedFromType.values, *EARN_EVENT_TYPES)


def earn_event_type_problem(earned_from_type: str, event_type: str) -> str | None:
    """Why `eventDetails.type` disagrees with `earnedFromType`, or None when it agrees."""
    if event_type == earned_from_type:
        return None
    if event_type in EARN_EVENT_TYPES and earned_from_type in EVENT_TRIGGERED_EARNS:
        return None
    allowed = [earned_from_type, *(EARN_EVENT_TYPES if earned_from_type in EVENT_TRIGGERED_EARNS else ())]
    return f"Must be consistent with earnedFromType {earned_from_type}: one of {', '.join(allowed)}."


class EarnEventDetailsSerializer(StoredAsSentMixin, serializers.Serializer):
    id = serializers.CharField(max_length=255)
    type = serializers.ChoiceField(
        choices=EARN_EVENT_DETAIL_TYPES,
        help_text="Consistent with earnedFromType: the same value, or for ACTIVITY and MILESTONE the "
        "triggering event's type (TransactionAdd, CustomerRegistration, CustomerUpdate).",
    )
    eventPayload = serializers.JSONField(required=False)


class EarnInputSerializer(serializers.Serializer):
    """What `/earn` and `/earn/bulk` share, validated the same way: the customer, `earnedFromType`,
    `eventDetails` (its type consistent with earnedFromType) and `eventTime` (epoch ms, being
    deprecated) or `eventTimeISO` (with its offset), one of which is required.

    Every problem of a body is reported at once, one error entry each: a missing eventTime or a
    disagreeing eventDetails.type next to the fields' own errors, never after them.
    """

    customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    earnedFromType = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
    eventDetails = EarnEventDetailsSerializer()
    eventTime = EpochMillisField(required=False)
    eventTimeISO = IsoDateTimeField(required=False)

    def to_internal_value(self, data):
        try:
            value, errors = super().to_internal_value(data), {}
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            value, errors = None, dict(exc.detail)
        for field_name, message in _earn_body_problems(data).items():
            errors.setdefault(field_name, [message])
        if errors:
            raise serializers.ValidationError(errors)
        value["event_time"] = value.get("eventTimeISO") or value["eventTime"]
        return value


def _earn_body_problems(data) -> dict[str, str]:
    """The problems across fields of an earn body, read from the body as sent (so they are found
    even when a field has its own error)."""
    if not isinstance(data, dict):
        return {}
    problems = {}
    if "eventTime" not in data and "eventTimeISO" not in data:
        problems["eventTime"] = "One of eventTime or eventTimeISO is required."
    earned_from_type, details = data.get("earnedFromType"), data.get("eventDetails")
    event_type = details.get("type") if isinstance(details, dict) else None
    # An unknown value of either is its field's own error.
    if earned_from_type in EarnedPromotion.EarnedFromType.values and event_type in EARN_EVENT_DETAIL_TYPES:
        problem = earn_event_type_problem(earned_from_type, event_type)
        if problem is not None:
            problems["eventDetails.type"] = problem
    return problems


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


# --- issueBulk -------------------------------------------------------------------------------------


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


def issue_bulk_body(*, promotion: Promotion, customer_ids: list[int], outcome) -> dict:
    """The instances issued, keyed by customer id in request order; `errors` only when not empty."""
    # The instances one call creates share their two times: convert each distinct time once.
    epoch_ms = functools.cache(to_epoch_ms)
    data = {}
    for customer_id in customer_ids:
        instance = outcome.issued.get(customer_id)
        if instance is not None:
            data[str(customer_id)] = {
                "id": instance.id,
                "customerId": customer_id,
                "promotionId": promotion.pk,
                "earnedFromId": instance.earned_from_id,
                "eventTime": epoch_ms(instance.event_time),
                "validTill": epoch_ms(instance.valid_till),
            }
    body = {"data": data}
    if outcome.errors:
        body["errors"] = outcome.errors
    return body


# --- earn/bulk -------------------------------------------------------------------------------------


class EarnErrorDetailsSerializer(serializers.Serializer):
    errorCode = serializers.IntegerField()
    errorMessages = serializers.CharField()


class EarnBulkResultSerializer(serializers.Serializer):
    earnedFromId = serializers.CharField()
    promotionId = serializers.CharField()
    successfulEarnCount = serializers.IntegerField()
    failedEarnCount = serializers.IntegerField()
    errorDetails = EarnErrorDetailsSerializer(required=False)
    customerEarnedPromotions = EarnedPromotionSerializer(many=True)


class EarnBulkResponseSerializer(serializers.Serializer):
    data = EarnBulkResultSerializer(many=True)
    errors = serializers.ListField()


def earn_bulk_body(outcomes) -> dict:
    """One result per requested entry, in request order; `errorDetails` only on a refused entry."""
    results = []
    for outcome in outcomes:
        result = {
            "earnedFromId": outcome.request.earned_from_id,
            "promotionId": outcome.request.promotion.pk,
            "successfulEarnCount": len(outcome.instances),
            "failedEarnCount": outcome.failed,
        }
        if outcome.error is not None:
            result["errorDetails"] = {
                "errorCode": int(outcome.error),
                "errorMessages": outcome.error.message,
            }
        result["customerEarnedPromotions"] = [earned_promotion_data(i) for i in outcome.instances]
        results.append(result)
    return {"data": results, "errors": []}


# --- The wallet ------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": r"^[0-9]+\.[0-9]{6}$"},
        ]
    }
)
class RemainingField(serializers.Field):
    """What is left of a limit, in one format per kpi: an integer for REDEMPTION and TRANSACTION (a
    count), a six-decimal string for DISCOUNT (an amount, as the create API echoes a limit)."""


def remaining_value(kpi: str, remaining: Decimal) -> int | str:
    """`remaining` in its kpi's format (`RemainingField`): never a float, whose digits a client
    cannot trust (`997900.0`, `0.30000000000000004`)."""
    if kpi == PromotionRestriction.Kpi.DISCOUNT:
        return f"{remaining:.6f}"
    return int(remaining)


class WalletRestrictionSerializer(serializers.Serializer):
    kpi = serializers.ChoiceField(choices=PromotionRestriction.Kpi.values)
    maxLimit = serializers.CharField(help_text='The limit, as a string with 6 decimals ("2.000000").')
    remainingRedemption = RemainingField(
        help_text="What is left: an integer for REDEMPTION and TRANSACTION (`3`), a string with 6 decimals "
        'for DISCOUNT (`"4890.500000"`), as the create API echoes a limit.'
    )
    windowType = serializers.CharField()
    fixedWindowConfig = serializers.JSONField(allow_null=True)


class WalletItemSerializer(serializers.Serializer):
    earnedPromotionId = serializers.CharField()
    promotionId = serializers.CharField()
    promotionName = serializers.CharField()
    validTill = serializers.IntegerField()
    validTillISO = serializers.CharField()
    unlockedDate = serializers.IntegerField(allow_null=True)
    unlockedDateISO = serializers.CharField(allow_null=True)
    customerId = serializers.IntegerField()
    earnedType = serializers.ChoiceField(choices=EarnedPromotion.Kind.values)
    earnedStatus = serializers.ChoiceField(choices=["LOCKED", "UNLOCKED"])
    promotionStatus = serializers.ChoiceField(choices=["ACTIVE", "INACTIVE"])
    applicationMode = serializers.CharField()
    redeemableFrom = serializers.IntegerField()
    redeemableFromISO = serializers.CharField()
    customFieldValues = serializers.JSONField()
    eventTime = serializers.IntegerField()
    eventTimeISO = serializers.CharField()
    supplementaryCriteria = serializers.JSONField(allow_null=True)
    earnedFromType = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
    earnedFromId = serializers.CharField()
    status = serializers.ChoiceField(choices=EarnedPromotion.Status.values)
    restrictions = inline_serializer(
        "WalletRestrictions",
        # One field per level: a field shared by several keys is bound to the last one only.
        {level.value: WalletRestrictionSerializer(many=True) for level in WALLET_LEVELS},
        required=False,
        help_text="Only with includeRedemptions=true.",
    )


class WalletResponseSerializer(serializers.Serializer):
    data = WalletItemSerializer(many=True)
    errors = serializers.ListField()


def wallet_body(entries: list[WalletEntry], *, with_restrictions: bool) -> dict:
    return {
        "data": [_wallet_item(entry, with_restrictions=with_restrictions) for entry in entries],
        "errors": [],
    }


def _wallet_item(entry: WalletEntry, *, with_restrictions: bool) -> dict:
    instance, promotion = entry.instance, entry.instance.promotion
    unlocked = entry.earned_status == "UNLOCKED"
    details = instance.event_details if isinstance(instance.event_details, dict) else {}
    item = {
        "earnedPromotionId": instance.pk,
        "promotionId": promotion.pk,
        "promotionName": promotion.name,
        "validTill": to_epoch_ms(instance.valid_till),
        "validTillISO": to_iso(instance.valid_till),
        "unlockedDate": to_epoch_ms(instance.event_time) if unlocked else None,
        "unlockedDateISO": to_iso(instance.event_time) if unlocked else None,
        "customerId": instance.customer_id,
        "earnedType": instance.kind,
        "earnedStatus": entry.earned_status,
        "promotionStatus": entry.promotion_status,
        "applicationMode": promotion.mode,
        "redeemableFrom": to_epoch_ms(instance.event_time),
        "redeemableFromISO": to_iso(instance.event_time),
        "customFieldValues": promotion.custom_field_values,
        "eventTime": to_epoch_ms(instance.event_time),
        "eventTimeISO": to_iso(instance.event_time),
        "supplementaryCriteria": details.get("supplementaryCriteria"),
        "earnedFromType": instance.earn_from_type,
        "earnedFromId": instance.earn_from_id,
        "status": entry.status,
    }
    if with_restrictions:
        item["restrictions"] = {
            level: [_restriction_item(usage) for usage in usages]
            for level, usages in entry.restrictions.items()
        }
    return item


def _restriction_item(usage: RestrictionUsage) -> dict:
    restriction = usage.restriction
    remaining = usage.remaining
    return {
        "kpi": restriction.kpi,
        "maxLimit": f"{restriction.limit:.6f}",
        "remainingRedemption": remaining_value(restriction.kpi, remaining),
        "windowType": restriction.window_type or "OVERALL",
        "fixedWindowConfig": restriction.fixed_window_config,
    }


# --- revokeEarn ------------------------------------------------------------------------------------


class RevokedDetailSerializer(serializers.Serializer):
    promotionId = serializers.CharField()
    revokedEarnIds = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=["SUCCESS"])


class RevokeEarnResultSerializer(serializers.Serializer):
    customerId = serializers.IntegerField()
    revokedDetails = RevokedDetailSerializer(many=True)


class RevokeEarnErrorSerializer(serializers.Serializer):
    promotionId = serializers.CharField()
    code = serializers.IntegerField()
    message = serializers.CharField()


class RevokeEarnResponseSerializer(serializers.Serializer):
    data = RevokeEarnResultSerializer()
    errors = RevokeEarnErrorSerializer(many=True)


def revoke_earn_body(*, customer: Customer, outcome) -> dict:
    revoked = [
        {"promotionId": promotion_id, "revokedEarnIds": earn_ids, "status": "SUCCESS"}
        for promotion_id, earn_ids in outcome.revoked.items()
    ]
    return {"data": {"customerId": customer.pk, "revokedDetails": revoked}, "errors": outcome.errors}


# --- POST /v2/promotion/issue ----------------------------------------------------------------------

LOYALTY_SIDE_EFFECT_TYPE = "Points promotion"


class LoyaltyIssueSideEffectSerializer(serializers.Serializer):
    programId = serializers.IntegerField()
    issualId = serializers.IntegerField()
    earnedId = serializers.IntegerField(allow_null=True)
    promotionId = serializers.IntegerField()
    type = serializers.CharField()


class LoyaltyIssueResponseSerializer(serializers.Serializer):
    warnings = V2MessageSerializer(many=True)
    errors = V2MessageSerializer(many=True)
    sideEffects = LoyaltyIssueSideEffectSerializer(many=True)


def loyalty_issue_body(*, program, loyalty_promotion, outcome) -> dict:
    side_effect = {
        "programId": program.pk,
        "issualId": outcome.issual.pk,
        "earnedId": outcome.earned.pk if outcome.earned else None,
        "promotionId": loyalty_promotion.pk,
        "type": LOYALTY_SIDE_EFFECT_TYPE,
    }
    return {"warnings": [], "errors": [], "sideEffects": [side_effect]}
