"""The wallet APIs' shapes: the input parts several APIs share, and the response bodies.

Each response body is declared once, as a `Shape` (`promotions_site/shapes.py`): the view renders it
and the schema documents it. A shape's source is what the service returned; a body built from several
objects has a `<body>_body` function that hands them over as one tuple.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import NamedTuple

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from promotions.models import LoyaltyProgram, LoyaltyPromotion, Promotion, PromotionRestriction
from promotions_site.errors import ErrorCode
from promotions_site.limits import StoredAsSentMixin
from promotions_site.schema import V2MessageSerializer
from promotions_site.shapes import Shape, always, envelope, item, itself, no_errors, via
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso
from wallets.models import Customer, EarnedPromotion
from wallets.selectors import CODE_KIND, CODE_LINKED_FROM, WALLET_LEVELS, CodeRecord, WalletEntry
from wallets.services import IssuedInstance, IssueOutcome, LoyaltyIssueOutcome, RevokeOutcome

# Request limits the views validate and the schema states.
REVOKE_EARN_MAX_IDS = 1000
WALLET_LIMIT_DEFAULT = 10
WALLET_LIMIT_MAX = 100


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


# --- Response bodies ---------------------------------------------------------------------------------
# Each body is a Shape (`promotions_site/shapes.py`): its keys in order, each with the schema field that
# documents it and the getter that reads it, so the view's dict and the published schema cannot drift.

EARNED_PROMOTION = Shape(
    "EarnedPromotion",
    {
        "id": (serializers.CharField(), "id"),
        "customerId": (serializers.IntegerField(), "customer_id"),
        "promotionId": (serializers.CharField(), "promotion_id"),
        # An issued instance an earn unlocked names the earn.
        "earnedFromType": (
            serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values),
            "earn_from_type",
        ),
        "earnedFromId": (serializers.CharField(), "earn_from_id"),
        "eventTime": (serializers.IntegerField(), via(to_epoch_ms, "event_time")),
        "eventTimeISO": (serializers.CharField(), via(to_iso, "event_time")),
        "eventDetails": (serializers.JSONField(), "event_details"),
        "validTill": (serializers.IntegerField(), via(to_epoch_ms, "valid_till")),
        "validTillISO": (serializers.CharField(), via(to_iso, "valid_till")),
    },
    description="For the schema: the shape of `earned_promotion_data`.",
)
# earn: one earned instance.
EARN_RESPONSE = envelope("EarnResponse", EARNED_PROMOTION)

CUSTOMER = Shape(
    "Customer",
    {
        "customerId": (serializers.IntegerField(), "pk"),
        "mobile": (serializers.CharField(allow_null=True), "mobile"),
        "email": (serializers.CharField(allow_null=True), "email"),
        "externalId": (serializers.CharField(allow_null=True), "external_id"),
        "firstName": (serializers.CharField(), "first_name"),
        "lastName": (serializers.CharField(), "last_name"),
        "source": (serializers.CharField(), "source"),
        "createdOn": (serializers.IntegerField(), via(to_epoch_ms, "created_at")),
        "createdOnISO": (serializers.CharField(), via(to_iso, "created_at")),
    },
    description="For the schema: the shape of `customer_data`.",
)
# The customer APIs: one customer.
CUSTOMER_RESPONSE = envelope("CustomerResponse", CUSTOMER)

# --- issueBulk -------------------------------------------------------------------------------------


class IssuedItem(NamedTuple):
    """One customer's instance of a bulk issue (the service's IssuedInstance has no customer)."""

    customer_id: int
    promotion_id: str
    instance: IssuedInstance


# The instances of one issue share their two times (a replay's, a few more): convert each once.
_shared_epoch_ms = functools.lru_cache(maxsize=64)(to_epoch_ms)

ISSUED_PROMOTION = Shape(
    "IssuedPromotion",
    {
        "id": (serializers.CharField(), "instance.id"),
        "customerId": (serializers.IntegerField(), "customer_id"),
        "promotionId": (serializers.CharField(), "promotion_id"),
        "earnedFromId": (serializers.CharField(), "instance.earned_from_id"),
        "eventTime": (serializers.IntegerField(), via(_shared_epoch_ms, "instance.event_time")),
        "validTill": (serializers.IntegerField(), via(_shared_epoch_ms, "instance.valid_till")),
    },
)
ISSUE_BULK_ERROR = Shape(
    "IssueBulkError",
    {
        "customerId": (serializers.IntegerField(), item("customerId")),
        "code": (serializers.IntegerField(), item("code")),
        "message": (serializers.CharField(), item("message")),
    },
)
# From (the IssuedItems by customer id, IssueOutcome.errors).
ISSUE_BULK_RESPONSE = Shape(
    "IssueBulkResponse",
    {
        "data": (ISSUED_PROMOTION.by_key(), "data"),
        "errors": (ISSUE_BULK_ERROR.many(required=False), "errors"),
    },
)


class IssueBulkBody(NamedTuple):
    data: dict[str, IssuedItem]
    errors: list[dict]


def issue_bulk_body(*, promotion: Promotion, customer_ids: list[int], outcome: IssueOutcome) -> dict:
    """The instances issued, keyed by customer id in request order; `errors` only when not empty."""
    issued, promotion_id = outcome.issued, promotion.pk
    data = {
        str(customer_id): IssuedItem(customer_id, promotion_id, issued[customer_id])
        for customer_id in customer_ids
        if customer_id in issued
    }
    return ISSUE_BULK_RESPONSE.render(IssueBulkBody(data, outcome.errors))


# --- earn/bulk -------------------------------------------------------------------------------------

# A refused entry's error, from its ErrorCode.
EARN_ERROR_DETAILS = Shape(
    "EarnErrorDetails",
    {
        "errorCode": (serializers.IntegerField(), int),
        "errorMessages": (serializers.CharField(), "message"),
    },
)
# One requested entry's result, from its EarnOutcome; `errorDetails` only on a refused entry.
EARN_BULK_RESULT = Shape(
    "EarnBulkResult",
    {
        "earnedFromId": (serializers.CharField(), "request.earned_from_id"),
        "promotionId": (serializers.CharField(), "request.promotion.pk"),
        "successfulEarnCount": (serializers.IntegerField(), lambda outcome: len(outcome.instances)),
        "failedEarnCount": (serializers.IntegerField(), "failed"),
        "errorDetails": (EARN_ERROR_DETAILS.field(required=False), "error"),
        "customerEarnedPromotions": (EARNED_PROMOTION.many(), "instances"),
    },
)
# One result per requested entry, in request order.
EARN_BULK_RESPONSE = envelope("EarnBulkResponse", EARN_BULK_RESULT.many())

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


class CurrentCycleSerializer(serializers.Serializer):
    """For the schema: a fixed window's current cycle, local dates, both inclusive."""

    startDate = serializers.DateField(help_text="The cycle's first day (YYYY-MM-DD, the org's time zone).")
    endDate = serializers.DateField(help_text="The cycle's last day, inclusive.")


