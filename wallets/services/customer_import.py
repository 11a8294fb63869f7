"""Importing customers from a file (the import_customers command).

A file is imported in chunks, each in its own transaction. Within a chunk the rows are decided in
file order, each against the customers as the chunk found them plus the effect of the chunk's
earlier rows; the customers the file's earlier chunks wrote are remembered in a TEMP table of the
session (`_IMPORT_SEEN`: customer id -> line), so "the first occurrence wins" holds across chunks
in constant memory. Preparing a chunk (checking and normalising its rows) touches no database, so
the command prepares the next chunk while this one is written.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization
from wallets.identifiers import SOURCES, email_normalize, mobile_normalize
from wallets.models import Customer
from wallets.services._sql import copy_text, on_postgres

CUSTOMER_IMPORT_COLUMNS = ("customerId", "mobile", "email", "externalId", "firstName", "lastName", "source")
CUSTOMER_IMPORT_DEFAULT_SOURCE = "INSTORE"
_IMPORT_SEEN = "wallets_customer_import_seen"
_IMPORT_STAGE = "wallets_customer_import_stage"
_IMPORT_IDENTIFIERS = ("mobile", "email", "externalId")
_IMPORT_FIELDS = ("mobile", "email", "external_id", "first_name", "last_name", "source")
_IMPORT_SOURCES = frozenset(SOURCES)
_IMPORT_SQLITE_BATCH = 500  # values per `IN (...)`: SQLite allows 999 variables per statement
_IMPORT_ATTEMPTS = 3


class CustomerImportRow(NamedTuple):
    """One data row of an import file: its line number and its seven values as written in the file,
    in CUSTOMER_IMPORT_COLUMNS order."""

    line: int
    values: tuple[str, ...]


class CustomerImportReject(NamedTuple):
    """A row that was not imported: its line, its values as written in the file, and why."""

    line: int
    values: tuple[str, ...]
    reason: str


class _ParsedRow(NamedTuple):
    line: int
    values: tuple[str, ...]
    customer_id: int | None
    # mobile, email, external_id (None when absent), first_name, last_name, source ("" when absent)
    stored: tuple


@dataclass
class CustomerImportChunk:
    """A chunk's rows checked and normalised (`customers_import_prepare`), ready to be written.

    `alone`: rows without customerId whose identifiers no other row of the chunk has (new customers
    unless the database says otherwise); `rest`: the other well-formed rows; both in file order.
    """

    first_line: int
    last_line: int
    alone: list[_ParsedRow]
    rest: list[_ParsedRow]
    rejects: list[CustomerImportReject]
    # PostgreSQL: the rows `alone` (line, then the stored values, source defaulted) as COPY text,
    # formatted here, off the thread that waits for the database
    alone_copy: str = ""


@dataclass
class ChunkOutcome:
    """What one chunk did: rows inserted, updated (something changed), unchanged, and the rejects."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[CustomerImportReject] = field(default_factory=list)


@dataclass
class CustomerImport:
    """One file's import into `org`; `label` (the file name) goes into the audit events.
    `expect_new`: the last chunk met no existing customer (see `_import_chunk_write`)."""

    org: Organization
    actor: Actor
    label: str = ""
    expect_new: bool = True


def customers_import_connection_check() -> None:
    """ImproperlyConfigured behind a transaction-mode pooler (`DATABASE_POOLER=transaction`): the
    import's TEMP tables live as long as the session, across the chunks' transactions, and there each
    transaction may run on another server connection (one that lacks them, or holds another
    import's). The import connects to PostgreSQL directly or through a session-mode pool."""
    if settings.DATABASE_POOLER == "transaction":
        raise ImproperlyConfigured(
            "The customer import keeps TEMP tables across transactions: run it with a DATABASE_URL to "
            "PostgreSQL directly or to a session-mode pool, and DATABASE_POOLER unset."
        )


