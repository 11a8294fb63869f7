"""`manage.py issue_promotion PROMOTION_ID --customers FILE --context-id X`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from tests.csv_support import FORMULAS, as_text
from tests.factories import CustomerFactory, EarnedPromotionFactory, OrganizationFactory, PromotionFactory
from wallets.models import Customer, EarnedPromotion

ROOT = Path(__file__).resolve().parents[2]


def issue(promotion, path, context_id="spring-2025", **options) -> str:
    out = io.StringIO()
    call_command(
        "issue_promotion",
        promotion.pk,
        customers=str(path),
        context_id=context_id,
        no_progress=True,
        stdout=out,
        stderr=io.StringIO(),
        **options,
    )
    return out.getvalue()


def counts(summary: str) -> dict[str, int]:
    """The summary's figures by label ('issued (new)': 3, ...)."""
    figures = {}
    for line in summary.splitlines():
        label, sep, value = line.strip().rpartition(":")
        if sep and value.strip().replace(",", "").isdigit():
            figures[label] = int(value.strip().replace(",", ""))
    return figures


def rejects_of(path: Path, promotion, context_id="spring-2025") -> Path:
    """Where a run issuing `promotion` from `path` under `context_id` writes its rejects by default."""
    return path.parent / f"{path.name}.{promotion.pk}.{context_id}.rejects.csv"


