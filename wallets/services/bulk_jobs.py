"""Bulk jobs: the admin's issue and bulk-earn runs over a file of customers, recorded, then run in
chunks (inline, in a thread, or as Celery tasks) through the issue and earn services."""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization, Promotion, PromotionType
from promotions_site import metrics
from promotions_site.errors import ErrorCode, PromotionError
from wallets.identifiers import email_normalize, mobile_normalize
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion
from wallets.services.earn import EarnRequest, earned_promotions_earn, earned_promotions_earn_check
from wallets.services.issue import earned_promotions_issue, promotion_check_running

logger = logging.getLogger(__name__)

BULK_JOB_CHUNK_SIZE = settings.BULK_JOB_CHUNK_SIZE
_RESOLVE_BATCH = 5000


@dataclass
class BulkJobPreview:
    """What a bulk job would do, before it is confirmed (nothing is written to compute it)."""

    total: int = 0
    found: int = 0
    unknown: int = 0
    duplicates: int = 0
    # Issue: each customer found is in exactly one of these three buckets or `first_time`.
    already_holding: int = 0  # hold it (another contextId), below their limit: get one more
    over_limit: int = 0  # at maxIssuancePerCustomer, and not holding it with this contextId
    same_context: int = 0  # hold it with this contextId already: a replay, nothing new for them
    unknown_values: list[str] = field(default_factory=list)  # the first PREVIEW_UNKNOWN_SHOWN of them
    earn_rows: list[EarnPreviewRow] = field(default_factory=list)  # earn: one per promotion listed

    @property
    def first_time(self) -> int:
        """Issue: the customers found who do not hold the promotion yet."""
        return self.found - self.already_holding - self.same_context - self.over_limit

    @property
    def to_give(self) -> int:
        """The customers who would get something new (for an earn: every customer found)."""
        return self.found - self.same_context - self.over_limit

    @property
    def instances(self) -> int:
        """Earn: the instances the job would give (created, or LOCKED ones unlocked), all promotions."""
        return sum(row.instances for row in self.earn_rows)


@dataclass
class EarnPreviewRow:
    """What a bulk earn would give of one promotion: instances, and the customers its
    maxEarningPerCustomer stops (wholly or in part)."""

    promotion: Promotion
    earn_count: int
    instances: int = 0
    at_limit: int = 0
    at_limit_ids: list[int] = field(default_factory=list)  # the first PREVIEW_UNKNOWN_SHOWN of them


PREVIEW_UNKNOWN_SHOWN = 10
BULK_EARNED_FROM_TYPES = (
    EarnedPromotion.EarnedFromType.ACTIVITY,
    EarnedPromotion.EarnedFromType.MILESTONE,
    EarnedPromotion.EarnedFromType.REWARD,
)
MAX_EARN_ENTRIES = 100
MAX_EARN_COUNT = 100


def _customers_resolve(org: Organization, identifier_type: str, values: list[str]) -> dict[str, int]:
    """identifier value (as given) -> customer id, for the values that name one of the org's customers."""
    column, normalise = {
        "id": ("pk", lambda v: int(v) if v.isascii() and v.isdigit() and 0 < int(v) < 2**63 else None),
        "mobile": ("mobile", mobile_normalize),
        "email": ("email", lambda v: email_normalize(v) or None),
        "externalId": ("external_id", lambda v: v or None),
    }[identifier_type]
    keys = {}
    for value in values:
        key = normalise(value.strip())
        if key is not None:
            keys.setdefault(key, []).append(value)
    found: dict[str, int] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), _RESOLVE_BATCH):
        batch = wanted[start : start + _RESOLVE_BATCH]
        for key, customer_id in (
            Customer.objects.for_org(org).filter(**{f"{column}__in": batch}).values_list(column, "pk")
        ):
            for value in keys[key]:
                found[value] = customer_id
    return found


