"""import_stores: an org's zones, concepts, stores and tills from one CSV file, upserted in dependency
order, every bad row reported with its line, all or nothing unless --partial."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from promotions.models import AuditEvent, Concept, Store, Till, Zone
from promotions.selectors import store_scope_for_till
from tests.factories import StoreFactory, TillFactory, ZoneFactory

HEADER = ["kind", "id", "code", "name", "parent", "zone", "concept", "store"]


def write(tmp_path, rows, header=HEADER, name="stores.csv"):
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(path, org, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_stores", str(path), "--org", str(org.pk), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(path, org, *args) -> tuple[str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_stores", str(path), "--org", str(org.pk), *args, stdout=out, stderr=err)
    return str(failure.value), out.getvalue(), err.getvalue()


# Out of order on purpose: tills and stores before the zones and concepts they name.
HIERARCHY = [
    ["TILL", "", "mum.101.t1", "Till 1", "", "", "", "101"],
    ["STORE", "101", "S101", "Andheri West", "", "75175600", "501", ""],
    ["ZONE", "75175600", "", "Andheri", "75175599", "", "", ""],
    ["ZONE", "75175599", "", "Mumbai", "75175598", "", "", ""],
    ["ZONE", "75175598", "", "West", "", "", "", ""],
    ["CONCEPT", "501", "", "Express", "500", "", "", ""],
    ["CONCEPT", "500", "", "Brand", "", "", "", ""],
]


def test_a_hierarchy_in_any_row_order_is_imported_and_resolves_for_the_engine(org, tmp_path):
    # when
    out, err = run(write(tmp_path, HIERARCHY), org)

    # then
    assert err == ""
    assert "zones: 3 created, 0 updated, 0 unchanged" in out
    assert "concepts: 2 created" in out and "stores: 1 created" in out and "tills: 1 created" in out
    till = Till.objects.select_related("store").get(org=org, code="mum.101.t1")
    scope = store_scope_for_till(till)
    assert (scope.store_id, scope.zone_ids, scope.concept_ids) == (
        101,
        {75175598, 75175599, 75175600},
        {500, 501},
    )
    assert Store.objects.get(org=org, external_id=101).code == "S101"
    event = AuditEvent.objects.get(org=org, action="store_hierarchy.import")
    assert event.data["counts"]["ZONE"]["created"] == 3


def test_importing_the_same_file_again_changes_nothing_and_a_changed_file_updates(org, tmp_path):
    run(write(tmp_path, HIERARCHY), org)
    again, _ = run(write(tmp_path, HIERARCHY), org)
    assert "zones: 0 created, 0 updated, 3 unchanged" in again
    assert "tills: 0 created, 0 updated, 1 unchanged" in again

    changed = [
        ["ZONE", "75175600", "", "Andheri East", "75175598", "", "", ""],  # renamed and re-parented
        ["STORE", "102", "", "Bandra", "", "", "", ""],
        ["TILL", "", "mum.101.t1", "Till 1", "", "", "", "102"],  # moved to another store
        ["STORE", "101", "", "Andheri West", "", "", "", ""],  # zone, concept and code cleared
    ]
    out, _ = run(write(tmp_path, changed, name="changed.csv"), org)

    assert "zones: 0 created, 1 updated" in out and "stores: 1 created, 1 updated" in out
    andheri = Zone.objects.get(org=org, external_id=75175600)
    assert (andheri.name, andheri.parent.external_id) == ("Andheri East", 75175598)
    store = Store.objects.get(org=org, external_id=101)
    assert (store.zone, store.concept, store.code) == (None, None, "")
    assert Till.objects.get(org=org, code="mum.101.t1").store.external_id == 102


BAD_ROWS = [
    (
        ["REGION", "1", "", "R", "", "", "", ""],
        "kind must be one of ZONE, CONCEPT, STORE, TILL, not 'REGION'",
    ),
    (["ZONE", "", "", "Z", "", "", "", ""], "id is required for a ZONE"),
    (["ZONE", "x1", "", "Z", "", "", "", ""], "id must be a positive integer id, not 'x1'"),
    (["ZONE", "0", "", "Z", "", "", "", ""], "id must be a positive integer id, not '0'"),
    (["ZONE", "9" * 25, "", "Z", "", "", "", ""], "id must be a positive integer id"),
    (["ZONE", "1", "", "", "", "", "", ""], "name is required (at most 200 characters)"),
    (["ZONE", "1", "", "Z", "", "5", "", ""], "zone: not a column of ZONE rows"),
    (["ZONE", "1", "", "Z", "1", "", "", ""], "parent 1: a zone cannot be its own parent"),
    (["ZONE", "1", "", "Z", "404", "", "", ""], "parent 404: no zone of the org has this id"),
    (["STORE", "9", "", "S", "", "404", "", ""], "zone 404: no zone of the org has this id"),
    (["STORE", "9", "", "S", "", "", "404", ""], "concept 404: no concept of the org has this id"),
    (["STORE", "7", "", "S", "", "", "", ""], "STORE 7 is already on line 2"),
    (["TILL", "", "Till-1", "T", "", "", "", "7"], "code 'Till-1' is not a till code"),
    (["TILL", "", "ab", "T", "", "", "", "7"], "code 'ab' is not a till code"),
    (["TILL", "", "pos.1", "T", "", "", "", ""], "store is required for a TILL"),
    (["TILL", "", "pos.1", "T", "", "", "", "404"], "store 404: no store of the org has this id"),
    (["TILL", "5", "pos.1", "T", "", "", "", "7"], "id: not a column of TILL rows"),
    (["ZONE", "1", "", "Z\x00", "", "", "", ""], "a cell holds a NUL character"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS, ids=[reason[:40] for _, reason in BAD_ROWS])
def test_a_bad_row_is_reported_with_its_line_and_nothing_is_imported(org, tmp_path, row, reason):
    # given a good store on line 2 and the bad row on line 3
    path = write(tmp_path, [["STORE", "7", "", "Good", "", "", "", ""], row])

    # when
    message, _, err = run_failing(path, org)

    # then
    assert err.startswith(f"line 3: {reason}"), err
    assert "nothing was imported" in message
    assert not Store.objects.filter(org=org).exists()
    assert not AuditEvent.objects.filter(org=org).exists()


def test_partial_imports_the_valid_rows_and_rejects_what_depends_on_a_rejected_one(org, tmp_path):
    rows = [
        ["ZONE", "1", "", "", "", "", "", ""],  # line 2: no name
        ["STORE", "7", "", "In zone 1", "", "1", "", ""],  # line 3: its zone was rejected
        ["TILL", "", "pos.7", "T", "", "", "", "7"],  # line 4: its store was rejected
        ["STORE", "8", "", "Fine", "", "", "", ""],  # line 5
        ["STORE", "8", "", "Again", "", "", "", ""],  # line 6: repeats line 5's id
    ]

    message, out, err = run_failing(write(tmp_path, rows), org, "--partial")

    assert err.splitlines() == [
        "line 2: name is required (at most 200 characters)",
        "line 3: zone 1: no zone of the org has this id",
        "line 4: store 7: no store of the org has this id",
        "line 6: STORE 8 is already on line 5",
    ]
    assert "stores: 1 created" in out
    assert "4 of 5 row(s) rejected; the others were imported" in message
    assert list(Store.objects.filter(org=org).values_list("external_id", flat=True)) == [8]


def test_a_parent_that_would_close_a_cycle_is_rejected(org, tmp_path):
    # given zones 1 > 2, and 4, in the org
    top = ZoneFactory(org=org, external_id=1)
    ZoneFactory(org=org, external_id=2, parent=top)
    ZoneFactory(org=org, external_id=4)

    # when: the file puts 1 under 2, and 3 under 4 under 3
    rows = [
        ["ZONE", "1", "", "Top", "2", "", "", ""],
        ["ZONE", "3", "", "A", "4", "", "", ""],
        ["ZONE", "4", "", "B", "3", "", "", ""],
    ]
    _, _, err = run_failing(write(tmp_path, rows), org, "--partial")

    # then: each cycle is refused at the row that closes it
    assert err.splitlines() == [
        "line 2: parent 2: would make a cycle of zones",
        "line 4: parent 3: would make a cycle of zones",
    ]
    assert Zone.objects.get(org=org, external_id=1).parent is None
    assert Zone.objects.get(org=org, external_id=3).parent.external_id == 4


def test_store_codes_stay_unique_but_may_move_between_stores_of_the_file(org, tmp_path):
    StoreFactory(org=org, external_id=1, code="A")
    StoreFactory(org=org, external_id=2, code="B")
    StoreFactory(org=org, external_id=3, code="C")

    swapped = [
        ["STORE", "1", "B", "One", "", "", "", ""],
        ["STORE", "2", "A", "Two", "", "", "", ""],
        ["STORE", "4", "C", "Four", "", "", "", ""],  # C belongs to store 3, not in the file
    ]
    _, _, err = run_failing(write(tmp_path, swapped), org, "--partial")

    assert err.splitlines() == ["line 4: code 'C': store 3 of the org has it"]
    codes = dict(Store.objects.filter(org=org).values_list("external_id", "code"))
    assert codes == {1: "B", 2: "A", 3: "C"}


def test_ids_are_the_orgs_own(org, other_org, tmp_path):
    TillFactory(org=other_org, code="pos.1", store=StoreFactory(org=other_org, external_id=7))
    _, _, err = run_failing(write(tmp_path, [["TILL", "", "pos.1", "T", "", "", "", "7"]]), org)
    assert err.startswith("line 2: store 7: no store of the org has this id")
    run(
        write(
            tmp_path,
            [["STORE", "7", "", "Mine", "", "", "", ""], ["TILL", "", "pos.1", "T", "", "", "", "7"]],
        ),
        org,
    )
    assert Till.objects.get(org=org, code="pos.1").store.org_id == org.pk
    assert Till.objects.get(org=other_org, code="pos.1").store.name != "Mine"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("kind,id,colour\n", "bad header row (unknown: colour; missing: name"),
        ("kind,name,name\n", "a column may appear once"),
        ("kind,name\nZONE\n", "line 2 has 1 cells; the header has 2"),
    ],
)
def test_a_malformed_file_imports_nothing(org, tmp_path, content, message):
    path = tmp_path / "stores.csv"
    path.write_text(content, encoding="utf-8")
    assert message in run_failing(path, org)[0]


def test_a_file_that_is_not_utf8_or_a_missing_org_is_refused(org, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_bytes(b"kind,name\nZONE,\xff\n")
    assert "not UTF-8" in run_failing(path, org)[0]
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_stores", str(path), "--org", "999999999", stdout=io.StringIO())


def test_only_the_needed_columns_may_be_given(org, tmp_path):
    path = write(tmp_path, [["CONCEPT", "5", "Brand"]], header=["kind", "id", "name"])
    out, _ = run(path, org)
    assert "concepts: 1 created" in out
    assert Concept.objects.get(org=org).external_id == 5