@contextlib.contextmanager
def customers_import(*, org: Organization, actor: Actor, label: str = "") -> Iterator[CustomerImport]:
    """Open the import of one file: creates the session's TEMP tables, drops them at the end.

    Call outside a transaction (each chunk commits on its own) and pass every chunk of the file, in
    file order, to `customers_import_chunk`. ImproperlyConfigured behind a transaction-mode pooler
    (`customers_import_connection_check`).
    """
    customers_import_connection_check()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_SEEN}")
        cursor.execute(
            f"CREATE TEMP TABLE {_IMPORT_SEEN} (customer_id bigint PRIMARY KEY, line bigint NOT NULL)"
        )
        if on_postgres():
            columns = ", ".join(
                f"{f.column} {f.db_type(connection)}"
                for f in (Customer._meta.get_field(name) for name in _IMPORT_FIELDS)
            )
            cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_STAGE}")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Customer._meta.db_table])
            # A row copied in without an id draws a customer id, in the server, as COPY reads it.
            cursor.execute(
                f"CREATE TEMP TABLE {_IMPORT_STAGE} (id bigint NOT NULL DEFAULT nextval(%s::regclass),"
                f" line bigint NOT NULL, action \"char\" NOT NULL DEFAULT 'I',"
                f" release boolean NOT NULL DEFAULT false, {columns})",
                [cursor.fetchone()[0]],
            )
    try:
        yield CustomerImport(org=org, actor=actor, label=label)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_SEEN}")
            if on_postgres():
                cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_STAGE}")


def customers_import_prepare(
    rows: list[CustomerImportRow], *, new_rows_text: bool = True
) -> CustomerImportChunk:
    """Check and normalise a chunk of rows. No database access: safe in another thread.

    A row is `malformed: ...` when its customerId is not a positive integer, its mobile not 8 to 15
    digits (an optional leading +), its email invalid or over 254 characters, its externalId,
    firstName or lastName over 100 characters, its source not one of Capillary's, a value holds a
    NUL character, or it has no identifier at all (no customerId, mobile, email or externalId).
    Values are trimmed and put in the customers API's spelling (`wallets.identifiers`: mobile
    digits without +, email lower-case). `new_rows_text`: on PostgreSQL, also format the rows that
    look new as COPY text (worth it while the import meets new customers).
    """
    parsed: list[_ParsedRow] = []
    rejects: list[CustomerImportReject] = []
    for row in rows:
        result = _import_row_parse(row)
        if isinstance(result, str):
            rejects.append(CustomerImportReject(row.line, row.values, result))
        else:
            parsed.append(result)
    counts: list[dict] = [{}, {}, {}]
    for row in parsed:
        for k, value in enumerate(row.stored[:3]):
            if value is not None:
                counts[k][value] = counts[k].get(value, 0) + 1
    alone, rest = [], []
    for row in parsed:
        mobile, email, external_id = row.stored[:3]
        if (
            row.customer_id is None
            and (mobile is None or counts[0][mobile] == 1)
            and (email is None or counts[1][email] == 1)
            and (external_id is None or counts[2][external_id] == 1)
        ):
            alone.append(row)
        else:
            rest.append(row)
    lines = [row.line for row in rows] or [0]
    chunk = CustomerImportChunk(min(lines), max(lines), alone, rest, rejects)
    if new_rows_text and on_postgres():
        chunk.alone_copy = _import_new_rows_text(alone)
    return chunk


_COPY_NULL = "\\N"
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_rows(rows) -> str:
    """Rows of values as COPY text (`copy_text` for each value)."""
    return "".join(["\t".join(map(copy_text, row)) + "\n" for row in rows])


def _import_new_rows_text(rows: list[_ParsedRow]) -> str:
    """The rows as COPY text for the staging table: line, then the stored values (source defaulted)."""
    default_source, null, special = CUSTOMER_IMPORT_DEFAULT_SOURCE, _COPY_NULL, _COPY_SPECIAL.search
    lines = []
    for row in rows:
        mobile, email, external_id, first_name, last_name, source = row.stored
        source = source or default_source
        if special("".join(row.values)):  # rare: a tab, line break or backslash to escape
            lines.append(_copy_rows([(row.line, mobile, email, external_id, first_name, last_name, source)]))
        else:
            lines.append(
                f"{row.line}\t{mobile or null}\t{email or null}\t{external_id or null}\t"
                f"{first_name}\t{last_name}\t{source}\n"
            )
    return "".join(lines)