def bulk_job_check(
    *, org: Organization, kind: str, promotion: Promotion | None, params: dict | None = None
) -> None:
    """Refuse a bulk job that cannot run, before anything is written.

    Issue: 707 the type is not issuable (only CUSTOMER and EARNING are); 706, 709, 705 from
    `promotion_check_running`; 400 no contextId (when `params` are given).
    Earn (`params`: earnedFromType ACTIVITY | MILESTONE | REWARD, earnedFromId, and 1..100 entries of
    {promotionId, earnCount 1..100}, each promotion once): 400 for a malformed entry, 404 a promotion
    that is not the org's, 714 a type that cannot be earned (only EARNING and REWARD can), 706, 709, 705.
    """
    now = timezone.now()
    if kind == BulkJob.Kind.ISSUE:
        if promotion is None or promotion.org_id != org.pk:
            raise PromotionError(ErrorCode.NOT_FOUND, "Promotion not found.")
        if promotion.type not in PromotionType.ISSUABLE_TYPES:
            raise PromotionError(ErrorCode.UNSUPPORTED_PROMOTION_TYPE)
        promotion_check_running(promotion=promotion, org=org, now=now)
        if params is not None and not 0 < len(str(params.get("contextId") or "")) <= 255:
            raise PromotionError(ErrorCode.BAD_REQUEST, "contextId is required (at most 255 characters).")
        return
    if kind != BulkJob.Kind.EARN:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"Unknown bulk job kind {kind!r}.")
    params = params or {}
    if params.get("earnedFromType") not in BULK_EARNED_FROM_TYPES:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"earnedFromType must be one of {', '.join(BULK_EARNED_FROM_TYPES)}."
        )
    if not 0 < len(str(params.get("earnedFromId") or "")) <= 255:
        raise PromotionError(ErrorCode.BAD_REQUEST, "earnedFromId is required (at most 255 characters).")
    entries = params.get("entries") or []
    if not 0 < len(entries) <= MAX_EARN_ENTRIES:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"Give 1 to {MAX_EARN_ENTRIES} promotions to earn.")
    counts = [entry.get("earnCount") for entry in entries]
    if not all(type(count) is int and 0 < count <= MAX_EARN_COUNT for count in counts):
        raise PromotionError(ErrorCode.BAD_REQUEST, f"earnCount must be 1 to {MAX_EARN_COUNT}.")
    ids = [entry.get("promotionId") for entry in entries]
    if len(set(ids)) != len(ids):
        raise PromotionError(ErrorCode.BAD_REQUEST, "Each promotion can be listed once.")
    found = Promotion.objects.for_org(org).in_bulk([i for i in ids if isinstance(i, str)])
    for promotion_id in ids:
        if promotion_id not in found:
            raise PromotionError(ErrorCode.NOT_FOUND, f"Promotion {promotion_id} not found.")
        earned_promotions_earn_check(promotion=found[promotion_id], org=org, event_time=now, now=now)


