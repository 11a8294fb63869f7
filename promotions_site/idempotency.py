"""Retry safety for the writes that have no natural key: the `Idempotency-Key` request header.

After the IETF draft "The Idempotency-Key HTTP Header Field" (draft-ietf-httpapi-idempotency-key-header)
and Brandur Leach's "Implementing Stripe-like Idempotency Keys in Postgres". An API class marks a
write handler with `@idempotent`; a request without the header runs exactly as before. With it:

1. The key is checked (1 to 255 visible ASCII characters other than `"` and `\\`, sent bare or as
   the draft's quoted sf-string: `"abc"` and `abc` are one key), else 400. The request's fingerprint
   is the SHA-256 of its method, path, query and body as canonical JSON (key order and spacing do
   not count).
2. The (API client, key) row is inserted with `ON CONFLICT DO NOTHING` and committed at once, so a
   concurrent request with the key finds a committed row to lock instead of waiting on an
   uncommitted insert.
3. Then one transaction: the row is locked with `SELECT ... FOR UPDATE NOWAIT`; held by a request
   in flight: 409 (4091). A kept answer younger than the retention: same fingerprint, it is
   replayed (status and body byte for byte, `Idempotent-Replayed: true`) and nothing runs; another
   fingerprint: 422 (4221). Otherwise the handler runs inside this transaction and its answer is
   written to the row: the effect and the kept answer commit together or not at all.

Kept: every answer the handler gives (2xx, v2's 200 warning included) and every refusal by a rule
once the input was valid (404 and the domain codes: 705, 706, 716, 729, 1101, 8015, the 409 of a
taken identifier, ...). Not kept, so the key stays free for a corrected retry: invalid input (code
400, the v2 parameter checks 11013 and 1212, 413, 415) and server faults (5xx and database errors:
nothing was written, so running the request again is safe).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer

from promotions.models import IdempotencyKey
from promotions_site.errors import ErrorCode, PromotionError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
_KEY_CHARS = r"[!#-\[\]-~]"  # visible ASCII without `"` and `\`
KEY_PATTERN = rf'^(?:"{_KEY_CHARS}{{1,{KEY_MAX_LENGTH}}}"|{_KEY_CHARS}{{1,{KEY_MAX_LENGTH}}})$'
_KEY_RE = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))
_LOCK_NOT_AVAILABLE = "55P03"

# Codes of answers that are not kept: the input was refused before any rule ran, or the request
# never reached the handler. Server faults (5xx) are not kept either.
_NOT_KEPT = frozenset(
    {
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.NOT_ACCEPTABLE,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.THROTTLED,
        ErrorCode.MANDATORY_PARAMETERS_MISSING,
        ErrorCode.INVALID_ENTITY_TYPE,
    }
)


def retention() -> dt.timedelta:
    """How long a kept answer is replayed (72 hours); older keys are purged and may be used again."""
    return dt.timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS)


def idempotency_key_parse(request) -> str | None:
    """The request's `Idempotency-Key` (quotes removed), None without the header; 400 when malformed."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _KEY_RE.fullmatch(value):
        raise PromotionError(
            ErrorCode.BAD_REQUEST,
            f"{HEADER} must be 1 to {KEY_MAX_LENGTH} visible ASCII characters other than the double "
            "quote and the backslash, sent bare or in double quotes.",
        )
    return value.strip('"')