def customers_import_chunk(*, run: CustomerImport, chunk: CustomerImportChunk) -> ChunkOutcome:
    """Insert or update `run.org`'s customers from one prepared chunk of the file.

    Each well-formed row, in file order, is:
    - rejected as `customerId not in this org` (another org's customer is not in this org);
    - rejected as `duplicate identifier in the file (first at line N)` when its customerId, or the
      customer one of its identifiers points at, was already imported by an earlier row of the file
      (the first occurrence wins, whatever chunk it was in);
    - with a customerId: rejected as `identifier owned by another customer (...)` when one of its
      identifiers is another customer's; else it updates that customer;
    - without: rejected as `identifiers belong to different customers (...)` when its identifiers
      point at two or more customers; else it updates the one customer they point at, or, when they
      point at nobody, inserts a customer.
    An empty cell leaves the stored value as it is (a new customer gets no such identifier, empty
    names and source INSTORE): an import never clears a value. A customer whose values all equal
    the row's is counted unchanged and not written, so importing a file again changes nothing. An
    update may give a customer a new identifier; the old one is then free for the file's later rows.

    The chunk is one transaction, with one audit event `customer.import` when it wrote anything.
    Should a concurrent writer take an identifier between the chunk's lookup and its writes (a
    unique constraint fails), the chunk is rolled back and decided again, up to 3 times; then the
    IntegrityError propagates: this chunk is not imported, the earlier ones stay.
    """
    for attempt in range(1, _IMPORT_ATTEMPTS + 1):
        outcome = ChunkOutcome(rejects=list(chunk.rejects))
        try:
            with transaction.atomic():
                _import_chunk_write(run, chunk, outcome)
                if outcome.inserted or outcome.updated:
                    audit_event_record(
                        org=run.org,
                        actor=run.actor,
                        action="customer.import",
                        object_type="Customer",
                        data={
                            "file": run.label,
                            "firstLine": chunk.first_line,
                            "lastLine": chunk.last_line,
                            "inserted": outcome.inserted,
                            "updated": outcome.updated,
                            "unchanged": outcome.unchanged,
                            "rejected": len(outcome.rejects),
                        },
                    )
        except IntegrityError:
            run.expect_new = False
            if attempt == _IMPORT_ATTEMPTS:
                raise
            continue
        break
    outcome.rejects.sort(key=lambda reject: reject.line)
    return outcome


class _EmailValidator(EmailValidator):
    """Django's email rule (the customers API's), faster on a million addresses: the patterns
    compiled up front (not behind Django's lazy proxies), and the verdict on the few thousand
    domains most addresses share remembered (a bounded cache: memory stays constant)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
    domain_regex = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)
    literal_regex = re.compile(EmailValidator.literal_regex.pattern, EmailValidator.literal_regex.flags)

    def __init__(self):
        super().__init__()
        self.validate_domain_part = functools.lru_cache(maxsize=4096)(super().validate_domain_part)


_email_validate = _EmailValidator()


def _import_row_parse(row: CustomerImportRow) -> _ParsedRow | str:
    """The row's values checked and in their stored spelling, or why it is malformed."""
    raw_id, raw_mobile, raw_email, external_id, first_name, last_name, source = row.values
    if "\x00" in "".join(row.values):
        return "malformed: contains a NUL character"
    customer_id = None
    raw_id = raw_id.strip()
    if raw_id:
        if not (raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) < 2**63):
            return "malformed: customerId must be a positive integer"
        customer_id = int(raw_id)
    mobile = None
    raw_mobile = raw_mobile.strip()
    if raw_mobile:
        mobile = mobile_normalize(raw_mobile)
        if mobile is None:
            return "malformed: mobile must be 8 to 15 digits, optionally after a leading +"
    email = None
    raw_email = raw_email.strip()
    if raw_email:
        if len(raw_email) > 254:
            return "malformed: email longer than 254 characters"
        try:
            _email_validate(raw_email)
        except DjangoValidationError:
            return "malformed: email is not a valid address"
        email = email_normalize(raw_email)
    external_id, first_name, last_name = external_id.strip(), first_name.strip(), last_name.strip()
    for name, value in (("externalId", external_id), ("firstName", first_name), ("lastName", last_name)):
        if len(value) > 100:
            return f"malformed: {name} longer than 100 characters"
    source = source.strip()
    if source and source not in _IMPORT_SOURCES:
        return f"malformed: source must be one of {', '.join(SOURCES)}"
    if customer_id is None and not (mobile or email or external_id):
        return "malformed: no identifier (customerId, mobile, email or externalId)"
    stored = (mobile, email, external_id or None, first_name, last_name, source)
    return _ParsedRow(row.line, row.values, customer_id, stored)