def bulk_job_preview(
    *,
    org: Organization,
    kind: str,
    promotion: Promotion | None,
    identifier_type: str,
    values: list[str],
    params: dict | None = None,
) -> BulkJobPreview:
    """Counts for the confirmation page: found, unknown (and the first few unknown values), duplicated
    in the input, and (issue) customers already holding the promotion, holding it with this contextId
    (a replay: nothing new for them) and at their maxIssuancePerCustomer. Refuses what `bulk_job_create` would refuse (`bulk_job_check`; an earn is
    checked when its `params` are given). Writes nothing."""
    if kind == BulkJob.Kind.ISSUE or params is not None:
        bulk_job_check(org=org, kind=kind, promotion=promotion, params=params)
    preview = BulkJobPreview(total=len(values))
    resolved = _customers_resolve(org, identifier_type, values)
    customer_ids = []
    seen = set()
    for value in values:
        customer_id = resolved.get(value)
        if customer_id is None:
            preview.unknown += 1
            if len(preview.unknown_values) < PREVIEW_UNKNOWN_SHOWN:
                preview.unknown_values.append(value)
        elif customer_id in seen:
            preview.duplicates += 1
        else:
            seen.add(customer_id)
            customer_ids.append(customer_id)
    preview.found = len(customer_ids)
    if kind == BulkJob.Kind.ISSUE and promotion is not None:
        context_id = (params or {}).get("contextId")
        limit = promotion.max_issuance_per_customer
        for start in range(0, len(customer_ids), _RESOLVE_BATCH):
            batch = customer_ids[start : start + _RESOLVE_BATCH]
            replayed = set()
            if context_id:
                replayed = set(
                    EarnedPromotion.objects.filter(
                        promotion=promotion, customer_id__in=batch, earned_from_id=context_id, seq=1
                    ).values_list("customer_id", flat=True)
                )
            preview.same_context += len(replayed)
            held = (
                EarnedPromotion.objects.filter(
                    promotion=promotion, customer_id__in=batch, kind=EarnedPromotion.Kind.ISSUED
                )
                .exclude(status=EarnedPromotion.Status.REVOKED)
                .values("customer_id")
                .annotate(n=Count("id"))
                .values_list("customer_id", "n")
            )
            for customer_id, count in held:
                if customer_id in replayed:
                    continue  # counted once, as a replay
                if limit != -1 and count >= limit:
                    preview.over_limit += 1
                else:
                    preview.already_holding += 1
    if kind == BulkJob.Kind.EARN and params is not None:
        preview.earn_rows = _earn_preview_rows(org, params, customer_ids)
    return preview


def _earn_preview_rows(org: Organization, params: dict, customer_ids: list[int]) -> list[EarnPreviewRow]:
    """Per promotion of a bulk earn: the instances it would give the customers found, as the earn
    service decides them (instances this earnedFromId already gave count as given; the rest up to
    earnCount, within maxEarningPerCustomer), and who is at that limit."""
    key = str(params.get("earnedFromId") or "")
    entries = params.get("entries") or []
    promotions = Promotion.objects.for_org(org).in_bulk([entry["promotionId"] for entry in entries])
    rows = []
    for entry in entries:
        promotion = promotions[entry["promotionId"]]
        row = EarnPreviewRow(promotion=promotion, earn_count=entry["earnCount"])
        limit = promotion.max_earning_per_customer
        for start in range(0, len(customer_ids), _RESOLVE_BATCH):
            batch = customer_ids[start : start + _RESOLVE_BATCH]
            mine = EarnedPromotion.objects.filter(promotion=promotion, customer_id__in=batch)
            same_key = dict(
                mine.filter(Q(kind=EarnedPromotion.Kind.EARNED, earned_from_id=key) | Q(unlocked_from_id=key))
                .values("customer_id")
                .annotate(n=Count("id"))
                .values_list("customer_id", "n")
            )
            held = {}
            if limit not in (None, -1):
                held = dict(
                    mine.filter(Q(kind=EarnedPromotion.Kind.EARNED) | ~Q(unlocked_from_id=""))
                    .exclude(status=EarnedPromotion.Status.REVOKED)
                    .values("customer_id")
                    .annotate(n=Count("id"))
                    .values_list("customer_id", "n")
                )
            for customer_id in batch:
                wanted = max(0, row.earn_count - same_key.get(customer_id, 0))
                allowed = wanted
                if limit not in (None, -1):
                    allowed = max(0, min(wanted, limit - held.get(customer_id, 0)))
                row.instances += allowed
                if allowed < wanted:
                    row.at_limit += 1
                    if len(row.at_limit_ids) < PREVIEW_UNKNOWN_SHOWN:
                        row.at_limit_ids.append(customer_id)
        rows.append(row)
    return rows