def no_report_in(directory: Path) -> bool:
    """No rejects file in `directory`, not even one being written."""
    return not list(directory.glob("*.rejects.csv*"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CUSTOMER)


def test_issues_every_customer_of_a_plain_list_in_chunks(org, promotion, tmp_path):
    # given: five customers, one id per line, chunks of two
    customers = CustomerFactory.create_batch(5, org=org)
    path = write(tmp_path / "customers.txt", "".join(f"{c.pk}\n" for c in customers))
    # when
    summary = issue(promotion, path, chunk_size=2)
    # then
    assert counts(summary) == {
        "issued (new)": 5,
        "already held": 0,
        "unknown customers (1007)": 0,
        "over limit (708)": 0,
        "other errors (713)": 0,
        "malformed lines (1006)": 0,
    }
    instances = EarnedPromotion.objects.filter(promotion=promotion)
    assert sorted(instances.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    assert {(i.kind, i.earned_from_type, i.earned_from_id, i.valid_till) for i in instances} == {
        ("ISSUED", "BULK_ISSUE", "spring-2025", promotion.end_date)
    }
    # one audit event per chunk, naming the command and the lines it covered
    events = AuditEvent.objects.filter(action="promotion.issue_bulk").order_by("id")
    assert [e.data["lines"] for e in events] == [[1, 2], [3, 4], [5, 5]]
    assert {(e.actor_type, e.actor_name, e.data["source"], e.data["file"]) for e in events} == {
        ("SYSTEM", "issue_promotion", "issue_promotion", "customers.txt")
    }
    assert no_report_in(tmp_path)


def test_csv_with_a_customer_id_column(org, promotion, tmp_path):
    # given: a spreadsheet export (BOM, header in another case, other columns, quoted cells)
    first, second = CustomerFactory.create_batch(2, org=org)
    path = tmp_path / "export.csv"
    path.write_bytes(
        (
            "\ufeffmobile,CustomerID,name\r\n"
            f'919000000001,{first.pk},"Rao, Asha"\r\n'
            f'919000000002," {second.pk} ",Ravi\r\n'
        ).encode()
    )
    # when
    summary = issue(promotion, path)
    # then
    assert counts(summary)["issued (new)"] == 2
    assert set(EarnedPromotion.objects.values_list("customer_id", flat=True)) == {first.pk, second.pk}


def test_blank_lines_are_skipped_and_malformed_lines_rejected_with_their_line(org, promotion, tmp_path):
    # given
    customer = CustomerFactory(org=org)
    path = write(
        tmp_path / "customers.txt",
        f"{customer.pk}\n\n   \nabc\n12.5\n-3\n0\n1,2\n1234567890123456789\n",
    )
    # when
    summary = issue(promotion, path)
    # then
    figures = counts(summary)
    assert figures["issued (new)"] == 1 and figures["malformed lines (1006)"] == 6
    with rejects_of(path, promotion).open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "value", "code", "reason"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("4", "abc", "1006"),
        ("5", "12.5", "1006"),
        ("6", "-3", "1006"),
        ("7", "0", "1006"),
        ("8", "1,2", "1006"),
        ("9", "1234567890123456789", "1006"),
    ]
    assert "6 line(s) not issued" in summary


def test_csv_row_without_a_customer_id_is_rejected(org, promotion, tmp_path):
    customer = CustomerFactory(org=org)
    path = write(tmp_path / "c.csv", f"customerId,name\n{customer.pk},Asha\n,Ravi\n")
    rejects = tmp_path / "out" / "rejects.csv"
    rejects.parent.mkdir()
    summary = issue(promotion, path, rejects=str(rejects))
    assert counts(summary)["malformed lines (1006)"] == 1
    assert list(csv.reader(rejects.open()))[1][:3] == ["3", ",Ravi", "1006"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_rejected_text_that_starts_a_formula_is_written_as_text(org, promotion, tmp_path, formula):
    # given: a customerId column holding text a spreadsheet would run
    path = tmp_path / "customers.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["customerId", "name"], [formula, formula]])
    # when
    issue(promotion, path)
    # then: the rejected value, as read (trimmed), is kept as text
    with rejects_of(path, promotion).open(encoding="utf-8", newline="") as handle:
        [_, rejected] = list(csv.reader(handle))
    assert rejected[1:3] == [as_text(formula.strip()), "1006"]


def test_per_customer_refusals_are_counted_and_listed(org, other_org, promotion, tmp_path):
    # given: a good customer (listed twice), an unknown id, another org's customer, one at the
    # limit (holds an instance of another context), one whose context was used by an earn
    good = CustomerFactory(org=org)
    at_limit = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=at_limit, promotion=promotion, earned_from_id="older")
    earned = CustomerFactory(org=org)
    EarnedPromotionFactory(
        org=org,
        customer=earned,
        promotion=promotion,
        kind="EARNED",
        earned_from_type="ACTIVITY",
        earned_from_id="spring-2025",
    )
    foreign = CustomerFactory(org=other_org)
    ids = [good.pk, 999999999, foreign.pk, at_limit.pk, earned.pk, good.pk]
    path = write(tmp_path / "customers.txt", "\n".join(map(str, ids)) + "\n")
    # when
    summary = issue(promotion, path, chunk_size=4)
    # then: the repeated line (in the next chunk) finds the customer already holding it
    assert counts(summary) == {
        "issued (new)": 1,
        "already held": 1,
        "unknown customers (1007)": 2,
        "over limit (708)": 1,
        "other errors (713)": 1,
        "malformed lines (1006)": 0,
    }
    rejects = list(csv.reader(rejects_of(path, promotion).open()))[1:]
    assert sorted((r[0], r[1], r[2]) for r in rejects) == sorted(
        [
            ("2", "999999999", "1007"),
            ("3", str(foreign.pk), "1007"),
            ("4", str(at_limit.pk), "708"),
            ("5", str(earned.pk), "713"),
        ]
    )
    assert EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="spring-2025").count() == 2


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_runs_issuing_two_promotions_from_one_file_at_once_keep_their_own_reports(tmp_path):
    # given one customer list, with unknown ids among the customers, for two promotions; five of the
    # customers already hold the second promotion (at its limit: 708 for that run only)
    org = OrganizationFactory()
    first, second = PromotionFactory.create_batch(2, org=org, type=PromotionType.CUSTOMER)
    customers = CustomerFactory.create_batch(30, org=org)
    for customer in customers[:5]:
        EarnedPromotionFactory(org=org, customer=customer, promotion=second, earned_from_id="older")
    ids = [value for customer in customers for value in (customer.pk, 900_000_000 + customer.pk)]
    path = write(tmp_path / "customers.txt", "".join(f"{value}\n" for value in ids))
    unknown = [(str(line), str(value), "1007") for line, value in enumerate(ids, 1) if line % 2 == 0]
    at_limit = [(str(2 * i + 1), str(customers[i].pk), "708") for i in range(5)]

    # when both run at once, one customer per transaction, each in its own thread and connection
    barrier = threading.Barrier(2)
    outputs, failures = {}, []

    def run(promotion):
        try:
            barrier.wait()
            outputs[promotion.pk] = issue(promotion, path, chunk_size=1)
        except BaseException as exc:  # re-raised below, in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(promotion,)) for promotion in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then each names its own report, and each report holds exactly that run's lines
    assert failures == []
    for promotion, expected in ((first, unknown), (second, unknown + at_limit)):
        report = rejects_of(path, promotion)
        assert f"{len(expected)} line(s) not issued are listed in {report}" in outputs[promotion.pk]
        with report.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["line", "value", "code", "reason"]
        assert sorted(tuple(row[:3]) for row in rows[1:]) == sorted(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["customers.txt", rejects_of(path, first).name, rejects_of(path, second).name]
    )


