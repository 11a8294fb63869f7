"""What the set-based writes share: which database they run on, and COPY's text format.

On PostgreSQL rows are written with COPY and id lists bound as one array; elsewhere (the embedded
SQLite) the ORM does the same work."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection
from psycopg.types.json import Jsonb

INSERT_BATCH = 5000  # rows per COPY write or bulk_create batch


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value) -> str:
    """A prepared value in COPY's text format: NULL as \\N, JSON as its text, times in ISO 8601."""
    if value is None:
        return "\\N"
    if isinstance(value, Jsonb):
        value = (value.dumps or json.dumps)(value.obj)
    elif isinstance(value, bool):
        value = "t" if value else "f"
    elif isinstance(value, dt.date | dt.time):
        value = value.isoformat()
    return str(value).translate(_COPY_ESCAPES)