def _import_chunk_write(run: CustomerImport, chunk: CustomerImportChunk, outcome: ChunkOutcome) -> None:
    """Decide every row and write; fills `outcome`. Inside the chunk's transaction.

    The rows `alone` are new customers unless an existing customer has one of their identifiers.
    While that keeps being true (`run.expect_new`) they are written straight away, the unique
    constraints doing the lookup; when one fails, that insert is undone (a savepoint) and every row
    takes the general path: one lookup of all the chunk's ids and identifiers, the decisions in
    file order (`_import_plan`), then set-based writes. Either way each row is decided alike.
    """
    rest = chunk.rest
    if chunk.alone and run.expect_new:
        try:
            with transaction.atomic():
                outcome.inserted += _import_insert_new(run.org, chunk)
        except IntegrityError:
            run.expect_new = False
            rest = sorted([*chunk.alone, *chunk.rest], key=lambda row: row.line)
    elif chunk.alone:
        rest = sorted([*chunk.alone, *chunk.rest], key=lambda row: row.line)
    if not rest:
        return
    ids = {row.customer_id for row in rest if row.customer_id is not None}
    values = [{row.stored[k] for row in rest if row.stored[k] is not None} for k in range(3)]
    if on_postgres():
        known, seen = _import_lookup_postgres(run.org, ids, values)
    else:
        known, seen = _import_lookup_orm(run.org, ids, values)
    run.expect_new = not known
    plan = _import_plan(rest, known, seen, outcome.rejects)
    if on_postgres():
        _import_write_postgres(run.org, plan, outcome)
    else:
        _import_write_orm(run.org, plan, outcome)
    outcome.unchanged += len(plan.unchanged)


def _import_insert_new(org: Organization, chunk: CustomerImportChunk) -> int:
    """Insert one new customer per row `alone` and remember them as imported; IntegrityError when
    an identifier is taken.

    PostgreSQL: the text `customers_import_prepare` formatted goes into the staging table with one
    COPY (each row drawing its id there), then into the customers and the imported customers with
    one statement each, so this thread spends no time per row.
    """
    rows = chunk.alone
    now = timezone.now()
    if not on_postgres():
        created = Customer.objects.bulk_create(
            [Customer(org=org, created_at=now, **_import_values(row.stored)) for row in rows],
            batch_size=_IMPORT_SQLITE_BATCH // len(_IMPORT_FIELDS),
        )
        _import_seen_add([(customer.pk, row.line) for customer, row in zip(created, rows, strict=True)])
        return len(created)
    table = Customer._meta.db_table
    columns = ", ".join(Customer._meta.get_field(name).column for name in _IMPORT_FIELDS)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"TRUNCATE {_IMPORT_STAGE}")
        with cursor.copy(f"COPY {_IMPORT_STAGE} (line, {columns}) FROM STDIN") as copy_in:
            copy_in.write(chunk.alone_copy or _import_new_rows_text(rows))
        cursor.execute(
            f"INSERT INTO {table} (id, org_id, created_at, {columns})"
            f" SELECT id, %s, %s, {columns} FROM {_IMPORT_STAGE}",
            [org.pk, now],
        )
        inserted = cursor.rowcount
        cursor.execute(f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) SELECT id, line FROM {_IMPORT_STAGE}")
    return inserted