def test_a_run_that_rejects_nothing_removes_its_earlier_report_only(org, promotion, tmp_path):
    # given a run of each of two promotions that rejected an unknown customer
    other = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customer = CustomerFactory(org=org)
    path = write(tmp_path / "customers.txt", f"{customer.pk}\n999999999\n")
    issue(promotion, path)
    issue(other, path)
    assert rejects_of(path, promotion).exists() and rejects_of(path, other).exists()
    # when the first is run again, from a corrected list
    write(path, f"{customer.pk}\n")
    issue(promotion, path)
    # then its stale report is gone, and the other promotion's stays
    assert not rejects_of(path, promotion).exists()
    assert rejects_of(path, other).exists()


def test_a_context_id_that_is_no_file_name_is_made_safe_in_the_report_name(org, promotion, tmp_path):
    # given
    path = write(tmp_path / "customers.txt", "999999999\n")
    # when the contextIds hold a path separator, or differ only in characters a name cannot hold
    for context_id in ("spring/2025", "spring 2025", "spring:2025", "x" * 255):
        issue(promotion, path, context_id=context_id)
    # then each has its own report, beside the customer file, named after the promotion
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != "customers.txt")
    assert len(names) == 4
    assert all(
        re.fullmatch(rf"customers\.txt\.{promotion.pk}\.[A-Za-z0-9._-]{{1,80}}\.rejects\.csv", name)
        for name in names
    ), names


def test_a_customer_listed_twice_in_one_chunk_is_issued_once(org, promotion, tmp_path):
    customer = CustomerFactory(org=org)
    path = write(tmp_path / "customers.txt", f"{customer.pk}\n{customer.pk}\n")
    figures = counts(issue(promotion, path))
    assert (figures["issued (new)"], figures["already held"]) == (1, 1)
    assert EarnedPromotion.objects.filter(customer=customer).count() == 1


def test_running_again_issues_only_what_is_missing(org, promotion, tmp_path):
    # given: the first three customers were issued by an earlier run
    customers = CustomerFactory.create_batch(5, org=org)
    write(tmp_path / "first.txt", "".join(f"{c.pk}\n" for c in customers[:3]))
    issue(promotion, tmp_path / "first.txt")
    path = write(tmp_path / "all.txt", "".join(f"{c.pk}\n" for c in customers))
    # when
    figures = counts(issue(promotion, path, chunk_size=2))
    # then
    assert (figures["issued (new)"], figures["already held"]) == (2, 3)
    held = EarnedPromotion.objects.values("customer_id").annotate(n=Count("id"))
    assert {row["customer_id"]: row["n"] for row in held} == {c.pk: 1 for c in customers}


def test_context_id_is_stored_exactly_whatever_it_holds(org, promotion, tmp_path):
    # COPY's text format escapes tabs, newlines and backslashes: the stored value must not change
    customer = CustomerFactory(org=org)
    path = write(tmp_path / "customers.txt", f"{customer.pk}\n")
    context_id = "spring\\sale\t2025\nfinal"
    issue(promotion, path, context_id=context_id)
    assert EarnedPromotion.objects.get(customer=customer).earned_from_id == context_id
    assert counts(issue(promotion, path, context_id=context_id))["already held"] == 1


