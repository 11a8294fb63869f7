"""Writes of promo codes in bulk: generation batches (create, run chunk by chunk, cancel) and CSV
uploads. The admin, the `generate_codes` / `upload_codes` commands, the API and the Celery task all
call these.

Codes are written set-based: on PostgreSQL a chunk is COPYed into a staging table (a TEMP table
dropped at commit, so it works behind a transaction-mode pooler too) and moved with one
`INSERT ... SELECT ... ON CONFLICT (org_id, code) DO NOTHING`; elsewhere (the embedded SQLite)
multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` statements do the same. Each chunk is one
transaction that also adds what it wrote to the batch's `done`: a crash loses at most the chunk in
flight, and running the batch again draws only what is missing.
"""

from __future__ import annotations

import contextvars
import csv
import io
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.codegen.spec import COUNT_MAX, CodeSpec, code_error, space_check, spec_build
from promotions.models import PromoCode, PromoCodeBatch, Promotion, PromotionType
from promotions_site.errors import ErrorCode, PromotionError

logger = logging.getLogger(__name__)

Status = PromoCodeBatch.Status
FINISHED = (Status.DONE, Status.CANCELLED)
REPORT_MAX = 10_000  # refused upload rows kept in a batch's report (all are counted in `failed`)
_STAGE = "promo_code_stage"
_SQLITE_ROWS = 500  # rows per multi-row INSERT on SQLite (5 bound values each, under its 32766 limit)
_SQLITE_PAUSE_BETWEEN_CHUNKS = 0.1  # let a waiting writer (a till's redemption) take the write lock
RUN_TASK = "promotions.tasks.promo_code_batch_run_task"


def chunk_size() -> int:
    return settings.PROMO_CODE_CHUNK_SIZE


# --- shared -----------------------------------------------------------------------------------------


def _code_promotion_check(promotion: Promotion) -> None:
    if promotion.type != PromotionType.CODE:
        raise PromotionError(
            ErrorCode.UNSUPPORTED_PROMOTION_TYPE, "Promo codes belong to CODE promotions only."
        )


def _codes_insert(*, batch: PromoCodeBatch, codes: list[str], returning: bool) -> list[str] | int:
    """Insert `codes` (upper-case, valid) into the batch's promotion; a code the org already has
    (or a repeat within `codes`) is skipped. The inserted codes (`returning`) or their number.
    Call inside the chunk's transaction."""
    if not codes:
        return [] if returning else 0
    table = PromoCode._meta.db_table
    columns = "org_id, promotion_id, code, batch_id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Dropped at commit; within one transaction (a test's) a second chunk reuses it, emptied.
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (code varchar(40) NOT NULL) ON COMMIT DROP"
            )
            cursor.execute(f"TRUNCATE {_STAGE}")
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {_STAGE} (code) FROM STDIN") as copy,
            ):
                copy.write("\n".join(codes) + "\n")  # codes hold no tab, newline or backslash
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT %s, %s, code, %s FROM {_STAGE} "
                f"ON CONFLICT (org_id, code) DO NOTHING" + (" RETURNING code" if returning else ""),
                [batch.org_id, batch.promotion_id, batch.pk],
            )
            return [row[0] for row in cursor.fetchall()] if returning else cursor.rowcount
        inserted: list[str] = []
        for start in range(0, len(codes), _SQLITE_ROWS):
            part = codes[start : start + _SQLITE_ROWS]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(part))
            params: list[Any] = []
            for code in part:
                params += [batch.org_id, batch.promotion_id, code, batch.pk]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} "
                f"ON CONFLICT (org_id, code) DO NOTHING RETURNING code",
                params,
            )
            inserted += [row[0] for row in cursor.fetchall()]
        return inserted if returning else len(inserted)


def _batch_create(
    *, promotion: Promotion, kind: str, request_id: str, params: dict, total: int, actor: Actor
) -> tuple[PromoCodeBatch, bool]:
    """The batch of `request_id` (created, True) or the one it already names (False) when it is the
    same request (kind, promotion, params); else 4003."""
    try:
        with transaction.atomic():
            batch = PromoCodeBatch.objects.create(
                org_id=promotion.org_id,
                promotion=promotion,
                kind=kind,
                request_id=request_id,
                params=params,
                total=total,
                status=Status.PENDING,
                created_by=actor.name[:150],
            )
            audit_event_record(
                org=promotion.org_id,
                actor=actor,
                action=f"promo_code_batch.{kind.lower()}",
                object_type="PromoCodeBatch",
                object_id=batch.pk,
                data={"promotionId": promotion.pk, "requestId": request_id, **params},
            )
            return batch, True
    except IntegrityError:
        batch = PromoCodeBatch.objects.filter(org_id=promotion.org_id, request_id=request_id).first()
        if batch is None:  # not the request id that clashed: a genuine database error
            raise
    if batch.kind != kind or batch.promotion_id != promotion.pk or batch.params != params:
        raise PromotionError(ErrorCode.PROMO_CODE_REQUEST_ID_REUSED)
    return batch, False


