"""Real concurrency for tests: threads released together, each with its own client and connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient

from tests.conftest import basic_auth
from tests.factories import ApiClientFactory


def run_concurrently(count: int, call: Callable[[APIClient, int], Any], *, org) -> list[Any]:
    """Run `call(api, index)` in `count` threads released by one barrier; results in index order.

    Each thread authenticates as the same write-access API client of `org` and closes its own
    database connection, so every request runs in its own real transaction.
    """
    client = ApiClientFactory(org=org)
    auth = basic_auth(client.username, client.plain_secret)
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=auth)
            barrier.wait()
            results[index] = call(api, index)
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results