def _current_cycle(usage) -> dict | None:
    if usage.rule.kind != "FIXED":
        return None
    return {"startDate": usage.window.first_day.isoformat(), "endDate": usage.window.last_day.isoformat()}


# One limit of an instance's promotion, from its RestrictionUsage.
WALLET_RESTRICTION = Shape(
    "WalletRestriction",
    {
        "kpi": (serializers.ChoiceField(choices=PromotionRestriction.Kpi.values), "restriction.kpi"),
        "maxLimit": (
            serializers.CharField(help_text='The limit, as a string with 6 decimals ("2.000000").'),
            via("{:.6f}".format, "restriction.limit"),
        ),
        "remainingRedemption": (
            RemainingField(
                help_text="What is left: an integer for REDEMPTION and TRANSACTION (`3`), a string with 6 decimals "
                'for DISCOUNT (`"4890.500000"`), as the create API echoes a limit.'
            ),
            lambda usage: remaining_value(usage.restriction.kpi, usage.remaining),
        ),
        "windowType": (
            serializers.ChoiceField(
                choices=["OVERALL", "MOVING", "FIXED", "CLASSIC"],
                help_text="As configured; without one, MOVING for a limit with frequency DAYS or WEEKS, "
                "else OVERALL.",
            ),
            lambda usage: usage.restriction.window_type or usage.rule.kind,
        ),
        "fixedWindowConfig": (serializers.JSONField(allow_null=True), "restriction.fixed_window_config"),
        "currentCycle": (
            CurrentCycleSerializer(
                allow_null=True,
                help_text="The current cycle of a fixed window (FIXED, or CLASSIC with a frequency): its "
                "first and last day (inclusive) in the org's time zone; null for OVERALL and MOVING.",
            ),
            _current_cycle,
        ),
        "periodStart": (
            EpochMillisField(
                allow_null=True,
                help_text="Epoch ms: when the window remainingRedemption is counted in began (a MOVING "
                "window: the start of its first day); null for OVERALL.",
            ),
            via(to_epoch_ms, "window.start"),
        ),
        "periodEnd": (
            EpochMillisField(
                allow_null=True,
                help_text="Epoch ms: when that window ends (exclusive: the next window's first instant); "
                "null for OVERALL.",
            ),
            via(to_epoch_ms, "window.end"),
        ),
    },
)
# An instance's limits by level, from WalletEntry.restrictions ({level: [RestrictionUsage]}).
WALLET_RESTRICTIONS = Shape(
    "WalletRestrictions",
    {
        level.value: (
            WALLET_RESTRICTION.many(
                # Only a linked promo code's item has Code limits: the key is left out when empty.
                **(
                    {"required": False, "help_text": "A linked promo code's own limits (its items only)."}
                    if level == PromotionRestriction.Level.CODE
                    else {}
                )
            ),
            item(level),
        )
        for level in WALLET_LEVELS
    },
)


