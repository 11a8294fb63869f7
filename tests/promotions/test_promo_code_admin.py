"""The promo-code admin: the promotion page's links, generate and upload screens, the batch page and
its progress, the code list (search, filters, org scope), the export."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from promotions.models import PromoCode, PromoCodeBatch, PromotionType
from tests.admin_support import admin_url, csv_rows, staff_login
from tests.factories import CustomerFactory, PromotionFactory


@pytest.fixture
def code_promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CODE)


@pytest.fixture
def marketer(client, org):
    staff_login(client, org)
    return client


def test_promotion_page_links_to_the_code_screens(marketer, code_promotion):
    page = marketer.get(admin_url(PromotionFactory._meta.model, "change", code_promotion.pk))
    assert page.status_code == 200
    for view in ("generate", "upload", "export"):
        assert f"/admin/promotions/promocodebatch/{view}/{code_promotion.pk}/" in page.content.decode()


def test_generate_job_completes_and_its_page_shows_progress(
    marketer, code_promotion, settings, django_capture_on_commit_callbacks
):
    # given
    settings.PROMO_CODES_INLINE_MAX = (
        10  # a background batch (run at once in tests: BULK_JOBS_IN_PROCESS=sync)
    )
    settings.PROMO_CODE_CHUNK_SIZE = 700
    url = f"/admin/promotions/promocodebatch/generate/{code_promotion.pk}/"
    form = marketer.get(url)
    assert form.status_code == 200
    request_id = form.context["form"].initial["request_id"]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer.post(
            url,
            {"count": 2000, "length": 10, "charset": "ALPHANUMERIC", "request_id": request_id},
        )
    # then
    batch = PromoCodeBatch.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/promocodebatch/{batch.pk}/change/")
    assert (batch.status, batch.done) == ("DONE", 2000)
    page = marketer.get(response.url)
    assert page.status_code == 200 and "2,000 of 2,000 codes (100%)" in page.content.decode()
    progress = marketer.get(f"/admin/promotions/promocodebatch/{batch.pk}/progress/").json()
    assert (progress["status"], progress["percent"], progress["finished"]) == ("DONE", 100, True)
    # a second submit of the same form: the same batch
    marketer.post(url, {"count": 2000, "length": 10, "charset": "ALPHANUMERIC", "request_id": request_id})
    assert PromoCodeBatch.objects.count() == 1 and PromoCode.objects.count() == 2000


@pytest.mark.parametrize(
    "data",
    [
        {"count": 10, "length": 3, "charset": "ALPHANUMERIC"},
        {"count": 10**6, "length": 6, "charset": "NUMERIC"},
        {"count": 10, "length": 10, "charset": "CUSTOM", "alphabet": "a"},
        {"count": "", "length": 10, "charset": "ALPHANUMERIC"},
        {"count": 10, "length": 10, "charset": "ALPHANUMERIC", "prefix": "\x00"},
    ],
)
def test_refused_generation_shows_the_form_again(marketer, code_promotion, data):
    response = marketer.post(
        f"/admin/promotions/promocodebatch/generate/{code_promotion.pk}/", {**data, "request_id": "r"}
    )
    assert response.status_code == 200
    assert response.context["errors"]
    assert not PromoCodeBatch.objects.exists()


def test_upload_and_its_report(marketer, code_promotion):
    upload = SimpleUploadedFile("codes.csv", b"code\nGOOD01\nBAD\n", content_type="text/csv")
    response = marketer.post(
        f"/admin/promotions/promocodebatch/upload/{code_promotion.pk}/",
        {"csv_file": upload, "request_id": "u"},
    )
    batch = PromoCodeBatch.objects.get()
    assert response.status_code == 302
    assert (batch.done, batch.failed) == (1, 1)
    page = marketer.get(response.url)
    assert page.status_code == 200 and "Download refused rows" in page.content.decode()
    rows = csv_rows(marketer.get(f"/admin/promotions/promocodebatch/{batch.pk}/report/"))
    assert rows == [{"line": "3", "code": "BAD", "errorCode": "903", "reason": rows[0]["reason"]}]


def test_upload_not_utf8_is_a_form_error(marketer, code_promotion):
    upload = SimpleUploadedFile("codes.csv", b"\xff\xfe\x00", content_type="text/csv")
    response = marketer.post(
        f"/admin/promotions/promocodebatch/upload/{code_promotion.pk}/",
        {"csv_file": upload, "request_id": "u"},
    )
    assert response.status_code == 200 and not PromoCodeBatch.objects.exists()


def test_code_list_search_filters_and_org_scope(marketer, code_promotion, other_org):
    # given
    customer = CustomerFactory(org=code_promotion.org)
    from django.utils import timezone

    PromoCode.objects.create(org=code_promotion.org, promotion=code_promotion, code="FINDME1")
    PromoCode.objects.create(
        org=code_promotion.org,
        promotion=code_promotion,
        code="LINKED1",
        customer=customer,
        linked_on=timezone.now(),
    )
    foreign = PromotionFactory(org=other_org, type=PromotionType.CODE)
    PromoCode.objects.create(org=other_org, promotion=foreign, code="FOREIGN1")
    url = admin_url(PromoCode)
    # when / then
    listed = marketer.get(url)
    assert listed.status_code == 200
    assert "FINDME1" in listed.content.decode() and "FOREIGN1" not in listed.content.decode()
    assert "FINDME1" in marketer.get(url + "?q=findme1").content.decode()
    assert "LINKED1" not in marketer.get(url + "?q=findme1").content.decode()
    assert "FOREIGN1" not in marketer.get(url + "?q=foreign1").content.decode()
    unlinked = marketer.get(url + "?linked=no").content.decode()
    assert "FINDME1" in unlinked and "LINKED1" not in unlinked
    assert marketer.get(url + f"?promotion={code_promotion.pk}").status_code == 200
    assert marketer.get(admin_url(PromoCodeBatch)).status_code == 200


def test_other_orgs_promotion_and_batch_are_404(marketer, other_org):
    foreign = PromotionFactory(org=other_org, type=PromotionType.CODE)
    for view in ("generate", "upload", "export"):
        assert marketer.get(f"/admin/promotions/promocodebatch/{view}/{foreign.pk}/").status_code == 404
    batch = PromoCodeBatch.objects.create(org=other_org, promotion=foreign, kind="GENERATE", request_id="x")
    assert marketer.get(f"/admin/promotions/promocodebatch/{batch.pk}/progress/").status_code == 404


def test_export_streams_the_codes(marketer, code_promotion):
    PromoCode.objects.create(org=code_promotion.org, promotion=code_promotion, code="-MINUS1")
    rows = csv_rows(marketer.get(f"/admin/promotions/promocodebatch/export/{code_promotion.pk}/"))
    assert [row["code"] for row in rows] == ["'-MINUS1"]


def test_cancel_from_the_page(marketer, code_promotion):
    batch = PromoCodeBatch.objects.create(
        org=code_promotion.org,
        promotion=code_promotion,
        kind="GENERATE",
        request_id="x",
        total=10,
        status="RUNNING",
    )
    response = marketer.post(f"/admin/promotions/promocodebatch/{batch.pk}/cancel/")
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == "CANCELLED"
    assert marketer.get(response.url).status_code == 200


def test_without_permission_no_generation(client, code_promotion):
    staff_login(client, code_promotion.org, codenames=["view_promotion"])
    assert client.get(f"/admin/promotions/promocodebatch/generate/{code_promotion.pk}/").status_code == 403