def _import_values(stored: tuple) -> dict:
    values = dict(zip(_IMPORT_FIELDS, stored, strict=True))
    values["source"] = values["source"] or CUSTOMER_IMPORT_DEFAULT_SOURCE
    return values


def _import_seen_add(rows: list[tuple[int, int]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) VALUES (%s, %s)", rows)


@dataclass
class _ImportPlan:
    """A chunk's decisions. New customers' ids are negative placeholders until written."""

    inserts: list[tuple[int, int, tuple]] = field(default_factory=list)  # (placeholder, line, stored)
    updates: list[tuple[int, int, tuple]] = field(default_factory=list)  # (id, line, stored)
    unchanged: list[tuple[int, int]] = field(default_factory=list)  # (id, line)
    release: set[int] = field(default_factory=set)  # updated ids whose old identifier a later update takes


def _import_plan(
    rows: list[_ParsedRow], known: dict[int, tuple], seen: dict[int, int], rejects: list
) -> _ImportPlan:
    """Decide every row in file order (the rules: customers_import_chunk).

    `known`: the org's customers the rows name (by id or identifier), id -> stored values;
    `seen`: those of them the file's earlier chunks imported, id -> line. Both are updated as the
    rows are decided, so each row sees the effect of the rows before it.
    """
    plan = _ImportPlan()
    owners: list[dict] = [{}, {}, {}]  # per identifier: value -> customer id
    for customer_id, stored in known.items():
        for k in range(3):
            if stored[k] is not None:
                owners[k][stored[k]] = customer_id
    released: list[dict] = [{}, {}, {}]  # per identifier: value -> the updated customer that gave it up
    placeholder = 0
    for row in rows:
        target, reason = _import_row_target(row, known, seen, owners)
        if reason:
            rejects.append(CustomerImportReject(row.line, row.values, reason))
            continue
        if target is None:
            placeholder -= 1
            target = placeholder
            stored = (*row.stored[:5], row.stored[5] or CUSTOMER_IMPORT_DEFAULT_SOURCE)
            plan.inserts.append((target, row.line, stored))
        else:
            stored = _import_row_merge(plan, target, row, known[target], owners, released)
        for k in range(3):
            value = stored[k]
            if value is not None and owners[k].get(value) != target:
                if target > 0 and value in released[k]:
                    plan.release.add(released[k][value])
                owners[k][value] = target
        known[target] = stored
        seen[target] = row.line
    return plan


def _import_row_target(
    row: _ParsedRow, known: dict[int, tuple], seen: dict[int, int], owners: list[dict]
) -> tuple[int | None, str]:
    """The customer a row updates (None: a new one), or why the row is rejected."""
    customer_id, stored = row.customer_id, row.stored
    if customer_id is not None and customer_id not in known:
        return None, "customerId not in this org"
    owner_of = [owners[k].get(stored[k]) if stored[k] is not None else None for k in range(3)]
    earlier = [seen[c] for c in (customer_id, *owner_of) if c is not None and c in seen]
    if earlier:
        return None, f"duplicate identifier in the file (first at line {min(earlier)})"
    if customer_id is not None:
        others = [
            f"{_IMPORT_IDENTIFIERS[k]}: customer {owner}"
            for k, owner in enumerate(owner_of)
            if owner is not None and owner != customer_id
        ]
        if others:
            return None, f"identifier owned by another customer ({', '.join(others)})"
        return customer_id, ""
    matched = {owner for owner in owner_of if owner is not None}
    if len(matched) > 1:
        pointers = [
            f"{_IMPORT_IDENTIFIERS[k]}: customer {owner}"
            for k, owner in enumerate(owner_of)
            if owner is not None
        ]
        return None, f"identifiers belong to different customers ({', '.join(pointers)})"
    return (matched.pop() if matched else None), ""


def _import_row_merge(
    plan: _ImportPlan, target: int, row: _ParsedRow, current: tuple, owners: list[dict], released: list[dict]
) -> tuple:
    """An existing customer's values with the row's non-empty ones over them, planned as unchanged or
    as an update; an identifier the update replaces is freed for the later rows."""
    stored = tuple(new or old for new, old in zip(row.stored, current, strict=True))
    if stored == current:
        plan.unchanged.append((target, row.line))
    else:
        plan.updates.append((target, row.line, stored))
        for k in range(3):
            if current[k] is not None and current[k] != stored[k]:
                del owners[k][current[k]]
                released[k][current[k]] = target
    return stored


def _import_lookup_postgres(
    org: Organization, ids: set[int], values: list[set[str]]
) -> tuple[dict[int, tuple], dict[int, int]]:
    """The org's customers with one of the ids or identifier values (id -> stored values), and the
    lines of the file that already imported some of them.

    One query, each list bound as one array in binary (`%b`, on a psycopg cursor of the same
    connection: Django's cursors bind on the client, quoting 150,000 strings per chunk).
    """
    columns = ", ".join(f"c.{Customer._meta.get_field(name).column}" for name in _IMPORT_FIELDS)
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT c.id, {columns}, s.line FROM {Customer._meta.db_table} c"
            f" LEFT JOIN {_IMPORT_SEEN} s ON s.customer_id = c.id"
            " WHERE c.org_id = %b AND (c.id = ANY(%b::bigint[]) OR c.mobile = ANY(%b::varchar[])"
            " OR c.email = ANY(%b::varchar[]) OR c.external_id = ANY(%b::varchar[]))",
            [org.pk, list(ids), *(list(v) for v in values)],
        )
        rows = cursor.fetchall()
    known = {row[0]: row[1:7] for row in rows}
    seen = {row[0]: row[7] for row in rows if row[7] is not None}
    return known, seen


