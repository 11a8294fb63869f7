"""import_promotions: create-promotion bodies from JSON or CSV, validated and created as the API does."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from promotions.models import AuditEvent, Promotion
from promotions.schema import PROMOTION_RESPONSE_EXAMPLE
from promotions.serializers import PromotionOutputSerializer
from tests.factories import PromotionFactory
from tests.promotions.test_promotion_create import body as create_body

URL = "/api_gateway/v1/promotions"


def body(name: str, **changes) -> dict:
    """The create tests' body (running from yesterday for 60 days), named `name`."""
    return create_body(name=name, **changes)


def write_json(tmp_path, document, name="promotions.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def write_csv(tmp_path, header, rows, name="promotions.csv"):
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path, org, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_promotions", str(path), "--org", str(org.pk), "--no-progress", *args, stdout=out, stderr=err
    )
    return out.getvalue(), err.getvalue()


def run_failing(path, org, *args) -> tuple[str, str, str]:
    """Run a command expected to exit non-zero: (CommandError message, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(
            "import_promotions",
            str(path),
            "--org",
            str(org.pk),
            "--no-progress",
            *args,
            stdout=out,
            stderr=err,
        )
    return str(failure.value), out.getvalue(), err.getvalue()


def names(org) -> list[str]:
    return sorted(Promotion.objects.for_org(org).values_list("name", flat=True))


COMPARED = ("type", "priority", "active", "messageLabel", "condition", "action", "startDate", "endDate",
            "campaignId", "promotionRestrictions", "mode", "maxIssuancePerCustomer", "isStackable",
            "customerActivationRequired", "earnedValidityDays", "maxEarningPerCustomer", "customFieldValues")  # fmt: skip


def test_json_array_creates_what_the_create_api_creates(api, org, tmp_path):
    # given: a file of two promotions, and the same configuration created through the API
    path = write_json(
        tmp_path, [body("Imported A"), body("Imported B", type="EARNING", earnedValidityDays=7)]
    )
    via_api = api.post(URL, body("Through the API"), format="json").json()["data"]

    # when
    output, errors = run(path, org)

    # then: both created, identical to the API's result but for name, id and author
    assert names(org) == ["Imported A", "Imported B", "Through the API"]
    imported = Promotion.objects.get(org=org, name="Imported A")
    data = PromotionOutputSerializer(imported).data
    assert {key: data[key] for key in COMPARED} == {key: via_api[key] for key in COMPARED}
    assert imported.created_by == "import_promotions"
    assert Promotion.objects.get(org=org, name="Imported B").earned_validity_days == 7
    assert (
        AuditEvent.objects.filter(
            org=org, action="promotion.create", actor_type="SYSTEM", actor_name="import_promotions"
        ).count()
        == 2
    )
    assert f"index 0 'Imported A': created {imported.pk}" in output
    assert "2 created, 0 already existed, 0 failed" in output
    assert errors == ""


def test_json_object_with_a_promotions_array(org, tmp_path):
    path = write_json(tmp_path, {"promotions": [body("Wrapped")]})
    run(path, org)
    assert names(org) == ["Wrapped"]


def test_csv_scalars_as_cells_and_json_parts_as_json_cells(org, tmp_path):
    # given: one row per promotion; empty cells are omitted fields
    header = ["name", "type", "startDateISO", "endDateISO", "priority", "isStackable", "maxIssuancePerCustomer",
              "messageLabel", "condition", "action", "promotionRestrictions", "customFieldValues"]  # fmt: skip
    first, second = body("CSV one"), body("CSV two")
    rows = [
        [first["name"], "CUSTOMER", first["startDateISO"], first["endDateISO"], "3", "true", "-1",
         "Say, \"hello\"", json.dumps(first["condition"]), json.dumps(first["action"]),
         json.dumps({"Customer": [{"kpi": "REDEMPTION", "limit": 2}]}), json.dumps({"channel": "app"})],
        [second["name"], "POS", second["startDateISO"], second["endDateISO"], "", "", "",
         "", json.dumps(second["condition"]), json.dumps(second["action"]), "", ""],
    ]  # fmt: skip
    path = write_csv(tmp_path, header, rows)

    # when
    output, _ = run(path, org)

    # then
    one = Promotion.objects.get(org=org, name="CSV one")
    assert (one.priority, one.is_stackable, one.max_issuance_per_customer) == (3, True, -1)
    assert one.message_label == 'Say, "hello"'
    # stored as echoed: Capillary's shape, values as six-decimal strings
    assert one.condition == PROMOTION_RESPONSE_EXAMPLE["data"]["condition"]
    assert one.custom_field_values == {"channel": "app"}
    assert list(one.restrictions.values_list("level", "kpi", "limit")) == [("Customer", "REDEMPTION", 2)]
    two = Promotion.objects.get(org=org, name="CSV two")
    assert (two.type, two.priority, two.is_stackable, two.max_issuance_per_customer) == ("POS", 0, False, 1)
    assert not two.restrictions.exists()
    assert "line 2 'CSV one': created" in output
    assert "line 3 'CSV two': created" in output


def test_any_invalid_entry_imports_nothing_and_every_failure_is_reported(org, tmp_path):
    # given: a valid entry, a shape error, an ended promotion and a restriction rule broken
    ended = body("Ended", startDateISO="2020-01-01T00:00:00+05:30", endDateISO="2020-02-01T00:00:00+05:30")
    path = write_json(
        tmp_path,
        [
            body("Fine"),
            body(
                "Bad kpi",
                condition={"type": "CART", "cartCondition": {"kpi": "X", "operator": "EQUALS", "value": 1}},
            ),
            ended,
            body("No code limit", type="CODE"),
            "not an object",
        ],
    )

    # when
    message, output, errors = run_failing(path, org)

    # then: nothing written, each failure named with its index and the API's code and message
    assert names(org) == []
    assert not AuditEvent.objects.filter(org=org, action="promotion.create").exists()
    assert "4 of 5 promotion(s) failed; nothing was imported" in message
    lines = errors.splitlines()
    assert "index 1 'Bad kpi': 400 condition.cartCondition.kpi: \"X\" is not a valid choice." in lines
    assert "index 2 'Ended': 706 Promotion has expired: endDate is in the past." in lines
    assert "index 3 'No code limit': 400 promotionRestrictions.Code is required for CODE promotions." in lines
    assert any(line.startswith("index 4: 400 Invalid data. Expected a dictionary") for line in lines)
    assert "Fine" not in errors
    assert "created" not in output


def test_partial_creates_the_valid_ones_and_exits_non_zero(org, tmp_path):
    # given
    path = write_json(
        tmp_path, [body("Good 1"), body("Broken", action={"type": "CART_BASED"}), body("Good 2")]
    )

    # when
    message, output, errors = run_failing(path, org, "--partial")

    # then
    assert names(org) == ["Good 1", "Good 2"]
    assert "1 of 3 promotion(s) failed; the others were imported" in message
    assert "2 created, 0 already existed, 1 failed" in output
    assert "index 1 'Broken': 400 action.cartBasedAction: Required when action type is CART_BASED." in errors


def test_a_name_twice_in_the_file_or_taken_by_another_promotion_is_716(org, tmp_path):
    # given: the org has "Taken" with another configuration
    PromotionFactory(org=org, name="Taken")
    path = write_csv(
        tmp_path,
        ["name", "type", "startDateISO", "endDateISO", "condition", "action"],
        [
            [b["name"], b["type"], b["startDateISO"], b["endDateISO"], json.dumps(b["condition"]), json.dumps(b["action"])]
            for b in (body("Twice"), body("Taken"), body("Twice", priority=2))
        ],
    )  # fmt: skip

    # when
    _, _, errors = run_failing(path, org, "--partial")

    # then: the first "Twice" is created, the second is 716, so is "Taken" (naming what differs)
    assert names(org) == ["Taken", "Twice"]
    lines = errors.splitlines()
    assert (
        "line 4 'Twice': 716 Promotion name must be unique. line 2 of this file has the name 'Twice' too."
        in lines
    )
    [taken] = [
        line for line in lines if line.startswith("line 3 'Taken': 716 Promotion name must be unique.")
    ]
    assert "differs in" in taken and "condition" in taken and "endDate" in taken


def test_importing_the_same_file_again_changes_nothing(org, tmp_path):
    # given: a file imported once; one of its promotions deactivated since
    path = write_json(tmp_path, [body("Again A"), body("Again B", active=False)])
    run(path, org)
    Promotion.objects.filter(org=org, name="Again A").update(active=False)
    before = {p.pk: p.last_updated_on for p in Promotion.objects.for_org(org)}
    events = AuditEvent.objects.filter(org=org).count()

    # when
    output, errors = run(path, org)

    # then: every entry is reported as existing and skipped; exit 0; nothing written
    assert {p.pk: p.last_updated_on for p in Promotion.objects.for_org(org)} == before
    assert AuditEvent.objects.filter(org=org).count() == events
    assert "0 created, 2 already existed, 0 failed" in output
    assert "index 0 'Again A': already exists" in output
    assert errors == ""


def test_the_active_promotion_cap_reached_mid_file(org, tmp_path):
    # given: room for one more active promotion; the file has two active ones and an inactive one
    org.max_active_promotions = 2
    org.save()
    PromotionFactory(org=org, name="Already active")
    path = write_json(tmp_path, [body("Fits"), body("Over the cap"), body("Inactive", active=False)])

    # when: all or nothing
    message, _, errors = run_failing(path, org)

    # then
    assert names(org) == ["Already active"]
    assert "index 1 'Over the cap': 705 Exceeded maximum active promotions for an org." in errors.splitlines()
    assert "1 of 3" in message

    # when: partial
    _, output, errors = run_failing(path, org, "--partial")

    # then: the one that fits and the inactive one are created
    assert names(org) == ["Already active", "Fits", "Inactive"]
    assert "705" in errors and "2 created" in output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '[{"name": "x",', "not valid JSON"),
        ("scalar.json", '"just a string"', "expected an array of promotions"),
        ("extra.json", '{"promotions": [], "more": 1}', "expected an array of promotions"),
        ("empty.csv", "", "empty file"),
        ("typo.csv", "name,typ\nA,POS\n", "unknown column(s) 'typ'"),
        ("twice.csv", "name,name\nA,B\n", "named twice"),
        ("cells.csv", "name,type\nA,POS,extra\n", "line 2 has 3 cells; the header has 2"),
        ("quote.csv", 'name,type\n"A,POS\n', "malformed CSV"),
        ("latin1.csv", "name\nCaf\xe9\n", "not UTF-8"),
    ],
)
def test_a_malformed_file_is_a_command_error_and_writes_nothing(org, tmp_path, name, content, message):
    # given
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))

    # when / then
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("import_promotions", str(path), "--org", str(org.pk), "--partial", "--no-progress")
    assert names(org) == []


def test_a_malformed_row_after_valid_ones_writes_nothing_even_with_partial(org, tmp_path):
    # given: a valid row, then a row whose quote never closes
    valid = body("Valid first")
    row = io.StringIO()
    csv.writer(row).writerow(
        [valid["name"], valid["type"], valid["startDateISO"], valid["endDateISO"],
         json.dumps(valid["condition"]), json.dumps(valid["action"])]
    )  # fmt: skip
    path = tmp_path / "half.csv"
    path.write_text(
        "name,type,startDateISO,endDateISO,condition,action\n" + row.getvalue() + '"Broken,POS\n',
        encoding="utf-8",
    )

    # when / then
    with pytest.raises(CommandError, match="malformed CSV"):
        call_command("import_promotions", str(path), "--org", str(org.pk), "--partial", "--no-progress")
    assert names(org) == []


def test_a_json_cell_that_is_not_json_is_that_entrys_error(org, tmp_path):
    path = write_csv(tmp_path, ["name", "type", "condition"], [["Cell", "POS", "{not json"]])
    _, _, errors = run_failing(path, org)
    assert errors.startswith("line 2 'Cell': 400 condition: not valid JSON (")


def test_unknown_org_missing_file_and_other_extensions_are_command_errors(org, tmp_path):
    path = write_json(tmp_path, [body("Nowhere")])
    with pytest.raises(CommandError, match="Organization 999999 does not exist"):
        call_command("import_promotions", str(path), "--org", "999999")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_promotions", str(tmp_path / "missing.json"), "--org", str(org.pk))
    with pytest.raises(CommandError, match=r"must end in \.json or \.csv"):
        call_command("import_promotions", str(tmp_path / "promotions.xlsx"), "--org", str(org.pk))
    assert not Promotion.objects.exists()
