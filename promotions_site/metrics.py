"""Prometheus metrics, served at `/metrics` (prometheus_client).

- `http_request_duration_seconds{route, method, status}`: a latency histogram per route, where the
  route is the URL pattern's name (`redemption-create`, `admin:index`), never the raw path, so ids
  do not multiply the series (`unmatched` for a URL that matches nothing).
- `promotions_issued_total{type}`, `promotions_earned_total{type}`, `promotions_redeemed_total`,
  `promotions_reversed_total`: counted by the services when their transaction commits
  (`transaction.on_commit`), so a rolled-back write or a replay counts nothing.
- `promotions_bulk_job_items_processed_total{kind, outcome}`: bulk job items done or failed, counted
  as each chunk commits.
- `promotions_bulk_jobs{status}` and `promotions_bulk_job_items{job, org, kind, state}` (pending and
  running jobs only): gauges read from the database at scrape time, so they are right whichever
  process (web worker, Celery worker) moved the job (`wallets.metrics`, added by the wallets app
  through `app_collector_register`).

Several processes (gunicorn workers, Celery workers on the same host): set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory shared by them, before they start; each process
writes its samples there and `/metrics` adds them up (prometheus_client's multiprocess mode; the
gunicorn config `promotions_site.gunicorn_conf` removes the files of a worker that exits).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from promotions_site.errors import ErrorCode, error_response

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to returning its response, per URL pattern name.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ISSUED = Counter(
    "promotions_issued", "Promotion instances issued (issueBulk, bulk jobs, v2 issue), by type.", ["type"]
)
EARNED = Counter(
    "promotions_earned", "Promotion instances earned (earn, earn/bulk, bulk jobs), by type.", ["type"]
)
REDEEMED = Counter("promotions_redeemed", "Redemption transactions recorded (replays not counted).")
REVERSED = Counter(
    "promotions_reversed", "Redemption transactions reversed (repeated reversals not counted)."
)
BULK_JOB_ITEMS_PROCESSED = Counter(
    "promotions_bulk_job_items_processed",
    "Bulk job items processed by chunks, by outcome.",
    ["kind", "outcome"],
)

# Promo-code guessing (promotions/code_guard.py): counted at once, not on commit (the counters they
# mirror live in the cache, outside any transaction).
CODE_GUESS_FAILURES = Counter(
    "promotions_code_guess_failures",
    "Promo codes looked up that the org does not have (GET code, link), by who is counted.",
    ["scope"],
)
CODE_GUESS_REFUSED = Counter(
    "promotions_code_guess_refused",
    "Calls refused (429) because too many promo-code look-ups failed, by who is locked out.",
    ["scope"],
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name (with its namespace), its pattern when unnamed, `unmatched` when none."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name if match.url_name else (match.route or "unmatched")


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_LATENCY.labels(route, method if method in _METHODS else "other", str(status)).observe(seconds)


def _count_on_commit(counter, amount: int, *labels: str) -> None:
    if amount > 0:
        child = counter.labels(*labels) if labels else counter
        transaction.on_commit(lambda: child.inc(amount))


def issued_count(amount: int, *, promotion_type: str) -> None:
    """Count `amount` issued instances once the caller's transaction commits."""
    _count_on_commit(ISSUED, amount, promotion_type)


def earned_count(amount: int, *, promotion_type: str) -> None:
    _count_on_commit(EARNED, amount, promotion_type)


def redeemed_count() -> None:
    _count_on_commit(REDEEMED, 1)


def reversed_count() -> None:
    _count_on_commit(REVERSED, 1)


def bulk_job_items_count(*, kind: str, done: int, failed: int) -> None:
    _count_on_commit(BULK_JOB_ITEMS_PROCESSED, done, kind, "done")
    _count_on_commit(BULK_JOB_ITEMS_PROCESSED, failed, kind, "failed")


def code_guess_failures_count(amount: int, *, scope: str) -> None:
    if amount > 0:
        CODE_GUESS_FAILURES.labels(scope).inc(amount)


def code_guess_refused_count(*, scope: str) -> None:
    CODE_GUESS_REFUSED.labels(scope).inc()


# --- Scrape ---------------------------------------------------------------------------------------


# Gauges read from an app's own tables at scrape time: each app adds its collectors in its
# `AppConfig.ready`, so the site serves them without knowing any domain model.
_app_collectors: list[Collector] = []


def app_collector_register(collector: Collector) -> None:
    """Serve `collector` at every scrape, beside this process's (or the processes') own metrics."""
    if collector not in _app_collectors:
        _app_collectors.append(collector)


class _ProcessRegistry(Collector):
    """This process's own metrics (single-process mode)."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    for collector in _app_collectors:
        registry.register(collector)
    return registry


def _client_allowed(request: HttpRequest) -> str | None:
    """None when the scraper may read the metrics, else why not (for the 401/403 answer)."""
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not networks and not settings.DEBUG:
        return "forbidden"  # closed by default in production: choose a token or networks
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return "forbidden"
        if not any(address in ipaddress.ip_network(network, strict=False) for network in networks):
            return "forbidden"
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
            return "unauthorized"
    return None


@csrf_exempt
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: the Prometheus text format, for a scraper with the token or from an allowed network."""
    if request.method not in ("GET", "HEAD"):
        code = ErrorCode.METHOD_NOT_ALLOWED
        return error_response(request.path, code.http_status, [{"code": int(code), "message": code.message}])
    refusal = _client_allowed(request)
    if refusal == "unauthorized":
        code = ErrorCode.UNAUTHORIZED
        return error_response(
            request.path,
            code.http_status,
            [{"code": int(code), "message": "Send the metrics token as Authorization: Bearer <token>."}],
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if refusal:
        code = ErrorCode.FORBIDDEN
        return error_response(
            request.path,
            code.http_status,
            [{"code": int(code), "message": "Metrics are not open to this client."}],
        )
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