def _import_lookup_orm(
    org: Organization, ids: set[int], values: list[set[str]]
) -> tuple[dict[int, tuple], dict[int, int]]:
    """`_import_lookup_postgres` through the ORM, in batches of values."""
    known: dict[int, tuple] = {}
    customers = Customer.objects.for_org(org)
    for lookup, wanted in zip(("pk", *_IMPORT_FIELDS[:3]), (ids, *values), strict=True):
        wanted = list(wanted)
        for start in range(0, len(wanted), _IMPORT_SQLITE_BATCH):
            batch = wanted[start : start + _IMPORT_SQLITE_BATCH]
            for row in customers.filter(**{f"{lookup}__in": batch}).values_list("pk", *_IMPORT_FIELDS):
                known[row[0]] = row[1:]
    seen: dict[int, int] = {}
    found = list(known)
    with connection.cursor() as cursor:
        for start in range(0, len(found), _IMPORT_SQLITE_BATCH):
            batch = found[start : start + _IMPORT_SQLITE_BATCH]
            cursor.execute(
                f"SELECT customer_id, line FROM {_IMPORT_SEEN} WHERE customer_id IN ({', '.join(['%s'] * len(batch))})",
                batch,
            )
            seen.update(cursor.fetchall())
    return known, seen


def _import_write_postgres(org: Organization, plan: _ImportPlan, outcome: ChunkOutcome) -> None:
    """Write the plan: the inserted and updated rows into the staging table (COPY; new rows draw
    their ids there), then set-based statements; the unchanged rows straight into the imported
    customers."""
    table = Customer._meta.db_table
    columns = [Customer._meta.get_field(name).column for name in _IMPORT_FIELDS]
    listed = ", ".join(columns)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"TRUNCATE {_IMPORT_STAGE}")
        if plan.inserts:
            with cursor.copy(f"COPY {_IMPORT_STAGE} (line, {listed}) FROM STDIN") as copy_in:
                copy_in.write(_copy_rows((line, *stored) for _, line, stored in plan.inserts))
        if plan.updates:
            with cursor.copy(
                f"COPY {_IMPORT_STAGE} (id, line, action, release, {listed}) FROM STDIN"
            ) as copy_in:
                copy_in.write(
                    _copy_rows(
                        (customer_id, line, "U", "t" if customer_id in plan.release else "f", *stored)
                        for customer_id, line, stored in plan.updates
                    )
                )
        if plan.release:
            # Identifiers are unique row by row, not at the statement's end: a customer whose old
            # identifier another customer of the chunk takes lets go of it first.
            released = ", ".join(
                f"{col} = CASE WHEN c.{col} = s.{col} THEN c.{col} END" for col in columns[:3]
            )
            cursor.execute(
                f"UPDATE {table} c SET {released} FROM {_IMPORT_STAGE} s WHERE s.release AND c.id = s.id"
            )
        if plan.updates:
            assignments = ", ".join(f"{col} = s.{col}" for col in columns)
            current = ", ".join(f"c.{col}" for col in columns)
            wanted = ", ".join(f"s.{col}" for col in columns)
            cursor.execute(
                f"UPDATE {table} c SET {assignments} FROM {_IMPORT_STAGE} s"
                f" WHERE s.action = 'U' AND c.id = s.id AND c.org_id = %s"
                f" AND ({current}) IS DISTINCT FROM ({wanted})",
                [org.pk],
            )
            outcome.updated = cursor.rowcount
            outcome.unchanged += len(plan.updates) - cursor.rowcount
        if plan.inserts:
            cursor.execute(
                f"INSERT INTO {table} (id, org_id, created_at, {listed})"
                f" SELECT id, %s, %s, {listed} FROM {_IMPORT_STAGE} WHERE action = 'I'",
                [org.pk, timezone.now()],
            )
            outcome.inserted += cursor.rowcount
        if plan.inserts or plan.updates:
            cursor.execute(
                f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) SELECT id, line FROM {_IMPORT_STAGE}"
            )
        if plan.unchanged:
            with cursor.copy(f"COPY {_IMPORT_SEEN} (customer_id, line) FROM STDIN") as copy_in:
                copy_in.write("".join([f"{customer_id}\t{line}\n" for customer_id, line in plan.unchanged]))


