"""The JSON parser of every API: bounded in size and nesting, and no NUL character anywhere."""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from promotions_site.limits import (
    JSON_MAX_DEPTH,
    RequestTooLarge,
    holds_nul,
    json_depth_exceeds,
    json_text_depth_exceeds,
)


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser reading at most `API_MAX_BODY_BYTES` (413 beyond), refusing JSON nested
    deeper than `JSON_MAX_DEPTH` levels (400), so no body can exhaust memory or the recursion limit,
    and refusing a NUL character anywhere in the body (400): PostgreSQL stores none in text or
    jsonb, so no field can hold one, and free JSON (`customFieldValues`, `eventDetails`) would
    otherwise reach the database with it (a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON parse error - nested more than {JSON_MAX_DEPTH} levels deep.") from exc
        # UTF-8 (DRF's default): every byte under 0x80 is the ASCII character it reads as.
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        deep = json_text_depth_exceeds(raw) if encoding.lower().replace("-", "") == "utf8" else None
        if deep or (deep is None and json_depth_exceeds(data)):
            raise ParseError(f"JSON parse error - nested more than {JSON_MAX_DEPTH} levels deep.")
        # JSON text holds a NUL only as the escape `\u0000` (or as a zero byte of a UTF-16/32 body):
        # a body with neither needs no walk over every string (about 1 ms for a 50-line cart).
        if (b"\\u0000" in raw or b"\x00" in raw) and holds_nul(data):
            raise ParseError("JSON parse error - null characters (\\u0000) are not allowed.")
        request = (parser_context or {}).get("request")
        if request is not None:
            request.json_body = raw  # the body as sent: a view that stores it whole need not encode it again
        return data
