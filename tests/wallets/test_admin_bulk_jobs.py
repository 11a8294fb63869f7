"""The marketer admin's bulk screens: issue a promotion, bulk earn, and the jobs they start."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from tests.admin_support import staff_login
from tests.csv_support import FORMULAS, as_text, csv_table
from tests.factories import (
    BulkJobFactory,
    BulkJobItemFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    UserFactory,
)
from wallets.models import BulkJob, BulkJobItem, EarnedPromotion
from wallets.services import bulk_jobs

MARKETER_PERMISSIONS = [
    "promotions.view_promotion",
    "promotions.change_promotion",
    "wallets.view_bulkjob",
    "wallets.view_bulkjobitem",
    "wallets.view_earnedpromotion",
    "wallets.run_bulk_job",
]


def permissions(*names):
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def marketer(client, org):
    user = UserFactory(org=org)
    user.user_permissions.set(permissions(*MARKETER_PERMISSIONS))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def auditor(client, org):
    """A staff user of the org in the Auditors group (view permissions only)."""
    staff_login(client, org, group="Auditors")
    return client


@pytest.fixture
def promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=1)


def issue_url(promotion) -> str:
    return reverse("admin:wallets_bulkjob_issue", args=[promotion.pk])


def job_url(job, name="change") -> str:
    return reverse(f"admin:wallets_bulkjob_{name}", args=[job.pk])


def issue_preview(
    client, promotion, identifiers="", identifier_type="id", context_id="wave-1", csv_file=None
):
    data = {"identifier_type": identifier_type, "identifiers": identifiers, "context_id": context_id}
    if csv_file is not None:
        data["csv_file"] = csv_file
    return client.post(issue_url(promotion), data)


@pytest.fixture
def confirm(django_capture_on_commit_callbacks):
    """Post a preview's confirmation. Jobs start once the transaction that created them commits,
    which a test's own transaction never does: the captured callbacks run as the request ends."""

    def post(client, url, preview_response, follow=True):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"post": "yes", "draft": preview_response.context["draft"]})
        return client.get(response["Location"], follow=True) if follow else response

    return post


def figures(response) -> dict:
    preview = response.context["preview"]
    return {
        name: getattr(preview, name)
        for name in (
            "total", "found", "unknown", "duplicates", "already_holding", "over_limit", "same_context", "to_give"
        )
    }  # fmt: skip


def upload(content: str, name="customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


# --- issue: form, preview, confirm ----------------------------------------------------------------


def test_issue_flow_from_form_to_a_done_job(marketer, org, promotion, confirm):
    # given 4 customers, one already holding the promotion (at its limit of 1), plus an unknown id
    # and a customer listed twice
    customers = CustomerFactory.create_batch(4, org=org)
    EarnedPromotionFactory(org=org, customer=customers[0], promotion=promotion, earned_from_id="earlier")
    ids = [str(c.pk) for c in customers]
    pasted = "\n".join(ids) + f"\n999999999, {ids[1]}\n\n"

    # when the form is sent
    form = marketer.get(issue_url(promotion))
    preview = issue_preview(marketer, promotion, pasted)

    # then the preview shows the figures and writes nothing
    assert form.status_code == 200
    assert form.context["form"]["context_id"].value().startswith("admin-")
    assert preview.status_code == 200
    assert figures(preview) == {
        "total": 6,
        "found": 4,
        "unknown": 1,
        "duplicates": 1,
        "already_holding": 0,
        "over_limit": 1,
        "same_context": 0,
        "to_give": 3,
    }
    html = preview.content.decode()
    assert 'data-figure="found">4<' in html and "Yes, issue to 3 customers" in html
    assert "<code>999999999</code>" in html
    assert not BulkJob.objects.exists()

    # when confirmed
    page = confirm(marketer, issue_url(promotion), preview)

    # then the job ran (small: at once) and the browser lands on its page
    job = BulkJob.objects.get()
    assert page.request["PATH_INFO"] == job_url(job)
    assert (job.kind, job.status, job.total, job.done, job.failed) == ("ISSUE", "DONE", 6, 4, 2)
    assert job.created_by == marketer.user and job.params == {"contextId": "wave-1"}
    assert set(
        EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="wave-1").values_list(
            "customer_id", flat=True
        )
    ) == {c.pk for c in customers[1:]}
    failed = dict(job.items.filter(status="FAILED").values_list("identifier", "code"))
    assert failed == {"999999999": 1007, ids[0]: 708}
    html = page.content.decode()
    assert "6 of 6 (100%) · failed 2" in html and 'id="bulk-job-progress"' in html
    assert "wallets/bulk_job_progress.js" in html
    assert AuditEvent.objects.filter(action="bulk_job.create", object_id=str(job.pk)).exists()