def _import_write_orm(org: Organization, plan: _ImportPlan, outcome: ChunkOutcome) -> None:
    """`_import_write_postgres` through the ORM: bulk_update and bulk_create in batches."""
    batch_size = _IMPORT_SQLITE_BATCH // len(_IMPORT_FIELDS)
    if plan.release:
        stale = Customer.objects.in_bulk(plan.release)
        for customer_id, _, stored in plan.updates:
            if customer_id in plan.release:
                customer = stale[customer_id]
                for name, value in zip(_IMPORT_FIELDS[:3], stored[:3], strict=True):
                    if getattr(customer, name) != value:
                        setattr(customer, name, None)
        Customer.objects.bulk_update(stale.values(), _IMPORT_FIELDS[:3], batch_size=batch_size)
    Customer.objects.bulk_update(
        [
            Customer(pk=customer_id, **dict(zip(_IMPORT_FIELDS, stored, strict=True)))
            for customer_id, _, stored in plan.updates
        ],
        _IMPORT_FIELDS,
        batch_size=batch_size,
    )
    outcome.updated = len(plan.updates)
    created = Customer.objects.bulk_create(
        [
            Customer(org=org, **dict(zip(_IMPORT_FIELDS, stored, strict=True)))
            for _, _, stored in plan.inserts
        ],
        batch_size=batch_size,
    )
    outcome.inserted += len(created)
    seen = [(customer.pk, line) for customer, (_, line, _) in zip(created, plan.inserts, strict=True)]
    seen += [(customer_id, line) for customer_id, line, _ in plan.updates]
    seen += plan.unchanged
    _import_seen_add(seen)
