"""Bounded resource use: the request body cap, JSON nesting depth and free-form JSON size.

The body cap is checked twice: on the declared `Content-Length` before anything is read (a
middleware, every API path), and on the bytes DRF's JSON parser actually reads (Django's
`DATA_UPLOAD_MAX_MEMORY_SIZE` does not cover `request.stream`, which DRF reads).
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, serializers, status

from promotions_site.errors import ErrorCode, error_response, is_api_path

# Deeper JSON than this is refused (400): the documented bodies nest at most 7 levels, and very deep
# nesting would exhaust the recursion limit of the JSON encoder and decoder (a 500).
JSON_MAX_DEPTH = 32


def body_too_large_message() -> str:
    return f"Request body too large: at most {settings.API_MAX_BODY_BYTES} bytes."


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(body_too_large_message())


class RequestBodyLimitMiddleware:
    """An API request declaring a body over `API_MAX_BODY_BYTES` gets 413 in JSON, its body unread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # Django reads no body for an unparsable length either
            if length > settings.API_MAX_BODY_BYTES:
                code = ErrorCode.REQUEST_TOO_LARGE
                return error_response(
                    request.path, code.http_status, [{"code": int(code), "message": body_too_large_message()}]
                )
        return self.get_response(request)


# The bytes of JSON text that say anything about its nesting: quotes, brackets, backslashes.
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'"[]{}\\')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")


def json_text_depth_exceeds(raw: bytes, limit: int = JSON_MAX_DEPTH) -> bool | None:
    """Whether the UTF-8 JSON text `raw`, already parsed, nests more than `limit` levels deep, read
    off its bytes; None when they cannot tell (a backslash, or a bracket inside a string: the caller
    walks the parsed value instead, `json_depth_exceeds`). About a tenth of the walk's time for a
    50-line cart. Kept: quotes and brackets. With no backslash, each string is a quote, the brackets
    inside it, and a quote: removing adjacent quote pairs, left to right, removes every string exactly
    when none holds a bracket. What is left is the brackets alone, and each pass removing the
    innermost empty pairs removes one level."""
    kept = raw.translate(None, _NOT_STRUCTURE)
    if b"\\" in kept:
        return None
    kept = kept.replace(b'""', b"")
    if b'"' in kept:
        return None
    kept = kept.translate(_BRACES_AS_BRACKETS)
    for _ in range(limit):
        if not kept:
            return False
        kept = kept.replace(b"[]", b"")
    return bool(kept)


def json_depth_exceeds(value, limit: int = JSON_MAX_DEPTH) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels deep (iteratively: no recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def free_json_size(value) -> None:
    """Validator for a free-form JSON value stored as sent: at most `API_MAX_FREE_JSON_BYTES` bytes."""
    limit = settings.API_MAX_FREE_JSON_BYTES
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > limit:
        raise serializers.ValidationError(f"At most {limit} bytes of JSON.")


class StoredAsSentMixin:
    """For a nested serializer whose object is stored as the client sent it (unknown keys included):
    the object is capped by `free_json_size` before its fields are validated."""

    def to_internal_value(self, data):
        free_json_size(data)
        return super().to_internal_value(data)


def holds_nul(value) -> bool:
    """Whether a NUL character is anywhere in `value` (keys included): PostgreSQL stores none in text
    or jsonb, so a value holding one must be refused before it reaches the database."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