@pytest.mark.parametrize(
    "identifier_type, attribute, spelling",
    [
        ("id", "pk", str),
        ("mobile", "mobile", lambda v: "+" + v),
        ("email", "email", str.upper),
        ("externalId", "external_id", str),
    ],
)
def test_each_identifier_type(marketer, org, promotion, identifier_type, attribute, spelling, confirm):
    customers = CustomerFactory.create_batch(3, org=org)
    pasted = ",".join(spelling(str(getattr(c, attribute))) for c in customers)

    preview = issue_preview(marketer, promotion, pasted, identifier_type=identifier_type)
    confirm(marketer, issue_url(promotion), preview)

    assert figures(preview)["found"] == 3
    job = BulkJob.objects.get()
    assert (job.identifier_type, job.status, job.done, job.failed) == (identifier_type, "DONE", 3, 0)
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3


def test_csv_with_a_header_reads_the_chosen_column(marketer, org, promotion, confirm):
    # given a spreadsheet export with several columns, read by mobile
    a, b = CustomerFactory.create_batch(2, org=org)
    content = f"customerId,Mobile,name\n1,{a.mobile},Asha\n\n2,+{b.mobile},Ravi\n3,,Nobody\n"

    preview = issue_preview(marketer, promotion, identifier_type="mobile", csv_file=upload(content))

    assert figures(preview) == {
        "total": 2,
        "found": 2,
        "unknown": 0,
        "duplicates": 0,
        "already_holding": 0,
        "over_limit": 0,
        "same_context": 0,
        "to_give": 2,
    }
    confirm(marketer, issue_url(promotion), preview)
    job = BulkJob.objects.get()
    assert (job.identifier_type, job.input_name, job.done) == ("mobile", "customers.csv", 2)
    assert job.input_file.read().decode() == content


def test_csv_header_naming_one_identifier_column_sets_the_type(marketer, org, promotion):
    customer = CustomerFactory(org=org)

    preview = issue_preview(
        marketer, promotion, identifier_type="id", csv_file=upload(f"\ufeffE-Mail\n{customer.email}\n")
    )

    assert preview.context["identifier_label"] == "email"
    assert figures(preview)["found"] == 1


def test_csv_without_a_header_is_one_column(marketer, org, promotion):
    customers = CustomerFactory.create_batch(3, org=org)
    content = "\r\n".join(str(c.pk) for c in customers) + "\r\n424242\r\n"

    preview = issue_preview(marketer, promotion, csv_file=upload(content))

    assert (figures(preview)["total"], figures(preview)["found"], figures(preview)["unknown"]) == (4, 3, 1)


@pytest.mark.parametrize(
    "content, message",
    [
        ("1,2\n3,4\n", "Row 1 has several columns"),
        ("customerId,email\n1,a@example.com\n", None),  # the chosen type's column: fine
        ("email,externalId\na@example.com,X\n", "several identifier columns (email, externalId)"),
        ("", "No customer identifiers"),
    ],
)
def test_csv_shapes_the_form_refuses(marketer, org, promotion, content, message):
    response = issue_preview(marketer, promotion, identifier_type="id", csv_file=upload(content or " "))

    if message is None:
        assert "preview" in response.context
    else:
        assert message in response.content.decode()
        assert not BulkJob.objects.exists()


def test_not_utf8_and_both_inputs_are_refused(marketer, promotion):
    latin1 = SimpleUploadedFile("c.csv", "José\n".encode("latin-1"))
    assert "not UTF-8" in issue_preview(marketer, promotion, csv_file=latin1).content.decode()
    both = issue_preview(marketer, promotion, "1", csv_file=upload("2\n"))
    assert "not both" in both.content.decode()


def test_unknown_values_are_shown_first_ten(marketer, org, promotion):
    unknown = [f"nobody{i}@example.com" for i in range(12)]

    preview = issue_preview(marketer, promotion, "\n".join(unknown), identifier_type="email")

    html = preview.content.decode()
    assert figures(preview)["unknown"] == 12
    assert "the first 10 of 12" in html
    assert "<code>nobody9@example.com</code>" in html and "nobody10@example.com" not in html
    assert "nothing to do" in html and 'name="post"' not in html