def bulk_job_create(
    *,
    org: Organization,
    kind: str,
    promotion: Promotion | None,
    params: dict,
    identifier_type: str,
    values: list[str],
    user,
    lines: list[int] | None = None,
    input_file=None,
    input_name: str = "",
    idempotency_key: str = "",
) -> BulkJob:
    """Record a bulk job and its items (one per input value, in input order, each with its `lines`
    entry: the line of the input it is on, which the error report shows; by default the value's
    position, for an input of one value per line); unknown customers are
    FAILED items (1007) from the start, a customer listed twice is processed once (the later lines
    are DONE as duplicates). Nothing is issued or earned yet: `bulk_job_start` runs it.

    Errors (nothing written): those of `bulk_job_check`. With an `idempotency_key`, a second call
    with the same key (a double-clicked confirm) returns the job the first one created, even when
    both race: the key is unique per org.
    """
    bulk_job_check(org=org, kind=kind, promotion=promotion, params=params)
    if idempotency_key and (existing := _bulk_job_by_key(org, idempotency_key)) is not None:
        return existing
    resolved = _customers_resolve(org, identifier_type, values)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the twin of a raced confirm fails here
                job = BulkJob.objects.create(
                    org=org,
                    kind=kind,
                    promotion=promotion,
                    params=params,
                    identifier_type=identifier_type,
                    total=len(values),
                    created_by=user,
                    input_file=input_file or "",
                    input_name=input_name,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            if idempotency_key and (existing := _bulk_job_by_key(org, idempotency_key)) is not None:
                return existing
            raise
        _bulk_job_items_create(job, values, lines or range(1, len(values) + 1), resolved)
        audit_event_record(
            org=org,
            actor=Actor.for_user(user) if user else Actor.system("bulk_job"),
            action="bulk_job.create",
            object_type="BulkJob",
            object_id=job.pk,
            data={"kind": kind, "promotion": promotion.pk if promotion else None, "total": len(values)},
        )
    job.refresh_from_db()
    return job


def _bulk_job_items_create(
    job: BulkJob, values: list[str], lines: Sequence[int], resolved: dict[str, int]
) -> None:
    """One item per input value, in input order: FAILED (1007) for an unknown customer, DONE for a
    customer listed earlier, else PENDING; the job counts the first two as failed and done."""
    seen: set[int] = set()
    items = []
    failed = duplicates = 0
    for line, value in zip(lines, values, strict=True):
        customer_id = resolved.get(value)
        item = BulkJobItem(job=job, line=line, identifier=value[:254], customer_id=customer_id)
        if customer_id is None:
            item.status, item.code = BulkJobItem.Status.FAILED, int(ErrorCode.CUSTOMER_FETCH_FAILED)
            item.message = "Customer not found."
            failed += 1
        elif customer_id in seen:
            item.status, item.message = BulkJobItem.Status.DONE, "Listed earlier in the input."
            duplicates += 1
        if customer_id is not None:
            seen.add(customer_id)
        items.append(item)
    BulkJobItem.objects.bulk_create(items, batch_size=5000)
    BulkJob.objects.filter(pk=job.pk).update(failed=failed, done=duplicates)


def _bulk_job_by_key(org: Organization, key: str) -> BulkJob | None:
    return BulkJob.objects.for_org(org).filter(idempotency_key=key).first()


def bulk_job_chunks(*, job) -> list[tuple[int, int]]:
    """The job's pending items as id ranges [low, high) of at most BULK_JOB_CHUNK_SIZE items each."""
    ids = BulkJobItem.objects.filter(job=job, status=BulkJobItem.Status.PENDING).order_by("id")
    bounds = list(ids.values_list("id", flat=True)[::BULK_JOB_CHUNK_SIZE])
    last = ids.order_by("-id").values_list("id", flat=True).first()
    if last is None:
        return []
    edges = [*bounds, last + 1]
    return list(itertools.pairwise(edges))


def bulk_job_run_chunk(*, job_id: int, low: int, high: int) -> int:
    """Process the job's PENDING items with id in [low, high) through the issue or earn service.

    Idempotent: only PENDING items are taken, the services are idempotent per contextId /
    earnedFromId, and the job's counters grow by the items this call moved out of PENDING. Returns
    that number. The items are locked waiting, not skipping: a chunk delivered again while another
    run of it still holds them (a killed worker's transaction lives on until its statement ends)
    takes over what that run leaves PENDING, instead of skipping it and leaving the job unfinished.
    """
    with transaction.atomic():
        job = BulkJob.objects.select_related("org", "promotion", "created_by").get(pk=job_id)
        items = list(
            BulkJobItem.objects.select_for_update()
            .filter(job=job, status=BulkJobItem.Status.PENDING, id__gte=low, id__lt=high)
            .order_by("id")
        )
        if not items:
            return 0
        if job.status == BulkJob.Status.PENDING:
            BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.PENDING).update(
                status=BulkJob.Status.RUNNING, started_at=timezone.now()
            )
        actor = Actor.for_user(job.created_by) if job.created_by else Actor.system("bulk_job")
        results = _bulk_job_apply(job, [item.customer_id for item in items], actor)
        done = failed = 0
        for item in items:
            code, message = results.get(item.customer_id, (None, ""))
            item.status = BulkJobItem.Status.FAILED if code else BulkJobItem.Status.DONE
            item.code, item.message = code, message[:255]
            failed += bool(code)
            done += not code
        BulkJobItem.objects.bulk_update(items, ["status", "code", "message"], batch_size=2000)
        BulkJob.objects.filter(pk=job.pk).update(done=F("done") + done, failed=F("failed") + failed)
        metrics.bulk_job_items_count(kind=job.kind, done=done, failed=failed)
        BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.RUNNING).exclude(
            items__status=BulkJobItem.Status.PENDING
        ).update(status=BulkJob.Status.DONE, finished_at=timezone.now())
    return len(items)