def _request_id_default(request_id: str | None) -> str:
    import uuid

    return (request_id or "").strip() or f"auto-{uuid.uuid4().hex}"


# --- generation ----------------------------------------------------------------------------------


def generation_params(
    *,
    count: int,
    length: int | None = None,
    charset: str = "ALPHANUMERIC",
    alphabet: str = "",
    prefix: str = "",
    suffix: str = "",
    pattern: str = "",
) -> dict[str, Any]:
    """A request's parameters as a batch stores them (the comparison key of a retried request)."""
    return {
        "count": count,
        "length": length,
        "charset": (charset or "ALPHANUMERIC").upper(),
        "alphabet": (alphabet or "").upper(),
        "prefix": (prefix or "").upper(),
        "suffix": (suffix or "").upper(),
        "pattern": (pattern or "").upper(),
    }


def _spec_of(params: dict[str, Any]) -> CodeSpec:
    return spec_build(**{key: value for key, value in params.items() if key != "count"})


def promo_code_batch_generate(
    *, promotion: Promotion, params: dict[str, Any], request_id: str | None, actor: Actor, start: bool = True
) -> PromoCodeBatch:
    """Ask for `params["count"]` new codes of a CODE promotion (`params` from `generation_params`).

    The same `request_id` with the same promotion and params answers the batch it created (running it
    again if it failed or never finished); with anything else 4003. Rules: 707 not a CODE promotion;
    400 count outside 1..10,000,000, a bad charset, alphabet or pattern; 902 a character a code
    cannot hold; 903 / 904 codes shorter than 5 or longer than 40; 4002 the space holds fewer than a
    million codes per code the promotion would have. The codes are written by
    `promo_code_batch_start` (at once for small counts, else in the background) after commit, or
    by the caller (`start=False`: the `generate_codes` command runs the chunks itself).
    """
    _code_promotion_check(promotion)
    count = params["count"]
    most = min(COUNT_MAX, settings.PROMO_CODES_COUNT_MAX)
    if not isinstance(count, int) or not 1 <= count <= most:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"count: from 1 to {most:,}.")
    spec = _spec_of(params)
    request_id = _request_id_default(request_id)
    existing = PromoCodeBatch.objects.filter(org_id=promotion.org_id, request_id=request_id).first()
    if existing is None:
        space_check(spec=spec, count=count, existing=PromoCode.objects.filter(promotion=promotion).count())
    batch, created = _batch_create(
        promotion=promotion,
        kind=PromoCodeBatch.Kind.GENERATE,
        request_id=request_id,
        params=params,
        total=count,
        actor=actor,
    )
    if start and (created or batch.status not in FINISHED):
        promo_code_batch_start(batch=batch)
        batch.refresh_from_db()  # outside a transaction a small batch has just run: answer its state
    return batch


def promo_code_batch_start(*, batch: PromoCodeBatch) -> None:
    """Run the batch after the caller's transaction commits: up to PROMO_CODES_INLINE_MAX codes
    before returning; more as a Celery task that re-enqueues itself chunk after chunk, or without a
    broker in a background thread (`BULK_JOBS_IN_PROCESS=thread`) or at once (`sync`)."""
    if batch.status == Status.FAILED:
        PromoCodeBatch.objects.filter(pk=batch.pk, status=Status.FAILED).update(
            status=Status.RUNNING, error="", finished_at=None
        )
    inline = batch.total - batch.done <= settings.PROMO_CODES_INLINE_MAX
    transaction.on_commit(lambda: _dispatch(batch.pk, inline=inline))