@pytest.mark.parametrize(
    "promotion_kwargs, code",
    [
        (
            {
                "start_date": timezone.now() - dt.timedelta(days=9),
                "end_date": timezone.now() - dt.timedelta(days=1),
            },
            706,
        ),
        ({"active": False}, 709),
    ],
)
def test_a_refusal_of_the_service_shows_on_the_form(marketer, org, promotion_kwargs, code):
    refused = PromotionFactory(org=org, **{"type": PromotionType.CUSTOMER, **promotion_kwargs})
    customer = CustomerFactory(org=org)

    response = issue_preview(marketer, refused, str(customer.pk))

    assert response.status_code == 200 and "preview" not in response.context
    assert f"(code {code})" in response.content.decode()
    assert not BulkJob.objects.exists() and not EarnedPromotion.objects.exists()


def test_a_second_run_with_the_same_context_has_nothing_to_issue(marketer, org, promotion, confirm):
    # given a first wave, issued
    customers = CustomerFactory.create_batch(2, org=org)
    pasted = "\n".join(str(c.pk) for c in customers)
    confirm(marketer, issue_url(promotion), issue_preview(marketer, promotion, pasted, context_id="wave-1"))

    # when the same list is previewed again with the same contextId, then with a new one
    same = issue_preview(marketer, promotion, pasted, context_id="wave-1")
    new = issue_preview(marketer, promotion, pasted, context_id="wave-2")

    # then the first is a replay (nothing to confirm); the second meets the limit of 1
    assert (figures(same)["same_context"], figures(same)["over_limit"], figures(same)["to_give"]) == (2, 0, 0)
    assert "nothing to issue" in same.content.decode() and 'name="post"' not in same.content.decode()
    assert (figures(new)["same_context"], figures(new)["over_limit"], figures(new)["to_give"]) == (0, 2, 0)


def test_a_refusal_at_confirmation_creates_nothing(marketer, org, promotion, confirm):
    # given a preview, then the promotion is deactivated before the confirmation
    customer = CustomerFactory(org=org)
    preview = issue_preview(marketer, promotion, str(customer.pk))
    promotion.active = False
    promotion.save()

    page = confirm(marketer, issue_url(promotion), preview)

    assert "Nothing was started: Promotion not in running state. (code 709)" in page.content.decode()
    assert page.request["PATH_INFO"] == issue_url(promotion)
    assert not BulkJob.objects.exists() and not EarnedPromotion.objects.exists()


def test_a_confirmation_sent_twice_starts_one_job(marketer, org, promotion, confirm):
    customers = CustomerFactory.create_batch(3, org=org)
    preview = issue_preview(marketer, promotion, " ".join(str(c.pk) for c in customers).replace(" ", "\n"))

    first = confirm(marketer, issue_url(promotion), preview)
    second = confirm(marketer, issue_url(promotion), preview)  # a double click, or back and confirm again

    job = BulkJob.objects.get()
    assert first.request["PATH_INFO"] == second.request["PATH_INFO"] == job_url(job)
    assert "already sent" in second.content.decode()
    assert job.items.count() == 3 and EarnedPromotion.objects.count() == 3
    assert AuditEvent.objects.filter(action="bulk_job.create").count() == 1


def test_a_tampered_confirmation_is_refused(marketer, org, promotion):
    customer = CustomerFactory(org=org)
    preview = issue_preview(marketer, promotion, str(customer.pk))
    draft = preview.context["draft"]

    page = marketer.post(issue_url(promotion), {"post": "yes", "draft": draft[:-2] + "xx"}, follow=True)

    assert "expired or is not valid" in page.content.decode()
    assert not BulkJob.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_racing_creates_with_one_key_make_one_job():
    import threading

    from django.db import connection

    from tests.factories import OrganizationFactory

    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customers = CustomerFactory.create_batch(20, org=org)

    def create():
        try:
            return bulk_jobs.bulk_job_create(
                org=org,
                kind="ISSUE",
                promotion=promotion,
                params={"contextId": "race"},
                identifier_type="id",
                values=[str(c.pk) for c in customers],
                user=None,
                idempotency_key="one-confirmation",
            ).pk
        finally:
            connection.close()

    barrier, results = threading.Barrier(2), []

    def racer():
        barrier.wait()
        results.append(create())

    threads = [threading.Thread(target=racer) for _ in range(2)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]

    assert len(results) == 2 and len(set(results)) == 1
    assert BulkJob.objects.count() == 1 and BulkJobItem.objects.count() == 20


# --- background jobs --------------------------------------------------------------------------------