def _bulk_job_apply(job, customer_ids: list[int], actor: Actor) -> dict[int, tuple[int, str]]:
    """Run one chunk's customers through the service; customer id -> (error code, message) for failures."""
    failures: dict[int, tuple[int, str]] = {}
    if job.kind == "ISSUE":
        try:
            outcome = earned_promotions_issue(
                promotion=job.promotion,
                customer_ids=list(dict.fromkeys(customer_ids)),
                context_id=job.params["contextId"],
                actor=actor,
            )
        except PromotionError as error:  # the promotion stopped running mid-job: the chunk fails
            return {customer_id: (int(error.code), error.message) for customer_id in customer_ids}
        for error in outcome.errors:
            failures[error["customerId"]] = (error["code"], error["message"])
        return failures
    entries = job.params["entries"]
    promotions = {
        p.pk: p for p in Promotion.objects.for_org(job.org).filter(pk__in=[e["promotionId"] for e in entries])
    }
    customers = Customer.objects.for_org(job.org).select_related("org").in_bulk(customer_ids)
    for customer_id in dict.fromkeys(customer_ids):
        requests = [
            EarnRequest(
                promotion=promotions[entry["promotionId"]],
                earn_count=entry["earnCount"],
                earned_from_id=job.params["earnedFromId"],
            )
            for entry in entries
        ]
        try:
            outcomes = earned_promotions_earn(
                customer=customers[customer_id],
                requests=requests,
                earned_from_type=job.params["earnedFromType"],
                event_time=timezone.now(),
                event_details={"id": job.params["earnedFromId"], "type": job.params["earnedFromType"]},
                actor=actor,
            )
        except PromotionError as error:
            failures[customer_id] = (int(error.code), error.message)
            continue
        refused = [o for o in outcomes if o.error is not None]
        if refused:
            failures[customer_id] = (int(refused[0].error), refused[0].error.message)
    return failures


def bulk_job_start(*, job: BulkJob) -> None:
    """Run a created job: small jobs (BULK_JOB_INLINE_MAX items or fewer) at once, in this request;
    larger ones as one Celery task per chunk, which any number of workers take in parallel. With no
    broker (the embedded default) the same chunks run in-process, in a background thread
    (`BULK_JOBS_IN_PROCESS=thread`, the default) or before returning (`sync`). Dispatch happens after
    the caller's transaction commits."""
    chunks = bulk_job_chunks(job=job)
    if not chunks:
        BulkJob.objects.filter(pk=job.pk).exclude(status=BulkJob.Status.DONE).update(
            status=BulkJob.Status.DONE, started_at=timezone.now(), finished_at=timezone.now()
        )
        return
    inline = job.total <= settings.BULK_JOB_INLINE_MAX
    transaction.on_commit(lambda: _bulk_job_dispatch(job.pk, chunks, inline=inline))


