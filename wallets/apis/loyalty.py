"""`POST /v2/promotion/issue`: issue a loyalty promotion to one customer (Capillary's v2 API)."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.selectors import loyalty_program_get, loyalty_promotion_get
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.idempotency import idempotent
from wallets import schema
from wallets.identifiers import IDENTIFIER_NAMES, SOURCES, parse_long_id
from wallets.selectors import customer_get_by_identifier
from wallets.serializers import loyalty_issue_body
from wallets.services import loyalty_promotion_issue


def parse_loyalty_issue_query(params) -> tuple[str, str, str]:
    """`identifierName`, `identifierValue` and `source`, checked in the order Capillary documents them.

    Errors: 11013 any of the three missing or blank; 1212 `type` given and not CUSTOMER; 400 an
    `identifierName` or `source` outside the documented values. `accountId` is accepted and unused.
    """
    name, value, source = (
        params.get(key, "").strip() for key in ("identifierName", "identifierValue", "source")
    )
    if not (name and value and source):
        raise PromotionError(ErrorCode.MANDATORY_PARAMETERS_MISSING)
    entity_type = params.get("type", "").strip()
    if entity_type and entity_type != "CUSTOMER":
        raise PromotionError(ErrorCode.INVALID_ENTITY_TYPE)
    if name not in IDENTIFIER_NAMES:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"identifierName must be one of: {', '.join(IDENTIFIER_NAMES)}."
        )
    if source not in SOURCES:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"source must be one of: {', '.join(SOURCES)}.")
    return name, value, source


class LoyaltyPromotionIssueApi(APIView):
    """`POST /v2/promotion/issue?identifierName=&identifierValue=&source=&type=&accountId=`."""

    @schema.loyalty_promotion_issue
    @idempotent
    def post(self, request):
        identifier_name, identifier_value, source = parse_loyalty_issue_query(request.query_params)
        body = request.data
        if not isinstance(body, dict):
            raise PromotionError(ErrorCode.BAD_REQUEST, "The body must be a JSON object.")
        org = request_org(request)
        program = loyalty_program_get(org=org, program_id=parse_long_id(body.get("programId")))
        loyalty_promotion = loyalty_promotion_get(
            program=program, promotion_id=parse_long_id(body.get("promotionId"))
        )
        customer = customer_get_by_identifier(
            org=org, identifier_name=identifier_name, identifier_value=identifier_value
        )
        if customer is None:
            raise PromotionError(ErrorCode.CUSTOMER_NOT_FOUND)
        outcome = loyalty_promotion_issue(
            customer=customer,
            program=program,
            loyalty_promotion=loyalty_promotion,
            source=source,
            actor=Actor.for_api_client(request.user),
        )
        return Response(
            loyalty_issue_body(program=program, loyalty_promotion=loyalty_promotion, outcome=outcome)
        )