def test_a_job_over_the_threshold_runs_in_chunks(marketer, org, promotion, settings, monkeypatch, confirm):
    # given a threshold of 3 customers and chunks of 2
    settings.BULK_JOB_INLINE_MAX = 3
    monkeypatch.setattr(bulk_jobs, "BULK_JOB_CHUNK_SIZE", 2)
    chunks = []
    real = bulk_jobs.bulk_job_chunk_run
    monkeypatch.setattr(bulk_jobs, "bulk_job_chunk_run", lambda **kw: chunks.append(kw) or real(**kw))
    customers = CustomerFactory.create_batch(7, org=org)

    preview = issue_preview(marketer, promotion, "\n".join(str(c.pk) for c in customers))
    page = confirm(marketer, issue_url(promotion), preview)

    # then (BULK_JOBS_IN_PROCESS=sync in tests: the chunks ran before the answer) the job is done
    assert "runs in the background" in preview.content.decode()
    job = BulkJob.objects.get()
    assert len(chunks) == 4 and {c["job_id"] for c in chunks} == {job.pk}
    assert (job.status, job.done, job.failed) == ("DONE", 7, 0)
    assert "7 of 7 (100%) · failed 0" in page.content.decode()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_background_job_is_followed_by_its_progress(client, settings, confirm):
    """In-process without a broker: the job runs in a thread while the page polls its progress."""
    import time

    from tests.factories import OrganizationFactory

    settings.BULK_JOB_INLINE_MAX = 0
    settings.BULK_JOBS_IN_PROCESS = "thread"
    org = OrganizationFactory()
    user = UserFactory(org=org)
    user.user_permissions.set(permissions(*MARKETER_PERMISSIONS))
    client.force_login(user)
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customers = CustomerFactory.create_batch(30, org=org)

    preview = issue_preview(client, promotion, "\n".join(str(c.pk) for c in customers))
    confirm(client, issue_url(promotion), preview, follow=False)
    job = BulkJob.objects.get()
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = client.get(job_url(job, "progress")).json()
        seen.append(progress["status"])
        if progress["finished"]:
            break
        time.sleep(0.05)

    assert progress["status"] == "DONE" and progress["text"] == "30 of 30 (100%) · failed 0"
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 30


def test_a_job_the_broker_cannot_take_is_failed_and_retried(
    marketer, org, promotion, settings, monkeypatch, confirm, django_capture_on_commit_callbacks
):
    # given a broker that is down, and a job too large to run at once
    from kombu.exceptions import OperationalError

    from wallets.tasks import bulk_job_chunk_task

    settings.BULK_JOB_INLINE_MAX, settings.BULK_JOBS_IN_PROCESS = 1, "thread"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    def broker_down(*args):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(bulk_job_chunk_task, "delay", broker_down)
    customers = CustomerFactory.create_batch(3, org=org)

    # when
    preview = issue_preview(marketer, promotion, "\n".join(str(c.pk) for c in customers))
    page = confirm(marketer, issue_url(promotion), preview)

    # then the job says why it did not run, and runs when retried
    job = BulkJob.objects.get()
    assert job.status == "FAILED" and "Could not queue the job" in job.error
    assert "Connection refused" in page.content.decode() and 'value="Retry"' in page.content.decode()
    settings.BULK_JOBS_IN_PROCESS = "sync"
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post(job_url(job, "retry"))
    job.refresh_from_db()
    assert (job.status, job.done) == ("DONE", 3)


def test_progress_json(marketer, org):
    job = BulkJobFactory(org=org, status="RUNNING", total=10, done=3, failed=1)

    progress = marketer.get(job_url(job, "progress"))

    assert progress.status_code == 200
    assert progress.json() == {
        "id": job.pk,
        "status": "RUNNING",
        "total": 10,
        "done": 3,
        "failed": 1,
        "processed": 4,
        "percent": 40,
        "text": "4 of 10 (40%) · failed 1",
        "error": "",
        "finished": False,
    }


def test_error_report_streams_the_failed_items(marketer, org):
    # given a job with two failed items (one identifier that a spreadsheet would run as a formula)
    job = BulkJobFactory(org=org, status="DONE", total=4, done=2, failed=2)
    customer = CustomerFactory(org=org)
    BulkJobItemFactory(job=job, line=1, identifier="1", status="DONE")
    BulkJobItemFactory(
        job=job, line=2, identifier="=HYPERLINK(1)", status="FAILED", code=1007, message="Customer not found."
    )
    BulkJobItemFactory(job=job, line=3, identifier="+919000000001", customer=customer, status="FAILED", code=708, message="Exceeded the max issuance per customer limit.")  # fmt: skip
    BulkJobItemFactory(job=job, line=4, identifier="4", status="DONE")

    response = marketer.get(job_url(job, "error_report"))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="bulk-job-{job.pk}-errors.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["line", "identifier", "customerId", "code", "message"],
        ["2", "'=HYPERLINK(1)", "", "1007", "Customer not found."],
        ["3", "+919000000001", str(customer.pk), "708", "Exceeded the max issuance per customer limit."],
    ]


