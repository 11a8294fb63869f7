"""Uploading existing codes (CSV): validation, the refused rows' report, set-based inserts; the export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from promotions.audit import Actor
from promotions.codegen.services import REPORT_MAX, promo_codes_upload
from promotions.models import PromoCode, PromotionType
from promotions_site.errors import PromotionError
from tests.csv_support import FORMULAS, as_text, csv_table
from tests.factories import PromotionFactory

ACTOR = Actor.system("test")


@pytest.fixture
def code_promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CODE)


def upload(promotion, text: str, request_id="u1"):
    return promo_codes_upload(
        promotion=promotion,
        file=io.StringIO(text, newline=""),
        file_name="codes.csv",
        request_id=request_id,
        actor=ACTOR,
    )


def test_good_rows_are_inserted_and_refused_rows_reported(code_promotion, org):
    # given a code another promotion of the org has
    other = PromotionFactory(org=org, type=PromotionType.CODE)
    upload(other, "TAKEN1\n", request_id="other")
    text = "\n".join(
        [
            "code",  # header (line 1)
            "summer01",  # 2: upper-cased
            "  WINTER02 ",  # 3: trimmed
            "ABCD",  # 4: 903
            "A" * 41,  # 5: 904
            "BAD CODE",  # 6: 902
            "SUMMER01",  # 7: repeats line 2
            "",  # 8: blank, skipped
            "TAKEN1",  # 9: the org has it
            "-DASH1",  # 10: fine (a separator may lead)
        ]
    )
    # when
    batch = upload(code_promotion, text)
    # then
    assert sorted(PromoCode.objects.filter(batch=batch).values_list("code", flat=True)) == [
        "-DASH1",
        "SUMMER01",
        "WINTER02",
    ]
    assert (batch.status, batch.total, batch.done, batch.failed) == ("DONE", 8, 3, 5)
    assert [(r["line"], r["errorCode"]) for r in batch.report] == [
        (4, 903),
        (5, 904),
        (6, 902),
        (7, 409),
        (9, 409),
    ]
    assert batch.report[3]["reason"] == "Repeats line 2 of the file."
    assert batch.report[4]["reason"] == "The org already has this code."


def test_repeats_across_chunks_are_reported_as_repeats(code_promotion, settings):
    settings.PROMO_CODE_CHUNK_SIZE = 2
    batch = upload(code_promotion, "AAAAA1\nBBBBB2\nAAAAA1\n")
    assert (batch.done, batch.failed) == (2, 1)
    assert batch.report[0]["reason"] == "Repeats an earlier line of the file."


def test_report_is_capped_but_every_refusal_counted(code_promotion, settings, monkeypatch):
    from promotions.codegen import services

    monkeypatch.setattr(services, "REPORT_MAX", 3)
    batch = upload(code_promotion, "X\n" * 5)
    assert (batch.failed, len(batch.report)) == (5, 3)
    assert REPORT_MAX == 10_000


def test_same_request_id_does_not_read_again(code_promotion):
    first = upload(code_promotion, "AAAAA1\n")
    again = upload(code_promotion, "AAAAA1\nBBBBB2\n")
    assert again.pk == first.pk and PromoCode.objects.count() == 1


def test_only_code_promotions(org):
    with pytest.raises(PromotionError):
        upload(PromotionFactory(org=org, type=PromotionType.EARNING), "AAAAA1\n")


def test_commands_upload_and_export(code_promotion, tmp_path):
    # given
    source = tmp_path / "codes.csv"
    source.write_text("code\nGOOD01\nBAD!CODE\n-LEAD1\n", encoding="utf-8")
    out = io.StringIO()
    # when
    call_command("upload_codes", code_promotion.pk, str(source), "--request-id", "cmd-1", stdout=out)
    # then
    assert "2 codes added, 1 rows refused" in out.getvalue()
    rejects = csv_table((tmp_path / "codes.csv.rejects.csv").read_text(encoding="utf-8"))
    assert rejects == [["line", "code", "errorCode", "reason"], ["3", "BAD!CODE", "902", rejects[1][3]]]
    # and the export writes every code, a leading - guarded as text
    target = tmp_path / "export.csv"
    call_command("export_codes", code_promotion.pk, "--output", str(target), stderr=io.StringIO())
    table = csv_table(target.read_text(encoding="utf-8"))
    assert table[0] == ["code", "customerId", "linkedOn", "active", "createdOn", "batchId"]
    assert sorted(row[0] for row in table[1:]) == [as_text("-LEAD1"), "GOOD01"]


def test_generate_codes_command(code_promotion):
    out = io.StringIO()
    call_command(
        "generate_codes", code_promotion.pk, "--count", "1200", "--pattern", "A-####-????", "--request-id", "g1",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    assert "DONE, 1,200 of 1,200 codes" in out.getvalue()
    assert PromoCode.objects.filter(promotion=code_promotion).count() == 1200


def test_report_guards_formulas(code_promotion, client):
    # given refused rows that hold formulas
    from tests.admin_support import staff_login

    buffer = io.StringIO()
    csv.writer(buffer).writerows([formula] for formula in FORMULAS[:4])
    text = buffer.getvalue()
    batch = upload(code_promotion, text)
    staff_login(client, code_promotion.org)
    # when
    response = client.get(f"/admin/promotions/promocodebatch/{batch.pk}/report/")
    # then
    table = csv_table(b"".join(response.streaming_content).decode())
    assert [row[1] for row in table[1:]] == [as_text(formula) for formula in FORMULAS[:4]]


def test_nul_and_oversized_cells_are_reported_not_500(code_promotion):
    batch = upload(code_promotion, "AB\x00CDE\n" + "Z" * 500 + "\nGOOD01\n")
    batch.refresh_from_db()
    assert (batch.done, batch.failed) == (1, 2)
    assert batch.report[0]["code"] == "AB\ufffdCDE" and len(batch.report[1]["code"]) == 100


def test_a_cell_over_the_csv_limit_stops_the_upload_with_a_400(code_promotion):
    with pytest.raises(PromotionError) as refused:
        upload(code_promotion, "GOOD01\n" + "Z" * 200_000 + "\n")
    assert refused.value.code == 400 and "Line 2" in refused.value.message
