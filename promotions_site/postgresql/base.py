"""Django's PostgreSQL backend, with the health check of a persistent connection only after it sat idle.

Django's `CONN_HEALTH_CHECKS` runs `SELECT 1` before the first query of every request: a round trip
per request, several per cent of a redemption's cost. A connection a request of this process used less
than `IDLE_SECONDS` ago (`DB_CHECK_IDLE_SECONDS`, default 5) is taken as alive; one idle longer (a database restart or failover may have
closed it meanwhile) is checked first, as Django checks it. A connection that fails anyway answers the
request's JSON 503 (`Retry-After: 1`, nothing written) and is dropped; the next request reconnects.

`server_bound_cursor()`: a cursor whose parameters travel apart from the statement (PostgreSQL's
extended protocol) instead of being quoted into its text by the client, as Django's cursors do; for a
statement with a large parameter (an evaluation's 50-line request), where quoting costs the worker more
than the statement. Not prepared, unless asked: `server_bound_cursor(prepared=True)` prepares its
statement on the connection at its first run (PostgreSQL then neither parses nor plans it again on
that connection), for the hot paths' statements (the redemption's call, evaluate's two). A named
prepared statement outlives the transaction, which PgBouncer's transaction mode does not allow: behind
it (`DATABASE_POOLER=transaction`) nothing is prepared.
"""

import os
import time
from contextlib import contextmanager

from django.conf import settings
from django.db.backends.postgresql import base

IDLE_SECONDS = float(os.environ.get("DB_CHECK_IDLE_SECONDS", "5"))


class UnpreparedServerBindingCursor(base.ServerBindingCursor):
    """psycopg's cursor binding on the server, with automatic preparation turned off."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=False, binary=binary)


class PreparedServerBindingCursor(base.ServerBindingCursor):
    """psycopg's cursor binding on the server, preparing each statement at its first run."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class DatabaseOperations(base.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """The statement as run (Django's debug log, `CaptureQueriesContext`); for a prepared statement,
        whose text psycopg does not keep, the statement as written."""
        return super().last_executed_query(cursor, sql, params) or sql


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    last_used = 0.0  # time.monotonic() of the last cursor opened on the connection
    _bind_on_server: type[base.ServerBindingCursor] | None = None

    @contextmanager
    def server_bound_cursor(self, *, prepared: bool = False):
        pooled = settings.DATABASE_POOLER == "transaction"
        self._bind_on_server = (
            PreparedServerBindingCursor if prepared and not pooled else UnpreparedServerBindingCursor
        )
        try:
            cursor = self.cursor()
        finally:
            self._bind_on_server = None
        with cursor:
            yield cursor

    def create_cursor(self, name=None):
        if self._bind_on_server is not None and name is None:
            return self._bind_on_server(self.connection)
        return super().create_cursor(name)

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self.last_used < IDLE_SECONDS
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _cursor(self, name=None):
        cursor = super()._cursor(name)
        self.last_used = time.monotonic()
        return cursor