def reported_lines(marketer, promotion, confirm, **input) -> list[tuple[str, str]]:
    """Run an issue job from the admin's form; the error report's (line, identifier) rows."""
    confirm(marketer, issue_url(promotion), issue_preview(marketer, promotion, **input))
    response = marketer.get(job_url(BulkJob.objects.get(), "error_report"))
    return [
        (row[0], row[1])
        for row in list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))[1:]
    ]


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        # pasted, with CRLF as browsers send it: unknown customers on lines 3 and 5
        ({"identifiers": "{a}\r\n{b}\r\n404\r\n\r\n405"}, [("3", "404"), ("5", "405")]),
        # pasted, leading blank lines and several values on one line
        ({"identifiers": "\n\n{a}, 404\n{b},405"}, [("3", "404"), ("4", "405")]),
        # a CSV with a header: file lines 6 and 8 (a blank line and a header count)
        (
            {"csv_file": "customerId,name\n{a},Asha\n\n{b},Ravi\n\n404,Nobody\n\n405,\n"},
            [("6", "404"), ("8", "405")],
        ),
        # a CSV without a header, a quoted value spanning two lines before the unknown one
        ({"csv_file": '{a}\n"{b}"\n\n404\r\n405\n'}, [("4", "404"), ("5", "405")]),
        ({"csv_file": 'customerId,note\n{a},"two\nlines"\n404,x\n'}, [("4", "404")]),
    ],
)
def test_error_report_lines_are_the_inputs_line_numbers(marketer, org, promotion, confirm, input, expected):
    # given: two known customers and unknown ids at known lines
    a, b = CustomerFactory.create_batch(2, org=org)
    values = {key: value.format(a=a.pk, b=b.pk) for key, value in input.items()}
    if "csv_file" in values:
        values["csv_file"] = upload(values["csv_file"])
    # when / then
    assert reported_lines(marketer, promotion, confirm, **values) == expected


@pytest.mark.parametrize("formula", FORMULAS)
def test_error_report_keeps_every_formula_start_as_text(marketer, org, formula):
    # given: a failed item whose identifier and message a spreadsheet would run
    job = BulkJobFactory(org=org, status="DONE", total=1, done=0, failed=1)
    BulkJobItemFactory(job=job, line=1, identifier=formula, status="FAILED", code=1007, message=formula)
    # when
    response = marketer.get(job_url(job, "error_report"))
    # then
    rows = csv_table(b"".join(response.streaming_content).decode())
    assert rows[1] == ["1", as_text(formula), "", "1007", as_text(formula)]


def test_the_input_file_downloads_as_given(marketer, org, promotion, confirm):
    customer = CustomerFactory(org=org)
    preview = issue_preview(marketer, promotion, f"{customer.pk}\n")
    confirm(marketer, issue_url(promotion), preview)
    job = BulkJob.objects.get()

    response = marketer.get(job_url(job, "input"))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == str(customer.pk).encode()
    assert 'filename="pasted.txt"' in response["Content-Disposition"]
    page = marketer.get(job_url(job)).content.decode()
    assert job_url(job, "input") in page


def test_a_failed_job_is_retried(
    marketer, org, promotion, monkeypatch, confirm, django_capture_on_commit_callbacks
):
    # given a job whose run crashed: FAILED, its items still pending
    customers = CustomerFactory.create_batch(3, org=org)
    monkeypatch.setattr(bulk_jobs, "earned_promotions_issue", lambda **kw: 1 / 0)
    preview = issue_preview(marketer, promotion, "\n".join(str(c.pk) for c in customers))
    page = confirm(marketer, issue_url(promotion), preview)
    job = BulkJob.objects.get()
    assert job.status == "FAILED" and "ZeroDivisionError" in job.error
    assert "Retry" in page.content.decode() and "ZeroDivisionError" in page.content.decode()
    monkeypatch.undo()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        page = marketer.post(job_url(job, "retry"), follow=True)

    # then
    job.refresh_from_db()
    assert (job.status, job.done, job.failed, job.error) == ("DONE", 3, 0, "")
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3
    assert AuditEvent.objects.filter(action="bulk_job.retry", object_id=str(job.pk)).exists()
    # a job that has not failed is not retried
    page = marketer.post(job_url(job, "retry"), follow=True)
    assert "Only a failed job can be retried" in page.content.decode()