def request_fingerprint(request) -> str:
    """SHA-256 of the method, path, query and body (canonical JSON): what a replay must repeat."""
    canonical = json.dumps(
        [request.method, request.path, sorted(request.query_params.lists()), request.data],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(handler):
    """Decorates an APIView write handler (`post`, `put`) to honour the `Idempotency-Key` header."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = idempotency_key_parse(request)
        if key is None:
            return handler(view, request, *args, **kwargs)
        return _run_once(view, request, key, lambda: handler(view, request, *args, **kwargs))

    return wrapper


def _run_once(view, request, key: str, call) -> HttpResponse:
    client = request.user
    fingerprint = request_fingerprint(request)
    now = timezone.now()
    # Autocommit: committed before the transaction below (see the module's docstring, step 2).
    IdempotencyKey.objects.bulk_create(
        [
            IdempotencyKey(
                api_client=client,
                key=key,
                method=request.method,
                path=request.path,
                fingerprint=fingerprint,
                created_at=now,
            )
        ],
        ignore_conflicts=True,
    )
    with transaction.atomic():
        record = _lock(IdempotencyKey.objects.filter(api_client=client, key=key))
        if record.completed_at is not None and record.created_at > now - retention():
            if record.fingerprint != fingerprint:
                raise PromotionError(ErrorCode.IDEMPOTENCY_KEY_REUSED)
            replay = _kept_response(record)
            replay[REPLAYED_HEADER] = "true"
            return replay
        try:
            with transaction.atomic():
                response = call()
        except Exception as exc:
            response = view.get_exception_handler()(exc, view.get_exception_handler_context())
            if response is None or not _keeps(response):
                raise
        # This request owns the key now: a row left without an answer (invalid input, a crash) or
        # past the retention takes this request's fingerprint and answer.
        record.method, record.path, record.fingerprint = request.method, request.path, fingerprint
        record.response_status = response.status_code
        record.response_body = JSONRenderer().render(response.data).decode()
        record.created_at, record.completed_at = now, timezone.now()
        record.save()
    return _kept_response(record)


def _lock(rows) -> IdempotencyKey:
    """The key's row, locked for this transaction; 409 when a request in flight holds it."""
    if not connection.features.has_select_for_update_nowait:
        # SQLite (the embedded default) has no row locks: writing the row takes the database's write
        # lock, so requests with one key run one after the other.
        rows.update(key=F("key"))
        record = rows.first()
    else:
        try:
            record = rows.select_for_update(nowait=True).first()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            raise PromotionError(ErrorCode.IDEMPOTENCY_KEY_IN_USE) from exc
    if record is None:
        # Purged between the insert and the lock (it was past the retention): the client retries.
        raise PromotionError(ErrorCode.IDEMPOTENCY_KEY_IN_USE)
    return record


def _keeps(response) -> bool:
    """Whether an error answer is kept for the key: a refusal by a rule, not invalid input or a fault."""
    if response.status_code >= 500:
        return False
    errors = response.data.get("errors") if isinstance(response.data, dict) else None
    first = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
    return first not in _NOT_KEPT


def _kept_response(record: IdempotencyKey) -> HttpResponse:
    return HttpResponse(
        record.response_body.encode(), status=record.response_status, content_type="application/json"
    )


# --- OpenAPI -------------------------------------------------------------------------------------

IDEMPOTENCY_ERRORS = (ErrorCode.IDEMPOTENCY_KEY_IN_USE, ErrorCode.IDEMPOTENCY_KEY_REUSED)

IDEMPOTENCY_PARAMETERS = [
    OpenApiParameter(
        HEADER,
        {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH + 2, "pattern": KEY_PATTERN},
        location=OpenApiParameter.HEADER,
        description=(
            "Optional retry key (IETF draft-ietf-httpapi-idempotency-key-header), e.g. a UUID: 1 to 255 "
            'visible ASCII characters other than `"` and `\\`, bare or in double quotes (400 otherwise). '
            "Scoped to the API client and kept 72 hours. A retry with the same key, method, path, query "
            "and body replays the first answer (status and body) without running again; the same key "
            "with another request: 422 (4221); while the first is still running: 409 (4091). Answers to "
            "invalid input (400) and server faults (5xx) are not kept: the key can be retried."
        ),
    ),
    OpenApiParameter(
        REPLAYED_HEADER,
        str,
        location=OpenApiParameter.HEADER,
        response=True,
        enum=["true"],
        description="`true` when the answer is the one kept for the request's Idempotency-Key, replayed.",
    ),
]
