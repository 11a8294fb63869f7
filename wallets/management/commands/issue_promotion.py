"""`issue_promotion PROMOTION_ID --customers FILE --context-id X`: issue a promotion to every customer
listed in a file, through issueBulk's own service, chunk by chunk.

The file is either one customer id per line, or a CSV whose header row names a `customerId` column
(other columns are ignored). The first non-blank line decides: a customer id starts a plain list, a
row with a `customerId` cell (any case) is a header; anything else is refused before anything is
written. Blank lines are skipped. A line that holds no valid id (not a positive integer of at most 18
digits, several values on a plain-list line, an empty customerId cell) is not sent: it is counted as
malformed and written to the rejects CSV (`line,value,code,reason`; code 1006, as issueBulk answers a
malformed id), next to the customers the service refused (1007, 708, 713). Its default name holds the
promotion and the contextId (`FILE.PROMOTION.CONTEXT.rejects.csv`), so runs issuing other promotions
from one customer file keep their own reports; it is written aside and moved into place whole.

Each chunk is one call of `earned_promotions_issue` and commits on its own, with its own audit event
(actor `system:issue_promotion`, `source: issue_promotion` and the file's line range in its data).
The service is idempotent per (promotion, customer, contextId), so running the command again with the
same contextId after an interrupt issues only what is missing; what the first run issued counts as
"already held". The file is streamed: memory holds one chunk, whatever the file's size.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from promotions.audit import Actor
from promotions.models import Organization, Promotion
from promotions_site.csvexport import CsvReportFile
from promotions_site.errors import ErrorCode, PromotionError
from wallets.identifiers import parse_long_id
from wallets.services import earned_promotions_issue, earned_promotions_issue_check

DEFAULT_CHUNK_SIZE = 10_000
MAX_CHUNK_SIZE = 100_000
CONTEXT_ID_MAX_LENGTH = 255
HEADER = "customerid"
MALFORMED = int(ErrorCode.INVALID_CUSTOMER_IDENTIFIER)

# The summary's lines: per-customer codes of the service and what an operator calls them.
OUTCOMES = (
    ("issued", "issued (new)"),
    ("held", "already held"),
    (int(ErrorCode.CUSTOMER_FETCH_FAILED), "unknown customers (1007)"),
    (int(ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED), "over limit (708)"),
    ("other", "other errors (713)"),
    (MALFORMED, "malformed lines (1006)"),
)


@dataclass
class Reject:
    line: int
    value: str
    code: int
    reason: str


def customer_ids_read(handle, on_reject: Callable[[Reject], None]) -> Iterator[tuple[int, int]]:
    """(line number, customer id) for each data line of an open customer file, streamed.

    Raises CommandError when the first non-blank line is neither a customer id nor a header row
    with a customerId column. Malformed lines go to `on_reject` and are not yielded.
    """
    reader = csv.reader(handle)
    column: int | None = None
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            on_reject(Reject(reader.line_num, "", MALFORMED, f"unreadable CSV: {exc}"))
            continue
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if first:
            first = False
            if len(cells) != 1 or parse_long_id(cells[0]) is None:
                names = [cell.lower() for cell in cells]
                if HEADER not in names:
                    raise CommandError(
                        f"line {reader.line_num}: the first line must be a customer id, or a CSV header "
                        f"with a customerId column; found {_shown(','.join(row))}."
                    )
                column = names.index(HEADER)
                continue
        if column is None:
            if len(cells) != 1:
                on_reject(Reject(reader.line_num, ",".join(row), MALFORMED, "one customer id per line"))
                continue
            value = cells[0]
        else:
            value = cells[column] if column < len(cells) else ""
            if not value:
                on_reject(Reject(reader.line_num, ",".join(row), MALFORMED, "no customerId on this line"))
                continue
        customer_id = parse_long_id(value)
        if customer_id is None:
            on_reject(Reject(reader.line_num, value, MALFORMED, "not a customer id (a positive integer)"))
            continue
        yield reader.line_num, customer_id


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)
    lines: int = 0

    def add(self, outcome: str | int, lines: int = 1) -> None:
        self.counts[outcome] += lines

    def render(self) -> str:
        width = max(len(label) for _, label in OUTCOMES)
        rows = [f"  {label + ':':<{width + 1}} {self.counts[key]:>12,}" for key, label in OUTCOMES]
        return "\n".join(rows)


class Command(BaseCommand):
    help = (
        "Issue a CUSTOMER or EARNING promotion to every customer listed in a file (one id per line, or a "
        "CSV with a customerId column), in chunks that commit on their own; re-run with the same "
        "--context-id to resume after an interrupt."
    )

    def add_arguments(self, parser):
        parser.add_argument("promotion_id", help="The promotion's 24-hex id.")
        parser.add_argument("--customers", required=True, metavar="FILE", help="The customer file.")
        parser.add_argument(
            "--context-id",
            required=True,
            help="Identifies this issuance (issueBulk's contextId); re-use it to resume.",
        )
        parser.add_argument("--org", type=int, help="Refuse unless the promotion belongs to this org id.")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help=f"Customers per transaction (default {DEFAULT_CHUNK_SIZE:,}, at most {MAX_CHUNK_SIZE:,}).",
        )
        parser.add_argument(
            "--rejects",
            metavar="FILE",
            help=(
                "Where to write the lines not issued (default: FILE.PROMOTION_ID.CONTEXT_ID.rejects.csv; "
                "none when every line is issued)."
            ),
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        promotion, context_id = self._checked(options)
        path = options["customers"]
        rejects_path = options["rejects"] or default_rejects_path(path, promotion.pk, context_id)
        source, rejects = self._opened(path, rejects_path)
        summary = Summary()

        def reject(item: Reject) -> None:
            summary.add(item.code if item.code == MALFORMED else _outcome_of(item.code))
            rejects.writerow([item.line, item.value, item.code, item.reason])

        issue = _ChunkIssuer(promotion, context_id, os.path.basename(path), summary, reject)
        interrupted = False
        try:
            with source, rejects:
                self._issue_in_chunks(source, path, issue, reject, options)
        except KeyboardInterrupt:
            interrupted = True
        except PromotionError as exc:
            # The promotion stopped being issuable during the run (ended, deactivated, org cap).
            self._report(promotion, context_id, path, summary, rejects.rows, rejects_path)
            raise CommandError(
                f"Stopped: promotion {promotion.pk} cannot be issued any more: {exc.code} {exc.message}. "
                "The chunks counted above are committed."
            ) from exc
        finally:
            rejects.close()

        self._report(promotion, context_id, path, summary, rejects.rows, rejects_path)
        if interrupted:
            raise CommandError(
                "Interrupted: the chunks counted above are committed. Run the same command again (same "
                "--context-id) to issue the rest.",
                returncode=130,
            )
        if not summary.lines and not rejects.rows:
            raise CommandError(f"{path} holds no customer ids.")

    def _checked(self, options) -> tuple[Promotion, str]:
        """The options checked, and the promotion, which must be issuable now."""
        chunk_size = options["chunk_size"]
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise CommandError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE:,}.")
        context_id = options["context_id"]
        if not context_id.strip() or len(context_id) > CONTEXT_ID_MAX_LENGTH:
            raise CommandError(f"--context-id must be 1 to {CONTEXT_ID_MAX_LENGTH} characters.")
        promotion = self._promotion(options["promotion_id"], options["org"])
        try:
            earned_promotions_issue_check(promotion=promotion)
        except PromotionError as exc:
            raise CommandError(
                f"Promotion {promotion.pk} cannot be issued: {exc.code} {exc.message}"
            ) from exc
        return promotion, context_id

    def _opened(self, path: str, rejects_path: str):
        """The customer file open for reading and the rejects file for writing, or a CommandError."""
        if os.path.realpath(rejects_path) == os.path.realpath(path):
            raise CommandError("--rejects must not be the customer file itself.")
        try:
            source = open(path, encoding="utf-8-sig", errors="replace", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        try:
            rejects = CsvReportFile(rejects_path, ["line", "value", "code", "reason"])
        except OSError as exc:
            source.close()
            raise CommandError(f"Cannot write the rejects file {rejects_path}: {exc.strerror}.") from exc
        return source, rejects

    def _issue_in_chunks(self, source, path: str, issue: _ChunkIssuer, reject, options) -> None:
        """Reads the customer ids and issues them `--chunk-size` at a time, each chunk committed."""
        # The bar counts lines (one cheap pass over the file first), so it shows customers/s.
        with tqdm(
            total=_line_count(path),
            unit=" lines",
            unit_scale=True,
            desc="issuing",
            disable=True if options["no_progress"] else None,
        ) as progress:
            chunk: list[tuple[int, int]] = []
            for item in customer_ids_read(source, reject):
                chunk.append(item)
                if len(chunk) >= options["chunk_size"]:
                    issue(chunk)
                    progress.update(chunk[-1][0] - progress.n)
                    chunk = []
            if chunk:
                issue(chunk)
            progress.update(progress.total - progress.n)

    def _promotion(self, promotion_id: str, org_id: int | None) -> Promotion:
        promotions = Promotion.objects.select_related("org")
        if org_id is not None:
            org = Organization.objects.filter(pk=org_id).first()
            if org is None:
                raise CommandError(f"Organization {org_id} does not exist.")
            promotions = promotions.for_org(org)
        promotion = promotions.filter(pk=promotion_id).first()
        if promotion is None:
            where = f" in org {org_id}" if org_id is not None else ""
            raise CommandError(f"Promotion {promotion_id} not found{where}.")
        return promotion

    def _report(self, promotion, context_id, path, summary, rejected, rejects_path) -> None:
        self.stdout.write(
            f"Promotion {promotion.pk} (org {promotion.org_id}), contextId {context_id!r}, from {path}:"
        )
        self.stdout.write(summary.render())
        if rejected:
            self.stdout.write(f"  {rejected:,} line(s) not issued are listed in {rejects_path}")


def default_rejects_path(path: str, promotion_id: str, context_id: str) -> str:
    """`FILE.PROMOTION_ID.CONTEXT_ID.rejects.csv`: one report per issuance, so runs issuing several
    promotions from one customer file at once never share one. A contextId that is not a plain file
    name (characters other than letters, digits, `.`, `_`, `-`, or over 64 characters) is written
    shortened and made safe, with a digest of the whole of it so two such contextIds still differ."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", context_id)[:64]
    if name != context_id:
        name = f"{name}-{hashlib.sha256(context_id.encode()).hexdigest()[:10]}"
    return f"{path}.{promotion_id}.{name}.rejects.csv"