def test_job_list_shows_progress_and_the_bulk_earn_button(marketer, org):
    BulkJobFactory(org=org, status="RUNNING", total=200, done=50, failed=0)

    html = marketer.get(reverse("admin:wallets_bulkjob_changelist")).content.decode()

    assert "50 of 200 (25%) · failed 0" in html
    assert reverse("admin:wallets_bulkjob_earn") in html
    # "Issue a promotion" opens the list of the promotions that can be issued
    issuable = PromotionFactory(org=org, type=PromotionType.EARNING)
    reward = PromotionFactory(org=org, type=PromotionType.REWARD)
    listing = marketer.get(
        reverse("admin:promotions_promotion_changelist") + "?type__in=CUSTOMER,EARNING&active__exact=1"
    )
    assert listing.status_code == 200
    html = listing.content.decode()
    page = "admin:promotions_promotion_change"
    assert reverse(page, args=[issuable.pk]) in html and reverse(page, args=[reward.pk]) not in html


# --- bulk earn ---------------------------------------------------------------------------------------


def test_bulk_earn_flow(marketer, org, confirm):
    # given an EARNING and a REWARD promotion, 3 customers, an unknown one and a duplicate
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, name="Coffee")
    reward = PromotionFactory(org=org, type=PromotionType.REWARD, name="Cake")
    customers = CustomerFactory.create_batch(3, org=org)
    url = reverse("admin:wallets_bulkjob_earn")
    data = {
        "identifier_type": "externalId",
        "identifiers": "\n".join(c.external_id for c in customers) + f"\nNOBODY\n{customers[0].external_id}",
        "earned_from_type": "MILESTONE",
        "earned_from_id": "spring-10-visits",
        "entries-TOTAL_FORMS": "5",
        "entries-INITIAL_FORMS": "0",
        "entries-0-promotion": earning.pk,
        "entries-0-earn_count": "2",
        "entries-1-promotion": reward.pk,
        "entries-1-earn_count": "1",
    }

    # when
    form = marketer.get(url, {"promotion": earning.pk})
    preview = marketer.post(url, data)
    page = confirm(marketer, url, preview)

    # then
    assert form.context["formset"].forms[0].initial == {"promotion": earning.pk, "earn_count": 1}
    assert (figures(preview)["total"], figures(preview)["found"]) == (5, 3)
    assert (figures(preview)["unknown"], figures(preview)["duplicates"]) == (1, 1)
    assert "Coffee (EARNING) &times; 2" in preview.content.decode()
    job = BulkJob.objects.get()
    assert (job.kind, job.status, job.done, job.failed, job.promotion) == ("EARN", "DONE", 4, 1, None)
    assert job.params == {
        "earnedFromType": "MILESTONE",
        "earnedFromId": "spring-10-visits",
        "entries": [{"promotionId": earning.pk, "earnCount": 2}, {"promotionId": reward.pk, "earnCount": 1}],
    }
    earned = EarnedPromotion.objects.filter(earned_from_id="spring-10-visits", earned_from_type="MILESTONE")
    assert earned.filter(promotion=earning).count() == 6 and earned.filter(promotion=reward).count() == 3
    assert "<br>Coffee &times; 2<br>Cake &times; 1" in page.content.decode()


def test_bulk_earn_form_errors(marketer, org, other_org):
    earning = PromotionFactory(org=org, type=PromotionType.EARNING)
    theirs = PromotionFactory(org=other_org, type=PromotionType.EARNING)
    customer = CustomerFactory(org=org)
    url = reverse("admin:wallets_bulkjob_earn")
    base = {
        "identifier_type": "id",
        "identifiers": str(customer.pk),
        "earned_from_type": "ACTIVITY",
        "earned_from_id": "x",
        "entries-TOTAL_FORMS": "2",
        "entries-INITIAL_FORMS": "0",
    }

    nothing = marketer.post(url, base)
    twice = marketer.post(
        url,
        base | {"entries-0-promotion": earning.pk, "entries-0-earn_count": "1"}
        | {"entries-1-promotion": earning.pk, "entries-1-earn_count": "1"},
    )  # fmt: skip
    too_many = marketer.post(url, base | {"entries-0-promotion": earning.pk, "entries-0-earn_count": "101"})
    foreign = marketer.post(url, base | {"entries-0-promotion": theirs.pk, "entries-0-earn_count": "1"})

    assert "Choose at least one promotion" in nothing.content.decode()
    assert "Each promotion can be chosen once" in twice.content.decode()
    assert "less than or equal to 100" in too_many.content.decode()
    assert "Select a valid choice" in foreign.content.decode()
    assert not BulkJob.objects.exists()


def test_bulk_earn_refusal_shows_on_the_form(marketer, org):
    not_started = PromotionFactory(
        org=org, type=PromotionType.EARNING, start_date=timezone.now() + dt.timedelta(days=2)
    )
    customer = CustomerFactory(org=org)

    response = marketer.post(
        reverse("admin:wallets_bulkjob_earn"),
        {
            "identifier_type": "id",
            "identifiers": str(customer.pk),
            "earned_from_type": "REWARD",
            "earned_from_id": "x",
            "entries-TOTAL_FORMS": "1",
            "entries-INITIAL_FORMS": "0",
            "entries-0-promotion": not_started.pk,
            "entries-0-earn_count": "1",
        },
    )

    assert "(code 709)" in response.content.decode() and "preview" not in response.context
    assert not BulkJob.objects.exists()