def _refusal_setups():
    now = timezone.now()
    return {
        "pos type (707)": (dict(type=PromotionType.POS), "707"),
        "ended (706)": (dict(end_date=now - dt.timedelta(minutes=1)), "706"),
        "inactive (709)": (dict(active=False), "709"),
        "not started (709)": (dict(start_date=now + dt.timedelta(days=1)), "709"),
    }


@pytest.mark.parametrize("case", list(_refusal_setups()))
def test_request_level_refusals_write_nothing(org, tmp_path, case):
    # given
    attributes, code = _refusal_setups()[case]
    promotion = PromotionFactory(org=org, **attributes)
    customer = CustomerFactory(org=org)
    path = write(tmp_path / "customers.txt", f"{customer.pk}\n")
    # when
    with pytest.raises(CommandError, match=code) as refused:
        issue(promotion, path)
    # then
    assert refused.value.returncode == 1
    assert not EarnedPromotion.objects.exists() and not AuditEvent.objects.exists()
    assert no_report_in(tmp_path)


def test_org_over_its_active_promotion_cap_is_705(db, tmp_path):
    org = OrganizationFactory(max_active_promotions=1)
    promotion = PromotionFactory(org=org)
    PromotionFactory(org=org)
    path = write(tmp_path / "customers.txt", f"{CustomerFactory(org=org).pk}\n")
    with pytest.raises(CommandError, match="705"):
        issue(promotion, path)
    assert not EarnedPromotion.objects.exists()


def test_org_option_must_name_the_promotions_org(org, other_org, promotion, tmp_path):
    path = write(tmp_path / "customers.txt", f"{CustomerFactory(org=org).pk}\n")
    with pytest.raises(CommandError, match=f"Promotion {promotion.pk} not found in org {other_org.pk}"):
        issue(promotion, path, org=other_org.pk)
    with pytest.raises(CommandError, match="Organization 999 does not exist"):
        issue(promotion, path, org=999)
    assert not EarnedPromotion.objects.exists()
    assert counts(issue(promotion, path, org=org.pk))["issued (new)"] == 1


def test_unknown_promotion(db, tmp_path):
    path = write(tmp_path / "customers.txt", "1\n")
    with pytest.raises(CommandError, match="Promotion 0123456789abcdef01234567 not found"):
        call_command(
            "issue_promotion",
            "0123456789abcdef01234567",
            customers=str(path),
            context_id="x",
            stdout=io.StringIO(),
        )


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("1\n", {"chunk_size": 0}, "--chunk-size must be between 1 and 100,000"),
        ("1\n", {"context_id": ""}, "--context-id must be 1 to 255 characters"),
        ("1\n", {"context_id": "x" * 256}, "--context-id must be 1 to 255 characters"),
        ("mobile,name\n9190,Asha\n", {}, "the first line must be a customer id, or a CSV header"),
        ("abc\n1\n", {}, "line 1: the first line must be a customer id"),
        ("", {}, "holds no customer ids"),
        ("\n\ncustomerId\n", {}, "holds no customer ids"),
    ],
)
def test_bad_input_is_a_command_error(org, promotion, tmp_path, text, options, message):
    path = write(tmp_path / "customers.txt", text)
    with pytest.raises(CommandError, match=message):
        issue(promotion, path, **options)
    assert not EarnedPromotion.objects.exists()