def _line_count(path: str) -> int:
    """Newlines in the file (plus a last unterminated line), read in blocks: constant memory."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _outcome_of(code: int) -> str | int:
    return (
        code
        if code in (ErrorCode.CUSTOMER_FETCH_FAILED, ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED)
        else "other"
    )


class _ChunkIssuer:
    """Issues one chunk of (line, customer id) and counts each line's outcome."""

    def __init__(self, promotion, context_id, file_name, summary: Summary, reject):
        self.promotion = promotion
        self.context_id = context_id
        self.file_name = file_name
        self.summary = summary
        self.reject = reject
        self.actor = Actor.system("issue_promotion")

    def __call__(self, chunk: list[tuple[int, int]]) -> None:
        outcome = earned_promotions_issue(
            promotion=self.promotion,
            customer_ids=[customer_id for _, customer_id in chunk],
            context_id=self.context_id,
            actor=self.actor,
            instances=False,
            audit_data={
                "source": "issue_promotion",
                "file": self.file_name,
                "lines": [chunk[0][0], chunk[-1][0]],
            },
        )
        errors = {error["customerId"]: error for error in outcome.errors}
        created = set(outcome.created_ids)
        for line, customer_id in chunk:
            self.summary.lines += 1
            error = errors.get(customer_id)
            if error is not None:
                self.reject(Reject(line, str(customer_id), error["code"], error["message"]))
            elif customer_id in created:
                # A customer listed twice is issued once; the later line finds it held.
                created.discard(customer_id)
                self.summary.add("issued")
            else:
                self.summary.add("held")
