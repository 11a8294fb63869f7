"""Audit events are append-only, enforced by the database: UPDATE, DELETE and TRUNCATE of the table raise.

Python-level guards (the read-only admin, no service that edits an event) protect against the app's
own code paths; these triggers also stop a raw query, a shell or a future bug. On PostgreSQL a row
trigger refuses UPDATE and DELETE and a statement trigger refuses TRUNCATE (also a `TRUNCATE ...
CASCADE` from another table), raising SQLSTATE 42501 (insufficient_privilege, Django's
ProgrammingError). SQLite has no TRUNCATE; its triggers `RAISE(ABORT)` on UPDATE and DELETE
(sqlite3 reports them as IntegrityError).

The table's owner can still drop or disable the triggers (as with any trigger); a deployment that
wants the guarantee against its own database login too runs the app under a role that does not own
the table. The test suite empties the table between transactional tests with the triggers disabled
for that one statement (tests/conftest.py), which is the only place that does.
"""

from django.db import migrations

TABLE = "promotions_auditevent"

POSTGRES_CREATE = [
    f"""
    CREATE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{TABLE} is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()
    """,
]
POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update_delete ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]

SQLITE_CREATE = [
    f"""
    CREATE TRIGGER {TABLE}_no_{operation.lower()} BEFORE {operation} ON {TABLE}
    BEGIN
        SELECT RAISE(ABORT, '{TABLE} is append-only: {operation} is not allowed');
    END
    """
    for operation in ("UPDATE", "DELETE")
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_{operation}" for operation in ("update", "delete")]

STATEMENTS = {
    "postgresql": (POSTGRES_CREATE, POSTGRES_DROP),
    "sqlite": (SQLITE_CREATE, SQLITE_DROP),
}


def _run(schema_editor, which: int) -> None:
    # Another database (none is supported today) gets no triggers rather than a failed migration.
    for statement in STATEMENTS.get(schema_editor.connection.vendor, ([], []))[which]:
        schema_editor.execute(statement, params=None)  # None: the SQL holds a literal `%`


def triggers_create(apps, schema_editor):
    _run(schema_editor, 0)


def triggers_drop(apps, schema_editor):
    _run(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [("promotions", "0003_idempotency_key")]

    operations = [migrations.RunPython(triggers_create, triggers_drop, elidable=False)]
