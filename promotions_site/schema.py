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
    status, one example per code; `examples` replaces a code's generated body (with a seed's own)."""
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