def _supplementary_criteria(entry: WalletEntry):
    details = entry.instance.event_details
    return details.get("supplementaryCriteria") if isinstance(details, dict) else None


def _unlocked(convert):
    return lambda entry: convert(entry.instance.event_time) if entry.earned_status == "UNLOCKED" else None


# One instance of the wallet, from its WalletEntry; `restrictions` only when the selector counted them
# (includeRedemptions=true).
WALLET_ITEM = Shape(
    "WalletItem",
    {
        "earnedPromotionId": (serializers.CharField(), "instance.pk"),
        "promotionId": (serializers.CharField(), "instance.promotion.pk"),
        "promotionName": (serializers.CharField(), "instance.promotion.name"),
        "validTill": (serializers.IntegerField(), via(to_epoch_ms, "instance.valid_till")),
        "validTillISO": (serializers.CharField(), via(to_iso, "instance.valid_till")),
        "unlockedDate": (serializers.IntegerField(allow_null=True), _unlocked(to_epoch_ms)),
        "unlockedDateISO": (serializers.CharField(allow_null=True), _unlocked(to_iso)),
        "customerId": (serializers.IntegerField(), "instance.customer_id"),
        "earnedType": (
            serializers.ChoiceField(
                choices=[*EarnedPromotion.Kind.values, CODE_KIND],
                help_text="ISSUED, EARNED, or CODE for a promo code linked to the customer.",
            ),
            "instance.kind",
        ),
        "earnedStatus": (serializers.ChoiceField(choices=["LOCKED", "UNLOCKED"]), "earned_status"),
        "promotionStatus": (serializers.ChoiceField(choices=["ACTIVE", "INACTIVE"]), "promotion_status"),
        "applicationMode": (serializers.CharField(), "instance.promotion.mode"),
        "redeemableFrom": (serializers.IntegerField(), via(to_epoch_ms, "instance.event_time")),
        "redeemableFromISO": (serializers.CharField(), via(to_iso, "instance.event_time")),
        "customFieldValues": (serializers.JSONField(), "instance.promotion.custom_field_values"),
        "eventTime": (serializers.IntegerField(), via(to_epoch_ms, "instance.event_time")),
        "eventTimeISO": (serializers.CharField(), via(to_iso, "instance.event_time")),
        "supplementaryCriteria": (serializers.JSONField(allow_null=True), _supplementary_criteria),
        "earnedFromType": (
            serializers.ChoiceField(
                choices=[*EarnedPromotion.EarnedFromType.values, CODE_LINKED_FROM],
                help_text="CODE_LINK for a linked promo code (earnedFromId is then the code).",
            ),
            "instance.earn_from_type",
        ),
        "earnedFromId": (serializers.CharField(), "instance.earn_from_id"),
        "status": (serializers.ChoiceField(choices=EarnedPromotion.Status.values), "status"),
        "promoCode": (
            serializers.CharField(required=False, help_text="Only on a linked promo code's item: the code."),
            lambda entry: getattr(entry.instance, "promo_code", None),
        ),
        "restrictions": (
            WALLET_RESTRICTIONS.field(required=False, help_text="Only with includeRedemptions=true."),
            "restrictions",
        ),
    },
)
WALLET_RESPONSE = envelope("WalletResponse", WALLET_ITEM.many())

