"""Real concurrency for tests: threads released together, each with its own client and connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import basic_auth
from tests.factories import ApiClientFactory


def run_concurrently(
    count: int, call: Callable[[APIClient, int], Any], *, org, threads: int | None = None
) -> list[Any]:
    """Run `call(api, index)` for `count` indexes in threads released by one barrier; results in index order.

    Each thread authenticates as the same write-access API client of `org` and closes its own
    database connection, so every request runs in its own real transaction. `threads` (default
    `count`) caps the threads, each then making several calls back to back: PostgreSQL's default
    100 connections cannot hold 100 threads next to the test's own.
    """
    threads = min(count, threads or count)
    client = ApiClientFactory(org=org)
    auth = basic_auth(client.username, client.plain_secret)
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * count
    failures: list[BaseException] = []

    def worker(first: int) -> None:
        try:
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=auth)
            barrier.wait()
            for index in range(first, count, threads):
                results[index] = call(api, index)
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(first,)) for first in range(threads)]
    for worker_thread in workers:
        worker_thread.start()
    for worker_thread in workers:
        worker_thread.join()
    if failures:
        raise failures[0]
    return results
