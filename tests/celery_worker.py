"""A real Celery worker for the tests: `celery worker` in a child process on the test Redis broker
(TEST_CELERY_BROKER_URL), serving the test database in production mode, and this process sending
its tasks (the bulk jobs' chunks) to it through a queue of the test's own.

    with tasks_sent_to(new_queue("test"), settings) as queue, running(CeleryWorker(log, queue=queue)):
        bulk_job_start(job=job)

The `worker` fixture (tests/conftest.py) does just that. The fault tests start, kill and restart
workers themselves, and reuse `child_env` for their app servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis
from django.conf import settings
from django.db import connection

from promotions_site.celery import app as celery_app

BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[1]


def database_url(host: str | None = None, port: int | None = None) -> str:
    """The test database's URL (optionally through another host and port, e.g. a proxy)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'])}{password}@{host or db['HOST']}:{port or db['PORT']}/{db['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    """The environment of a child process serving the test database, in production mode."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "promotions_site.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "child-process-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        # The API clients the tests create are keyed by this process's key: the child must check them so.
        "API_CLIENT_SECRET_KEY": settings.API_CLIENT_SECRET_KEY,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "INFO",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.update(overrides)
    return env


def stop_process(process: subprocess.Popen, log: Path) -> None:
    """Terminate `process` (kill it when it does not stop), then print its log for the test report."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    print(f"--- {log.name}\n{log.read_text(errors='replace')}")


@contextmanager
def running(thing):
    """Stop a server or worker whatever the test's outcome (and print its log)."""
    try:
        yield thing
    finally:
        thing.stop()


class CeleryWorker:
    """`celery worker` on `queue`, `concurrency` tasks at a time in `pool`, its output in `log`."""

    def __init__(
        self,
        log: Path,
        *,
        queue: str,
        pool: str = "threads",
        concurrency: int = 1,
        broker: str = BROKER,
        **env: str,
    ):
        self.log = log
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "promotions_site", "worker", "-l", "info",
                 "-c", str(concurrency), "-P", pool, "-Q", queue,
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=child_env(CELERY_BROKER_URL=broker, **env), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def poll(self) -> int | None:
        """None while the worker runs, its exit status once it has stopped."""
        return self.process.poll()

    def kill(self, pid: int | None = None) -> None:
        """SIGKILL the worker (or one of its pool processes): no cleanup, no acknowledgement."""
        os.kill(pid or self.process.pid, signal.SIGKILL)
        if pid is None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, self.log)


def new_queue(prefix: str) -> str:
    """A queue name no other test (nor another run on the same broker) uses."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def tasks_sent_to(queue: str, settings, broker: str = BROKER) -> Iterator[str]:
    """This process sends its Celery tasks to `queue` on `broker` (and starts every bulk job through
    it), until the block ends; then the queue is deleted. `settings` is pytest-django's fixture."""
    old = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    celery_app.conf.update(broker_url=broker, task_always_eager=False, task_default_queue=queue)
    _forget_connections()
    settings.CELERY_BROKER_URL = broker
    settings.BULK_JOBS_IN_PROCESS = "thread"
    settings.BULK_JOB_INLINE_MAX = 0
    try:
        yield queue
    finally:
        celery_app.conf.update(old)
        _forget_connections()
        redis.Redis.from_url(broker).delete(queue)


def _forget_connections() -> None:
    """Celery caches its producer pool and queue routing from the config at first use: drop them so
    a changed broker and queue apply (as a forked worker does)."""
    celery_app.close()
    celery_app.__dict__.pop("amqp", None)