# --- entry points: the promotion page, its list action -------------------------------------------------


def test_promotion_page_shows_the_buttons_its_type_allows(marketer, org):
    customer_type = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    earning = PromotionFactory(org=org, type=PromotionType.EARNING)
    pos = PromotionFactory(org=org, type=PromotionType.POS)

    def page(p):
        return marketer.get(reverse("admin:promotions_promotion_change", args=[p.pk])).content.decode()

    assert "Issue to customers" in page(customer_type) and "Bulk earn" not in page(customer_type)
    assert issue_url(earning) in page(earning) and f"earn/?promotion={earning.pk}" in page(earning)
    assert "Issue to customers" not in page(pos) and "Bulk earn" not in page(pos)


def test_promotion_list_action_opens_the_issue_screen(marketer, org, promotion):
    other = PromotionFactory(org=org)
    url = reverse("admin:promotions_promotion_changelist")

    one = marketer.post(url, {"action": "issue_to_customers", "_selected_action": [promotion.pk]})
    two = marketer.post(
        url, {"action": "issue_to_customers", "_selected_action": [promotion.pk, other.pk]}, follow=True
    )

    assert one.status_code == 302 and one["Location"] == issue_url(promotion)
    assert "Select exactly one promotion to issue." in two.content.decode()


# --- permissions and org scoping --------------------------------------------------------------------


def test_an_auditor_sees_jobs_but_cannot_start_them(auditor, org, promotion):
    # given a job with a failure
    job = BulkJobFactory(org=org, promotion=promotion, status="FAILED", total=1, failed=1, error="boom")
    BulkJobItemFactory(job=job, line=1, identifier="7", status="FAILED", code=1007)
    promotion_page = reverse("admin:promotions_promotion_change", args=[promotion.pk])
    promotion_list = reverse("admin:promotions_promotion_changelist")

    # then reading works
    assert auditor.get(job_url(job)).status_code == 200
    assert auditor.get(job_url(job, "progress")).json()["status"] == "FAILED"
    assert auditor.get(job_url(job, "error_report")).status_code == 200
    assert auditor.get(reverse("admin:wallets_bulkjob_changelist")).status_code == 200
    # and starting anything does not
    assert auditor.get(issue_url(promotion)).status_code == 403
    assert auditor.post(issue_url(promotion), {"identifiers": "1"}).status_code == 403
    assert auditor.get(reverse("admin:wallets_bulkjob_earn")).status_code == 403
    assert auditor.post(job_url(job, "retry")).status_code == 403
    # nor is any button shown
    assert "Issue to customers" not in auditor.get(promotion_page).content.decode()
    assert "issue_to_customers" not in auditor.get(promotion_list).content.decode()
    earn_url = reverse("admin:wallets_bulkjob_earn")
    assert earn_url not in auditor.get(reverse("admin:wallets_bulkjob_changelist")).content.decode()
    assert earn_url not in auditor.get(reverse("admin:wallets_earnedpromotion_changelist")).content.decode()
    job_page = auditor.get(job_url(job)).content.decode()
    assert 'value="Retry"' not in job_page and job_url(job, "error_report") in job_page
    assert not BulkJob.objects.exclude(pk=job.pk).exists()


def test_another_orgs_promotion_and_jobs_are_404(marketer, other_org):
    theirs = PromotionFactory(org=other_org)
    job = BulkJobFactory(org=other_org, promotion=theirs, status="DONE", total=1, failed=1)
    BulkJobItemFactory(job=job, line=1, identifier="7", status="FAILED", code=1007)

    assert marketer.get(issue_url(theirs)).status_code == 404
    assert marketer.post(issue_url(theirs), {"identifiers": "1", "context_id": "x"}).status_code == 404
    for name in ("progress", "error_report", "input", "retry"):
        method = marketer.post if name == "retry" else marketer.get
        assert method(job_url(job, name)).status_code == 404, name
    assert marketer.get(job_url(job)).status_code in (302, 404)
    items = marketer.get(reverse("admin:wallets_bulkjobitem_changelist") + f"?job__id__exact={job.pk}")
    assert "1007" not in items.content.decode()
    assert not EarnedPromotion.objects.exists()


