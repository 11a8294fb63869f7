"""Schemathesis against the app's own OpenAPI schema (`/api/schema/`), in-process through WSGI.

Every operation of the schema is one test: schemathesis sends the schema's examples, its coverage
cases (boundaries and each constraint violated in turn) and `FUZZ_MAX_EXAMPLES` random cases per
operation, valid and invalid (bodies, query strings, path parameters, unexpected headers), as the
write API client of a seeded org, on the real PostgreSQL test database (each request commits, as in
production). Generated ids are often swapped for the seeded org's real ones (`map_case` below), so
the requests get past the 404 and reach the rules behind it.

Checks: no 5xx; every error is JSON in the endpoint's documented envelope; status code, content type,
headers and body as the schema documents them; schema-violating requests rejected; 405 for an
undocumented method; 401 without credentials.

`test_stateful` then chains calls along the links schemathesis infers from the schema (an id a
response returns, used by the next request).

The bounded pass (`make test`, CI) is deterministic: `FUZZ_MAX_EXAMPLES` random cases per operation
(default 25), one in `FUZZ_COVERAGE_EVERY` coverage cases (default 8) and `FUZZ_STATEFUL_EXAMPLES`
scenarios (default 10). `make fuzz` is the deep pass: 1,000, every coverage case, 200 scenarios, a
fresh random seed (`FUZZ_DERANDOMIZE=0`).
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from django.test.utils import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase

from promotions_site.wsgi import application
from tests.fuzz import seed
from tests.fuzz.conftest import record_case

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# The coverage phase is deterministic but large (~1,400 cases for each promotion write): the bounded
# pass sends one in FUZZ_COVERAGE_EVERY of its cases, `make fuzz` all of them.
COVERAGE_EVERY = int(os.environ.get("FUZZ_COVERAGE_EVERY", "8"))
# Scenarios (sequences of up to 10 linked calls) of the stateful test.
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "10"))
# The bounded pass draws the same cases on every run (a CI failure reproduces); `make fuzz` explores.
DERANDOMIZE = os.environ.get("FUZZ_DERANDOMIZE", "1") == "1"


def behind_tls_proxy(environ, start_response):
    """The app as production runs it: behind a TLS-terminating proxy (no redirect to https)."""
    environ["HTTP_X_FORWARDED_PROTO"] = "https"
    return application(environ, start_response)


# The schema is loaded at collection, before pytest-django adds its test host to ALLOWED_HOSTS.
# Every request authenticates with Basic (first in the app's authenticators), so a generated token
# header would be ignored: schemathesis is told not to generate one.
CONFIG = SchemathesisConfig.from_dict({"generation": {"with-security-parameters": False}})
with override_settings(ALLOWED_HOSTS=["localhost"]):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", behind_tls_proxy, config=CONFIG)


def error_envelope(ctx, response, case) -> bool | None:
    """Every 4xx/5xx is JSON: `{"errors": [{code, message}, ...]}`, or on v2 `{"warnings", "errors"}`
    with `{status: false, code, message}` entries; nothing else at the top level, never an empty list."""
    if response.status_code < 400:
        return None

    def fail(message: str):
        raise AssertionError(f"Error not in the documented JSON envelope: [{response.status_code}] {message}")

    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        fail(f"Content-Type {content_type!r}: {response.text[:200]!r}")
    try:
        body = json.loads(response.content)
    except ValueError:
        fail(f"not JSON: {response.text[:200]!r}")
    v2 = case.path.startswith("/v2/")
    keys = {"warnings", "errors"} if v2 else {"errors"}
    if not isinstance(body, dict) or set(body) != keys or not body["errors"]:
        fail(f"body {body!r}")
    for error in body["errors"]:
        # Per-entry errors may also name their entry (revokeEarn: `promotionId`), as documented.
        expected = {"status", "code", "message"} if v2 else {"code", "message"}
        if (
            not isinstance(error, dict)
            or not expected <= set(error)
            or not isinstance(error["code"], int)
            or not isinstance(error["message"], str)
            or (v2 and error["status"] is not False)
        ):
            fail(f"error entry {error!r}")
    return True


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
    st_checks.negative_data_rejection,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.ignored_auth,
    error_envelope,
]


# --- Real ids in generated requests ----------------------------------------------------------------


PROMOTION_IDS = tuple(seed.PROMOTION_IDS.values())
STRING_ID_FIELDS = {
    "promotionId": PROMOTION_IDS,
    "earnedPromotionId": seed.EARNED_IDS,
    "transactionIdentifier": seed.TRANSACTION_IDS,
    "code": seed.PROMO_CODES,  # code/link
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class IdPicker:
    """Decides, from the generated case itself, which generated ids become seeded ones (three in four):
    a case and its replays (shrinking, a CI re-run) get the same ids."""

    def __init__(self, case):
        drawn = repr((case.path_parameters, case.query, case.body))
        self.salt = zlib.crc32(drawn.encode())

    def __call__(self, original: Any, choices: tuple) -> Any:
        draw = zlib.crc32(repr(original).encode(), self.salt)
        if draw % 4 == 0:
            return original
        chosen = choices[(draw // 4) % len(choices)]
        return str(chosen) if isinstance(original, str) else chosen

    def body(self, value: Any, v2: bool) -> Any:
        if isinstance(value, list):
            return [self.body(item, v2) for item in value]
        if not isinstance(value, dict):
            return value
        replaced = {}
        for key, item in value.items():
            if key == "customerId" and (_is_int(item) or isinstance(item, str)):
                item = self(item, seed.CUSTOMER_IDS)
            elif v2 and key == "programId" and _is_int(item):
                item = self(item, (seed.PROGRAM_ID,))
            elif v2 and key == "promotionId" and _is_int(item):
                item = self(item, (seed.LOYALTY_PROMOTION_ID,))
            elif key in STRING_ID_FIELDS and isinstance(item, str):
                item = self(item, STRING_ID_FIELDS[key])
            elif key == "earnIds" and isinstance(item, list):
                item = [
                    self(earn_id, seed.EARNED_IDS) if isinstance(earn_id, str) else earn_id
                    for earn_id in item
                ]
            else:
                item = self.body(item, v2)
            replaced[key] = item
        return replaced


@schema.hook
def map_case(context, case):
    """Swap generated ids for the seeded org's, in every part of the case generated as valid (a part
    generated invalid on purpose is left as it is, so the negative checks still hold)."""
    meta = case.meta
    pick = IdPicker(case)

    def valid(location: ParameterLocation) -> bool:
        return (
            meta is None
            or meta.generation.mode == GenerationMode.POSITIVE
            or not meta.is_negative_at(location)
        )

    path = case.path_parameters
    if path and valid(ParameterLocation.PATH):
        if "promotion_id" in path:
            path["promotion_id"] = pick(path["promotion_id"], PROMOTION_IDS)
        if "customer_id" in path:
            path["customer_id"] = pick(path["customer_id"], seed.CUSTOMER_IDS)
        if "till_id" in path:
            path["till_id"] = pick(path["till_id"], (seed.TILL_ID, seed.TILL_CODE))
    query = case.query
    if query and valid(ParameterLocation.QUERY):
        name, value = query.get("identifierName"), query.get("identifierValue")
        if name in seed.CUSTOMER_IDENTIFIERS and isinstance(value, str):
            query["identifierValue"] = pick(value, (seed.CUSTOMER_IDENTIFIERS[name],))
        elif name == "id" and isinstance(value, str):
            query["identifierValue"] = pick(value, seed.CUSTOMER_IDS)
        if _is_int(query.get("customerId")) or isinstance(query.get("customerId"), str):
            query["customerId"] = pick(query["customerId"], seed.CUSTOMER_IDS)
        if isinstance(query.get("codes"), str):
            query["codes"] = pick(query["codes"], seed.PROMO_CODES)
        if isinstance(query.get("promotionId"), str):
            query["promotionId"] = pick(query["promotionId"], PROMOTION_IDS)
    if case.body is not None and valid(ParameterLocation.BODY):
        case.body = pick.body(case.body, v2=case.path.startswith("/v2/"))
    return case


@schema.hook
def filter_case(context, case):
    meta = case.meta
    if COVERAGE_EVERY <= 1 or meta is None or meta.phase.name != TestPhase.COVERAGE:
        return True
    drawn = repr((case.method, case.path_parameters, case.query, case.headers, case.body))
    return zlib.crc32(drawn.encode()) % COVERAGE_EVERY == 0


@pytest.fixture
def seeded_org(transactional_db, settings):
    # Requests come from schemathesis's WSGI client, which names the host `localhost`.
    settings.ALLOWED_HOSTS = ["localhost"]
    # The fuzzer sends bad credentials by the hundred from one address: the sign-in throttle would
    # answer 429 where the schema's 401 is checked (throttling has its own tests).
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = settings.LOGIN_FAILURE_LIMIT_PER_IP = "off"
    settings.LOGIN_FAILURE_CEILING_PER_USERNAME = "off"
    settings.API_RATE_LIMIT = "off"
    # Random codes are unknown codes: the guess throttle would soon answer only 429 (tested apart).
    settings.CODE_GUESS_LIMIT_PER_CLIENT = settings.CODE_GUESS_LIMIT_PER_CUSTOMER = "off"
    seed.seed()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    # The seeded org is one fixture per operation: every generated case of that operation shares it.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_api(case, seeded_org):
    response = case.call(headers={"Authorization": seed.BASIC_AUTH})
    record_case(case, response.status_code)
    auth = {"Authorization": seed.BASIC_AUTH}
    case.validate_response(response, checks=CHECKS, headers=auth, transport_kwargs={"headers": auth})


class Workflow(schema.as_state_machine()):
    """Sequences of calls along the links schemathesis infers from the schema (an id one response
    returns, fed to the next request), with the same credentials and checks."""

    def setup(self):
        # Each scenario starts from the seeded org and leaves nothing behind: Hypothesis replays a
        # failing scenario to shrink it, and the replay must meet the same data.
        self.scenario = transaction.atomic()
        self.scenario.__enter__()

    def teardown(self):
        transaction.set_rollback(True)
        self.scenario.__exit__(None, None, None)

    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": seed.BASIC_AUTH}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        record_case(case, response.status_code)
        case.validate_response(response, checks=CHECKS, headers=kwargs["headers"], transport_kwargs=kwargs)


@pytest.fixture
def connection_kept_across_requests():
    """Each scenario runs in one transaction (`Workflow.setup`); Django would close the connection at
    each request's start and end (autocommit is off inside it), so, as its test client does, not here."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


def test_stateful(seeded_org, connection_kept_across_requests):
    # given: links inferred from the schema (else the stateful pass would test nothing)
    assert schema.statistic.transitions.selected > 0
    # when / then
    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=10,
            deadline=None,
            derandomize=DERANDOMIZE,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