def _dispatch(batch_id: int, *, inline: bool) -> None:
    if inline or settings.BULK_JOBS_IN_PROCESS == "sync":
        try:
            promo_code_batch_run(batch_id=batch_id)
        except Exception:
            logger.exception("promo code batch %s failed", batch_id)  # recorded on the batch
    elif settings.CELERY_BROKER_URL:
        try:
            current_app.tasks[RUN_TASK].delay(batch_id)
        except Exception as error:  # the broker is unreachable: a retried request runs it again
            logger.exception("promo code batch %s could not be queued", batch_id)
            _batch_fail(batch_id, f"Could not queue the batch: {type(error).__name__}: {error}")
    else:
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(promo_code_batch_run,),
            kwargs={"batch_id": batch_id, "own_connection": True},
            name=f"promo-code-batch-{batch_id}",
            daemon=True,
        ).start()


def _batch_fail(batch_id: int, error: str) -> None:
    PromoCodeBatch.objects.filter(pk=batch_id).exclude(status__in=FINISHED).update(
        status=Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def promo_code_batch_run(*, batch_id: int, own_connection: bool = False) -> PromoCodeBatch:
    """Run the batch's chunks until it is DONE (or CANCELLED meanwhile). Safe to run again, and
    alongside another runner: each chunk locks the batch row and draws only what is still missing."""
    try:
        while promo_code_batch_chunk_run(batch_id=batch_id):
            if connection.vendor == "sqlite":
                time.sleep(_SQLITE_PAUSE_BETWEEN_CHUNKS)
        return PromoCodeBatch.objects.get(pk=batch_id)
    finally:
        if own_connection:
            connection.close()


def promo_code_batch_chunk_run(*, batch_id: int) -> bool:
    """One chunk of a generation batch, in one transaction: lock the batch, draw up to
    PROMO_CODE_CHUNK_SIZE of the codes still missing, insert them (codes the org already has are
    skipped and drawn again by the next chunk), add the inserted to `done`. True while codes remain.
    An unexpected failure marks the batch FAILED (with the reason) and is raised again."""
    try:
        with transaction.atomic():
            batch = PromoCodeBatch.objects.select_for_update().get(pk=batch_id)
            if batch.status in FINISHED:
                return False
            missing = batch.total - batch.done
            if missing <= 0:
                PromoCodeBatch.objects.filter(pk=batch.pk).update(
                    status=Status.DONE, finished_at=timezone.now(), error=""
                )
                return False
            drawn = _spec_of(batch.params).draw(min(missing, chunk_size()))
            inserted = _codes_insert(batch=batch, codes=drawn, returning=False)
            # With a million possible codes per code, repeats are about one in a million: half the
            # chunk repeating means the org's other codes fill this space. Stop rather than spin.
            if inserted * 2 < len(drawn):
                raise PromotionError(
                    ErrorCode.PROMO_CODE_SPACE_TOO_SMALL,
                    f"{len(drawn) - inserted:,} of {len(drawn):,} codes drawn already exist in the org: "
                    "the space is nearly full. Generate longer codes.",
                )
            PromoCodeBatch.objects.filter(pk=batch.pk).update(
                done=F("done") + inserted, status=Status.RUNNING, error=""
            )
            return True
    except Exception as error:
        message = error.message if isinstance(error, PromotionError) else f"{type(error).__name__}: {error}"
        _batch_fail(batch_id, message)
        raise


def promo_code_batch_cancel(*, batch: PromoCodeBatch, actor: Actor) -> PromoCodeBatch:
    """Stop a batch that has not finished: its runner stops before its next chunk. The codes already
    written stay (they are the batch's, and export like any other). 409 a DONE or CANCELLED batch."""
    with transaction.atomic():
        cancelled = (
            PromoCodeBatch.objects.filter(pk=batch.pk)
            .exclude(status__in=FINISHED)
            .update(status=Status.CANCELLED, finished_at=timezone.now())
        )
        if not cancelled:
            raise PromotionError(ErrorCode.CONFLICT, "Only a batch that has not finished can be cancelled.")
        batch.refresh_from_db()
        audit_event_record(
            org=batch.org_id,
            actor=actor,
            action="promo_code_batch.cancel",
            object_type="PromoCodeBatch",
            object_id=batch.pk,
            data={"done": batch.done, "total": batch.total},
        )
    return batch


# --- upload ----------------------------------------------------------------------------------------

UPLOAD_HEADER = "code"
REPORT_COLUMNS = ["line", "code", "errorCode", "reason"]


def _upload_rows(text: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(line, cell) of each data row: the first column; a first row reading `code` is the header;
    blank lines are skipped."""
    reader = csv.reader(text)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # a cell over the csv module's size limit, a stray quote at the end
            raise PromotionError(
                ErrorCode.BAD_REQUEST, f"Line {reader.line_num}: not CSV ({error})."
            ) from error
        cell = (row[0] if row else "").strip()
        if reader.line_num == 1 and cell.lower() == UPLOAD_HEADER:
            continue
        if not any(value.strip() for value in row):
            continue
        yield reader.line_num, cell


def promo_codes_upload(
    *, promotion: Promotion, file: Iterable[str], file_name: str, request_id: str | None, actor: Actor
) -> PromoCodeBatch:
    """Add the codes of a CSV file (one code per row, first column; an optional `code` header) to a
    CODE promotion, chunk by chunk, each chunk one transaction. Each code is trimmed and upper-cased;
    a row is refused, with its line, code and reason in the batch's report (the first REPORT_MAX) and
    counted in `failed`, when the code is shorter than 5 (903), longer than 40 (904), holds another
    character than A-Z, 0-9, - and _ (902), repeats an earlier line of the file, or the org already
    has it. The good rows are inserted set-based. 707 not a CODE promotion; the same `request_id`
    answers its batch without reading the file again (4003 if it named another request).
    """
    _code_promotion_check(promotion)
    batch, created = _batch_create(
        promotion=promotion,
        kind=PromoCodeBatch.Kind.UPLOAD,
        request_id=_request_id_default(request_id),
        params={"fileName": file_name[:200]},
        total=0,
        actor=actor,
    )
    if not created:
        return batch
    PromoCodeBatch.objects.filter(pk=batch.pk).update(status=Status.RUNNING)
    chunk: list[tuple[int, str]] = []
    try:
        for row in _upload_rows(file):
            chunk.append(row)
            if len(chunk) >= chunk_size():
                _upload_chunk(batch, chunk)
                chunk = []
        _upload_chunk(batch, chunk)
    except Exception as error:
        message = error.message if isinstance(error, PromotionError) else f"{type(error).__name__}: {error}"
        _batch_fail(batch.pk, message)
        raise
    PromoCodeBatch.objects.filter(pk=batch.pk).exclude(status__in=FINISHED).update(
        status=Status.DONE, finished_at=timezone.now()
    )
    batch.refresh_from_db()
    return batch


def _upload_chunk(batch: PromoCodeBatch, rows: list[tuple[int, str]]) -> None:
    refused: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    good: list[str] = []
    for line, cell in rows:
        code = cell.upper()
        error = code_error(code)
        if error is not None:
            refused.append(
                {"line": line, "code": _reported(cell), "errorCode": int(error.code), "reason": error.message}
            )
        elif code in first_line:
            refused.append(_duplicate(line, _reported(cell), f"Repeats line {first_line[code]} of the file."))
        else:
            first_line[code] = line
            good.append(code)
    with transaction.atomic():
        inserted = set(_codes_insert(batch=batch, codes=good, returning=True))
        missed = [code for code in good if code not in inserted]
        if missed:
            owners: dict[str, int | None] = {}
            for start in range(0, len(missed), 10_000):  # bound parameters per statement stay few
                part = missed[start : start + 10_000]
                owners.update(
                    PromoCode.objects.filter(org_id=batch.org_id, code__in=part).values_list(
                        "code", "batch_id"
                    )
                )
            for code in missed:
                reason = (
                    "Repeats an earlier line of the file."
                    if owners.get(code) == batch.pk
                    else "The org already has this code."
                )
                refused.append(_duplicate(first_line[code], code, reason))
        refused.sort(key=lambda entry: entry["line"])
        locked = PromoCodeBatch.objects.select_for_update().only("report").get(pk=batch.pk)
        room = max(REPORT_MAX - len(locked.report), 0)
        PromoCodeBatch.objects.filter(pk=batch.pk).update(
            total=F("total") + len(rows),
            done=F("done") + len(inserted),
            failed=F("failed") + len(refused),
            report=locked.report + refused[:room],
        )


def _reported(cell: str) -> str:
    """A refused cell as the report keeps it: at most 100 characters, a NUL (which PostgreSQL's jsonb
    cannot hold) shown as U+FFFD."""
    return cell[:100].replace("\x00", "\ufffd")


def _duplicate(line: int, code: str, reason: str) -> dict[str, Any]:
    return {"line": line, "code": code, "errorCode": int(ErrorCode.CONFLICT), "reason": reason}


def upload_text(data: bytes) -> io.StringIO:
    """An uploaded file's bytes as text for `promo_codes_upload` (UTF-8, a BOM dropped)."""
    return io.StringIO(data.decode("utf-8-sig"), newline="")