def test_a_confirmation_is_bound_to_its_user(marketer, org, promotion):
    from django.test import Client

    customer = CustomerFactory(org=org)
    preview = issue_preview(marketer, promotion, str(customer.pk))
    colleague = Client()
    user = UserFactory(org=org)
    user.user_permissions.set(permissions(*MARKETER_PERMISSIONS))
    colleague.force_login(user)

    response = colleague.post(issue_url(promotion), {"post": "yes", "draft": preview.context["draft"]})

    assert response.status_code == 403
    assert not BulkJob.objects.exists()


# --- the console: a type that cannot be issued is refused at once; the previews' buckets ------------


@pytest.mark.parametrize("kind", [PromotionType.POS, PromotionType.CODE, PromotionType.REWARD])
def test_a_type_that_cannot_be_issued_is_refused_at_the_action_and_the_screen(marketer, org, kind):
    refused = PromotionFactory(org=org, type=kind, name="Not for issuing")
    customer = CustomerFactory(org=org)
    changelist = reverse("admin:promotions_promotion_changelist")

    action = marketer.post(
        changelist, {"action": "issue_to_customers", "_selected_action": [refused.pk]}, follow=True
    )
    screen = marketer.get(issue_url(refused), follow=True)
    posted = issue_preview(marketer, refused, str(customer.pk))

    # then in plain words, before any list is given: no form, no preview, nothing written
    for response in (action, screen):
        html = response.content.decode()
        assert "“Not for issuing” is a" in html and "it cannot be issued to customers" in html
        assert "Only Customer and Earning promotions can be issued" in html
        assert "preview" not in response.context and 'name="identifiers"' not in html
    assert posted.status_code == 302 and posted["Location"] == reverse(
        "admin:promotions_promotion_change", args=[refused.pk]
    )
    assert not BulkJob.objects.exists() and not EarnedPromotion.objects.exists()


def test_issue_preview_counts_each_customer_in_one_bucket(marketer, org):
    # given a limit of 2 and four customers: new, holding one (another wave), at the limit, a replay
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=2)
    new, holding, at_limit, replay = CustomerFactory.create_batch(4, org=org)
    EarnedPromotionFactory(org=org, customer=holding, promotion=promotion, earned_from_id="wave-0")
    for wave in ("wave-0", "wave-x"):
        EarnedPromotionFactory(org=org, customer=at_limit, promotion=promotion, earned_from_id=wave)
    for wave in ("wave-1", "wave-0"):
        EarnedPromotionFactory(org=org, customer=replay, promotion=promotion, earned_from_id=wave)

    preview = issue_preview(
        marketer, promotion, "\n".join(str(c.pk) for c in (new, holding, at_limit, replay))
    )

    result = preview.context["preview"]
    buckets = (result.first_time, result.already_holding, result.over_limit, result.same_context)
    assert buckets == (1, 1, 1, 1) and sum(buckets) == result.found == 4
    assert result.to_give == 2 and "Yes, issue to 2 customers" in preview.content.decode()


def test_bulk_earn_preview_shows_instances_and_who_is_at_a_limit(marketer, org):
    # given an EARNING promotion of at most 2 per customer; one customer holds 2 already, one holds 1
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, name="Coffee", max_earning_per_customer=2)
    free, one, full = CustomerFactory.create_batch(3, org=org)
    EarnedPromotionFactory(
        org=org,
        customer=one,
        promotion=earning,
        kind="EARNED",
        earned_from_type="ACTIVITY",
        earned_from_id="a",
    )
    for key in ("a", "b"):
        EarnedPromotionFactory(
            org=org,
            customer=full,
            promotion=earning,
            kind="EARNED",
            earned_from_type="ACTIVITY",
            earned_from_id=key,
        )
    url = reverse("admin:wallets_bulkjob_earn")
    data = {
        "identifier_type": "id",
        "identifiers": "\n".join(str(c.pk) for c in (free, one, full)),
        "earned_from_type": "ACTIVITY",
        "earned_from_id": "visit-10",
        "entries-TOTAL_FORMS": "1",
        "entries-INITIAL_FORMS": "0",
        "entries-0-promotion": earning.pk,
        "entries-0-earn_count": "2",
    }

    preview = marketer.post(url, data)

    # then 2 + 1 + 0 instances, and the two customers the limit stops are named
    result = preview.context["preview"]
    [row] = result.earn_rows
    assert (row.instances, row.at_limit, sorted(row.at_limit_ids)) == (3, 2, sorted([one.pk, full.pk]))
    assert result.instances == 3
    html = preview.content.decode()
    assert 'data-figure="instances">3<' in html and "at the limit of 2 per customer" in html
    assert reverse("admin:wallets_customer_change", args=[full.pk]) in html
    assert not BulkJob.objects.exists()