# --- Promo codes (GET /promotions/code, POST /promotions/code/link) ---------------------------------

# One Code-level limit of a code, from its RestrictionUsage (wallets.selectors.code_restrictions).
CODE_RESTRICTION = Shape(
    "CodeRestriction",
    {
        "kpi": (serializers.ChoiceField(choices=PromotionRestriction.Kpi.values), "restriction.kpi"),
        "maxLimit": (
            serializers.CharField(help_text='The limit, as a string with 6 decimals ("2.000000").'),
            via("{:.6f}".format, "restriction.limit"),
        ),
        "remainingRedemption": (
            RemainingField(
                help_text="What is left for this code: the limit less what redemptions used and what open "
                "carts reserve (never below 0); an integer for REDEMPTION and TRANSACTION, a string with 6 "
                "decimals for DISCOUNT."
            ),
            lambda usage: remaining_value(usage.restriction.kpi, usage.remaining),
        ),
        "tempRedemption": (
            RemainingField(help_text="What open carts (cart locks) reserve of the limit for this code now."),
            lambda usage: remaining_value(usage.restriction.kpi, usage.reserved),
        ),
        "periodStart": (
            EpochMillisField(
                allow_null=True,
                help_text="Epoch ms: when the limit's current window began; null for OVERALL.",
            ),
            via(to_epoch_ms, "window.start"),
        ),
        "periodEnd": (
            EpochMillisField(
                allow_null=True, help_text="Epoch ms: when that window ends (exclusive); null for OVERALL."
            ),
            via(to_epoch_ms, "window.end"),
        ),
    },
)
CODE_RESTRICTIONS = Shape(
    "CodeRestrictions",
    {PromotionRestriction.Level.CODE.value: (CODE_RESTRICTION.many(), item(PromotionRestriction.Level.CODE))},
)

# One promo code, from its CodeRecord.
PROMO_CODE = Shape(
    "PromoCode",
    {
        "id": (serializers.IntegerField(), "code.pk"),
        "orgId": (serializers.IntegerField(), "code.org_id"),
        "promotionId": (serializers.CharField(), "code.promotion.pk"),
        "promotionName": (serializers.CharField(), "code.promotion.name"),
        "code": (serializers.CharField(), "code.code"),
        "customerId": (
            serializers.IntegerField(allow_null=True, help_text="The linked customer; null while unlinked."),
            "code.customer_id",
        ),
        "active": (serializers.BooleanField(), "code.active"),
        "createdOn": (serializers.IntegerField(), via(to_epoch_ms, "code.created_on")),
        "createdOnISO": (serializers.CharField(), via(to_iso, "code.created_on")),
        "validTill": (
            serializers.IntegerField(help_text="The promotion's end (codes expire with it)."),
            via(to_epoch_ms, "code.promotion.end_date"),
        ),
        "validTillISO": (serializers.CharField(), via(to_iso, "code.promotion.end_date")),
        "mode": (serializers.ChoiceField(choices=["DISCOUNT", "PAYMENT_VOUCHER"]), "code.promotion.mode"),
        "redeemableFrom": (
            serializers.IntegerField(help_text="The promotion's start."),
            via(to_epoch_ms, "code.promotion.start_date"),
        ),
        "redeemableFromISO": (serializers.CharField(), via(to_iso, "code.promotion.start_date")),
        "restrictions": (
            CODE_RESTRICTIONS.field(help_text="The promotion's Code-level limits, counted for this code."),
            "restrictions",
        ),
    },
)
PROMO_CODE_LINK_RESPONSE = envelope("PromoCodeLinkResponse", PROMO_CODE)