def bulk_job_retry(*, job: BulkJob, user) -> None:
    """Run a FAILED job again: the failure left its unprocessed items PENDING, and only those run,
    through the same idempotent chunks, so nothing already done is done twice.

    Errors: 409 the job has not failed (it is pending, running or done), or is an export.
    """
    if job.kind == BulkJob.Kind.EXPORT:
        raise PromotionError(ErrorCode.CONFLICT, "An export is not retried: start a new one from the list.")
    with transaction.atomic():
        retried = BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.FAILED).update(
            status=BulkJob.Status.RUNNING,
            error="",
            finished_at=None,
            started_at=Coalesce(F("started_at"), Value(timezone.now())),
        )
        if not retried:
            raise PromotionError(ErrorCode.CONFLICT, "Only a failed job can be retried.")
        job.refresh_from_db()
        audit_event_record(
            org=job.org_id,
            actor=Actor.for_user(user) if user else Actor.system("bulk_job"),
            action="bulk_job.retry",
            object_type="BulkJob",
            object_id=job.pk,
            data={"pending": job.total - job.processed},
        )
        bulk_job_start(job=job)


BULK_JOB_CHUNK_TASK = "wallets.tasks.bulk_job_chunk_task"


def _bulk_job_dispatch(job_id: int, chunks: list[tuple[int, int]], *, inline: bool) -> None:
    # Looked up by name: wallets.tasks imports this module to run a chunk, so importing it back would
    # tie the two into an import cycle. WalletsConfig.ready registers the task in every process.
    bulk_job_chunk_task = current_app.tasks[BULK_JOB_CHUNK_TASK]
    if inline or settings.BULK_JOBS_IN_PROCESS == "sync":
        try:
            _bulk_job_run_all(job_id, chunks)
        except Exception:
            # The job records the failure (FAILED, with the reason) for the page that started it.
            logger.exception("bulk job %s failed", job_id)
    elif settings.CELERY_BROKER_URL:
        try:
            for low, high in chunks:
                bulk_job_chunk_task.delay(job_id, low, high)
        except Exception as error:  # the broker is unreachable: the job can be retried once it is back
            logger.exception("bulk job %s could not be queued", job_id)
            BulkJob.objects.filter(pk=job_id).update(
                status=BulkJob.Status.FAILED,
                error=f"Could not queue the job: {type(error).__name__}: {error}"[:2000],
                finished_at=timezone.now(),
            )
    else:
        # In the caller's context: the thread's logs and audit events keep the request id.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_bulk_job_run_all, job_id, chunks),
            kwargs={"own_connection": True},
            name=f"bulk-job-{job_id}",
            daemon=True,
        ).start()


# SQLite's busy handler polls for the write lock every 100 ms at most: a runner that begins its next
# chunk the moment it commits keeps the lock from waiting writers (a till's redemption) for the whole job.
_SQLITE_PAUSE_BETWEEN_CHUNKS = 0.1


def _bulk_job_run_all(job_id: int, chunks: list[tuple[int, int]], *, own_connection: bool = False) -> None:
    try:
        for index, (low, high) in enumerate(chunks):
            if index and connection.vendor == "sqlite":
                time.sleep(_SQLITE_PAUSE_BETWEEN_CHUNKS)
            bulk_job_chunk_run(job_id=job_id, low=low, high=high)
    finally:
        if own_connection:
            connection.close()


def bulk_job_chunk_run(*, job_id: int, low: int, high: int) -> int:
    """One chunk, as a worker runs it: an unexpected failure marks the job FAILED (with the reason)
    and is raised again; the chunk's items stay PENDING, so running the chunk again resumes it."""
    try:
        return bulk_job_run_chunk(job_id=job_id, low=low, high=high)
    except Exception as error:
        BulkJob.objects.filter(pk=job_id).update(
            status=BulkJob.Status.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        raise
