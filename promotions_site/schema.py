"""OpenAPI pieces every endpoint shares: the error envelopes and their documented examples."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from promotions_site.errors import ErrorCode, envelope


class AutoSchema(SpectacularAutoSchema):
    """Names the serializers nested in an API class after it (`RevokeEarnApi.InputSerializer` ->
    `RevokeEarnApiInput`), so the `InputSerializer` of every API does not collapse into one component."""

    def get_serializer_name(self, serializer, direction) -> str:
        qualname = serializer.__class__.__qualname__
        if "." not in qualname or "<locals>" in qualname:
            return super().get_serializer_name(serializer, direction)
        return "".join(part.removesuffix("Serializer") for part in qualname.split("."))

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        # drf-spectacular leaves out the list bounds the server enforces on a nested `many=True`
        # serializer (`max_length`, `min_length`, `allow_empty=False`) and `allow_empty=False` on a
        # ListField: a generated client or a fuzzer would take an empty or overlong list for valid.
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.ListSerializer | serializers.ListField)
            and schema
            and schema.get("type") == "array"
        ):
            minimum = max(getattr(field, "min_length", None) or 0, 0 if field.allow_empty else 1)
            if minimum and "minItems" not in schema:
                schema["minItems"] = minimum
            if getattr(field, "max_length", None) is not None and "maxItems" not in schema:
                schema["maxItems"] = field.max_length
        return schema

    def get_override_parameters(self):
        # Every operation may answer 429 (rate limit, sign-in throttle) and 503, both with Retry-After.
        return [
            *super().get_override_parameters(),
            OpenApiParameter(
                "Retry-After",
                int,
                OpenApiParameter.HEADER,
                response=[429, 503],
                description="Seconds to wait before retrying.",
            ),
        ]


ErrorEnvelopeSerializer = inline_serializer(
    "ErrorEnvelope",
    {
        "errors": inline_serializer(
            "Error", {"code": serializers.IntegerField(), "message": serializers.CharField()}, many=True
        )
    },
)


class V2MessageSerializer(serializers.Serializer):
    """One entry of a v2 call's `warnings` or `errors`."""

    status = serializers.BooleanField()
    code = serializers.IntegerField()
    message = serializers.CharField()


V2ErrorEnvelopeSerializer = inline_serializer(
    "V2ErrorEnvelope",
    {"warnings": V2MessageSerializer(many=True), "errors": V2MessageSerializer(many=True)},
)


def error_responses(
    *codes: ErrorCode, auth: bool = True, v2: bool = False, examples: dict[ErrorCode, dict] | None = None
) -> dict[int, OpenApiResponse]:
    """OpenAPI responses in the endpoint's envelope (v1/v3, or v2 with `v2=True`): one entry per HTTP
    status, one example per code; `examples` replaces a code's generated body (with a documented one)."""
    all_codes = list(codes)
    if auth:
        all_codes += [ErrorCode.UNAUTHORIZED]
    all_codes += [
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.THROTTLED,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.SERVICE_UNAVAILABLE,
    ]
    by_status: dict[int, list[ErrorCode]] = {}
    for code in dict.fromkeys(all_codes):
        by_status.setdefault(code.http_status, []).append(code)
    path = "/v2/" if v2 else "/api_gateway/"
    examples = examples or {}
    return {
        http_status: OpenApiResponse(
            response=V2ErrorEnvelopeSerializer if v2 else ErrorEnvelopeSerializer,
            description="; ".join(f"{int(c)}: {c.message}" for c in group),
            examples=[
                OpenApiExample(
                    f"{int(c)} {c.name.replace('_', ' ').lower()}",
                    value=examples.get(c) or envelope(path, [{"code": int(c), "message": c.message}]),
                    status_codes=[str(http_status)],
                    response_only=True,
                )
                for c in group
            ],
        )
        for http_status, group in by_status.items()
    }


def allow_empty_optional_query_parameters(result, generator, request, public):
    """drf-spectacular postprocessing hook: an optional query parameter sent empty (`?limit=`) reads
    as not sent (DRF's and django-filter's rule for every query string here), so the schema says
    `allowEmptyValue` on each; clients and fuzzers then know `?type=` is not an invalid enum value."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


def document_negotiation_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the errors DRF's content negotiation can answer on any
    operation, in the operation's envelope: 406 (an `Accept` header JSON cannot satisfy) everywhere,
    415 (a body that is not `application/json`) wherever there is a request body."""
    for path, operations in result.get("paths", {}).items():
        component = "V2ErrorEnvelope" if path.startswith("/v2/") else "ErrorEnvelope"
        for operation in operations.values():
            codes = [ErrorCode.NOT_ACCEPTABLE]
            if "requestBody" in operation:
                codes.append(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
            for code in codes:
                operation["responses"].setdefault(
                    str(code.http_status),
                    {
                        "description": f"{int(code)}: {code.message}",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{component}"},
                                "examples": {
                                    code.name.title().replace("_", ""): {
                                        "value": envelope(
                                            path, [{"code": int(code), "message": code.message}]
                                        ),
                                        "summary": f"{int(code)} {code.name.replace('_', ' ').lower()}",
                                    }
                                },
                            }
                        },
                    },
                )
    return result


def require_request_bodies(result, generator, request, public):
    """drf-spectacular postprocessing hook: every documented request body must be sent, even one whose
    fields are all optional (a promotion update: `{}` is a no-op, no body is 400)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result