# An unknown code of a look-up (a dict: code, message, promoCode).
PROMO_CODE_ERROR = Shape(
    "PromoCodeError",
    {
        "code": (serializers.IntegerField(), item("code")),
        "message": (serializers.CharField(), item("message")),
        "promoCode": (
            serializers.CharField(help_text="The code as looked up (upper-case)."),
            item("promoCode"),
        ),
    },
)
PROMO_CODE_LOOKUP_RESPONSE = Shape(
    "PromoCodeLookupResponse",
    {
        "data": (PROMO_CODE.many(), item(0)),
        "errors": (PROMO_CODE_ERROR.many(), item(1)),
    },
)


def promo_code_lookup_body(records: list[CodeRecord], unknown: list[str]) -> dict:
    """The codes found, in request order, and one 1001 entry per code the org does not have."""
    errors = [
        {"code": int(ErrorCode.INVALID_PROMO_CODE), "message": "Promo code not found.", "promoCode": code}
        for code in unknown
    ]
    return PROMO_CODE_LOOKUP_RESPONSE.render((records, errors))


# --- revokeEarn ------------------------------------------------------------------------------------

# One promotion's revoked instances, from an item of RevokeOutcome.revoked (promotion id, earn ids).
REVOKED_DETAIL = Shape(
    "RevokedDetail",
    {
        "promotionId": (serializers.CharField(), item(0)),
        "revokedEarnIds": (serializers.ListField(child=serializers.CharField()), item(1)),
        "status": (serializers.ChoiceField(choices=["SUCCESS"]), always("SUCCESS")),
    },
)


class Revoked(NamedTuple):
    """What the revokeEarn answer is rendered from."""

    customer: Customer
    outcome: RevokeOutcome


REVOKE_EARN_RESULT = Shape(
    "RevokeEarnResult",
    {
        "customerId": (serializers.IntegerField(), "customer.pk"),
        "revokedDetails": (REVOKED_DETAIL.many(), lambda revoked: revoked.outcome.revoked.items()),
    },
)
REVOKE_EARN_ERROR = Shape(
    "RevokeEarnError",
    {
        "promotionId": (serializers.CharField(), item("promotionId")),
        "code": (serializers.IntegerField(), item("code")),
        "message": (serializers.CharField(), item("message")),
    },
)
REVOKE_EARN_RESPONSE = Shape(
    "RevokeEarnResponse",
    {
        "data": (REVOKE_EARN_RESULT, itself),
        "errors": (REVOKE_EARN_ERROR.many(), "outcome.errors"),
    },
)


def revoke_earn_body(*, customer: Customer, outcome: RevokeOutcome) -> dict:
    return REVOKE_EARN_RESPONSE.render(Revoked(customer, outcome))


# --- POST /v2/promotion/issue ----------------------------------------------------------------------

LOYALTY_SIDE_EFFECT_TYPE = "Points promotion"


class LoyaltyIssued(NamedTuple):
    """What the v2 issue's answer is rendered from."""

    program: LoyaltyProgram
    loyalty_promotion: LoyaltyPromotion
    outcome: LoyaltyIssueOutcome


# The issue's one side effect.
LOYALTY_ISSUE_SIDE_EFFECT = Shape(
    "LoyaltyIssueSideEffect",
    {
        "programId": (serializers.IntegerField(), "program.pk"),
        "issualId": (serializers.IntegerField(), "outcome.issual.pk"),
        "earnedId": (
            serializers.IntegerField(allow_null=True),
            lambda issued: issued.outcome.earned.pk if issued.outcome.earned else None,
        ),
        "promotionId": (serializers.IntegerField(), "loyalty_promotion.pk"),
        "type": (serializers.CharField(), always(LOYALTY_SIDE_EFFECT_TYPE)),
    },
)
LOYALTY_ISSUE_RESPONSE = Shape(
    "LoyaltyIssueResponse",
    {
        "warnings": (V2MessageSerializer(many=True), no_errors),
        "errors": (V2MessageSerializer(many=True), no_errors),
        "sideEffects": (LOYALTY_ISSUE_SIDE_EFFECT.many(), lambda issued: [issued]),
    },
)


def loyalty_issue_body(*, program, loyalty_promotion, outcome) -> dict:
    return LOYALTY_ISSUE_RESPONSE.render(LoyaltyIssued(program, loyalty_promotion, outcome))