def test_missing_file_and_unwritable_rejects_file(org, promotion, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        issue(promotion, tmp_path / "nope.txt")
    path = write(tmp_path / "customers.txt", "1\n")
    with pytest.raises(CommandError, match="Cannot write the rejects file"):
        issue(promotion, path, rejects=str(tmp_path / "missing-dir" / "rejects.csv"))
    with pytest.raises(CommandError, match="--rejects must not be the customer file itself"):
        issue(promotion, path, rejects=str(path))
    assert path.read_text() == "1\n"
    assert not AuditEvent.objects.exists()


# --- a real interruption: the command in its own process, stopped between two chunks ----------------


def _database_url() -> str:
    settings = connection.settings_dict
    password = f":{quote(settings['PASSWORD'])}" if settings.get("PASSWORD") else ""
    return (
        f"postgres://{quote(settings['USER'])}{password}@{settings['HOST'] or 'localhost'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def _wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_run_resumes_where_it_stopped(tmp_path, stop):
    # given: six customers in chunks of three; the test holds a lock on the first customer of the
    # second chunk, so the command commits chunk one and then waits, and is stopped right there
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org)
    customers = CustomerFactory.create_batch(6, org=org)
    path = write(tmp_path / "customers.txt", "".join(f"{c.pk}\n" for c in customers))
    url = _database_url()
    blocker = psycopg.connect(url)
    blocker.execute("SELECT id FROM wallets_customer WHERE id = %s FOR UPDATE", [customers[3].pk])
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "test-only", "DEBUG": "0"}
    command = subprocess.Popen(
        [
            *(sys.executable, "manage.py", "issue_promotion", promotion.pk, "--customers", str(path)),
            *("--context-id", "spring-2025", "--chunk-size", "3", "--no-progress"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with connection.cursor() as cursor:

            def second_chunk_waits() -> bool:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE %s",
                    ["%FOR UPDATE%"],
                )
                return cursor.fetchone()[0] == 1

            _wait_until(second_chunk_waits, "the second chunk waits for the locked customer")
        assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3
        # when: the command is stopped in the middle of its second chunk
        command.send_signal(stop)
        stdout, stderr = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
            command.communicate()
        blocker.rollback()
        blocker.close()

    # then: the first chunk stays, the second left nothing
    if stop == signal.SIGINT:
        assert command.returncode == 130
        assert "Traceback" not in stderr
        assert "Interrupted: the chunks counted above are committed" in stderr
        assert counts(stdout)["issued (new)"] == 3
    else:
        assert command.returncode == -signal.SIGKILL
    _wait_until(
        lambda: EarnedPromotion.objects.filter(promotion=promotion).count() == 3 and not _backend_waiting(),
        "the stopped command's transaction is gone",
    )
    assert set(EarnedPromotion.objects.values_list("customer_id", flat=True)) == {c.pk for c in customers[:3]}

    # when: the same command runs again
    figures = counts(issue(promotion, path, chunk_size=3))

    # then: it issues only the missing half, and each customer holds exactly one instance
    assert (figures["issued (new)"], figures["already held"]) == (3, 3)
    held = EarnedPromotion.objects.filter(promotion=promotion).values("customer_id").annotate(n=Count("id"))
    assert {row["customer_id"]: row["n"] for row in held} == {c.pk: 1 for c in customers}


def _backend_waiting() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state <> 'idle' AND pid <> pg_backend_pid() AND query LIKE %s",
            ["%wallets_customer%FOR UPDATE%"],
        )
        return cursor.fetchone()[0] > 0


# --- a chunk's cost does not grow with what the promotion already holds -----------------------------


@pytest.mark.postgres_only
def test_per_customer_lookups_probe_by_customer_even_with_stale_statistics(org, tmp_path):
    # given: statistics taken when every instance belonged to other promotions (the issued promotion
    # is absent from them, so the planner expects it to hold about one row), then a first chunk issued
    old = PromotionFactory(org=org)
    customers = [c.pk for c in Customer.objects.bulk_create([Customer(org=org) for _ in range(300)])]
    EarnedPromotion.objects.bulk_create(
        EarnedPromotionFactory.build(org=org, customer_id=pk, promotion=old) for pk in customers
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wallets_earnedpromotion")
    promotion = PromotionFactory(org=org, max_issuance_per_customer=1)
    write(tmp_path / "first.txt", "".join(f"{pk}\n" for pk in customers[:200]))
    issue(promotion, tmp_path / "first.txt")
    # when: the next chunk looks up what its customers hold
    path = write(tmp_path / "next.txt", "".join(f"{pk}\n" for pk in customers[200:]))
    with CaptureQueriesContext(connection) as queries:
        issue(promotion, path)
    # then: each lookup finds a customer's instances through an index on the customer, rather than
    # reading every instance the promotion already holds for each customer
    lookups = [q["sql"] for q in queries.captured_queries if "CROSS JOIN LATERAL" in q["sql"]]
    assert len(lookups) == 2  # the contextId's instances, the issued counts
    for sql in lookups:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "customer_id = c.id" in plan.split("Index Cond:", 1)[1].split("\n", 1)[0], plan
