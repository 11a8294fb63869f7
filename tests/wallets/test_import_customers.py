"""manage.py import_customers FILE.csv --org ID (wallets.services.customer_import.customers_import_chunk)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from promotions.models import AuditEvent
from tests.csv_support import FORMULAS, as_text
from tests.factories import CustomerFactory, OrganizationFactory
from wallets.models import Customer

HEADER = "customerId,mobile,email,externalId,firstName,lastName,source"
FIELDS = ("mobile", "email", "external_id", "first_name", "last_name", "source")


def write_file(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run_import(path: Path, org, *args: str) -> dict[str, int]:
    """Run the command; its summary figures (rows read, inserted, updated, unchanged, rejected)."""
    out = io.StringIO()
    call_command("import_customers", str(path), "--org", str(org.pk), "--no-progress", *args, stdout=out)
    figures = dict(
        re.findall(r"^(rows read|inserted|updated|unchanged|rejected): (\d+)", out.getvalue(), re.M)
    )
    assert "elapsed:" in out.getvalue() and "rows/s:" in out.getvalue()
    return {name: int(value) for name, value in figures.items()}


def rejects_of(path: Path, org) -> list[list[str]]:
    """The rows (without the header) of the rejects file an import of `path` into `org` writes by
    default, each [line, reason, customerId, ..., source]; there is no file when nothing was rejected."""
    report = Path(f"{path}.{org.pk}.rejects.csv")
    if not report.exists():
        assert not list(path.parent.glob("*.rejects.csv*"))
        return []
    with report.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line", "reason", *HEADER.split(",")]
    return rows[1:]


def stored(org) -> list[tuple]:
    return list(Customer.objects.for_org(org).order_by("pk").values_list("pk", *FIELDS))


def test_inserts_new_customers_in_the_customers_api_spelling(org, tmp_path):
    # given
    path = write_file(
        tmp_path,
        ",+919876543210, Asha.Rao@Example.COM ,POS-1,Asha,Rao,WEBSITE",
        ", ,,POS-2,Ravi,,",  # a blank mobile is no mobile
    )
    # when
    figures = run_import(path, org)
    # then
    assert figures == {"rows read": 2, "inserted": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert [row[1:] for row in stored(org)] == [
        ("919876543210", "asha.rao@example.com", "POS-1", "Asha", "Rao", "WEBSITE"),
        (None, None, "POS-2", "Ravi", "", "INSTORE"),
    ]
    assert rejects_of(path, org) == []
    event = AuditEvent.objects.get(org=org, action="customer.import")
    assert (event.actor_type, event.actor_name) == ("SYSTEM", "import_customers")
    assert event.data == {
        "file": "customers.csv",
        "firstLine": 2,
        "lastLine": 3,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }


def test_updates_a_customer_by_customer_id_and_keeps_what_a_cell_leaves_empty(org, tmp_path):
    # given
    customer = CustomerFactory(
        org=org, mobile="919000000001", email="a@example.com", external_id="A1", first_name="A", last_name="Z"
    )
    path = write_file(tmp_path, f"{customer.pk},,new@example.com,,Anna,,MOBILE_APP")
    # when
    figures = run_import(path, org)
    # then
    assert (figures["updated"], figures["inserted"], figures["unchanged"]) == (1, 0, 0)
    assert stored(org) == [
        (customer.pk, "919000000001", "new@example.com", "A1", "Anna", "Z", "MOBILE_APP"),
    ]


def test_updates_the_customer_its_identifiers_point_at(org, tmp_path):
    # given
    by_mobile = CustomerFactory(org=org, mobile="919000000001", email=None, external_id=None)
    by_email = CustomerFactory(org=org, mobile=None, email="b@example.com", external_id=None)
    path = write_file(
        tmp_path,
        ",+919000000001,,M-1,Mona,,",  # the mobile in another spelling; adds an externalId
        ",,B@Example.com,,,Bose,",  # the email in another case
    )
    # when
    figures = run_import(path, org)
    # then
    assert (figures["updated"], figures["inserted"]) == (2, 0)
    assert stored(org) == [
        (by_mobile.pk, "919000000001", None, "M-1", "Mona", "Rao", "INSTORE"),
        (by_email.pk, None, "b@example.com", None, "Asha", "Bose", "INSTORE"),
    ]


def test_rerunning_the_same_file_changes_nothing(org, other_org, tmp_path):
    # given: a file that inserts, updates, leaves one customer as it is and rejects rows
    existing = CustomerFactory(org=org, mobile="919000000001", email="a@example.com", first_name="A")
    same = CustomerFactory(org=org, mobile="919000000002", email="s@example.com", first_name="S")
    path = write_file(
        tmp_path,
        ",919000000003,new@example.com,,New,,",
        f"{existing.pk},,,,Anna,,",
        ",919000000002,,,S,,",
        ",919000000003,,,Again,,",
        ",12,,,,,",
        f"{CustomerFactory(org=other_org).pk},,,,Other,,",
    )
    first = run_import(path, org)
    snapshot, events, first_rejects = stored(org), AuditEvent.objects.count(), rejects_of(path, org)
    # when
    again = run_import(path, org)
    # then
    assert first == {"rows read": 6, "inserted": 1, "updated": 1, "unchanged": 1, "rejected": 3}
    assert again == {"rows read": 6, "inserted": 0, "updated": 0, "unchanged": 3, "rejected": 3}
    assert stored(org) == snapshot and len(snapshot) == 3 and same.pk in [row[0] for row in snapshot]
    assert rejects_of(path, org) == first_rejects
    assert AuditEvent.objects.count() == events  # a run that writes nothing records nothing


def test_every_reject_reason_names_the_line_and_keeps_the_original_values(org, other_org, tmp_path):
    # given
    anna = CustomerFactory(org=org, mobile="919000000001", email="anna@example.com", external_id="ANNA")
    bob = CustomerFactory(org=org, mobile="919000000002", email="bob@example.com", external_id="BOB")
    stranger = CustomerFactory(org=other_org)
    path = write_file(
        tmp_path,
        ",919100000001,first@example.com,F-1,First,,",  # 2: inserted
        ",+91 9100,,,,,",  # 3
        ",,not-an-email,,,,",  # 4
        f",,,{'X' * 101},,,",  # 5
        f",919100000002,,,{'N' * 101},,",  # 6
        ",919100000003,,,,,SHOP",  # 7
        "abc,919100000004,,,,,",  # 8
        ",,,, Only , Names ,",  # 9
        ',919100000005,"line\nbreak@x.com",,,,',  # 10 (a quoted value over two lines)
        ",919100000001,,,Again,,",  # 12: the mobile of line 2
        ",,FIRST@example.com,,,,",  # 13: the email of line 2, in another case
        f"{anna.pk},,,,Anna,,",  # 14: updated
        f"{anna.pk},,,,Anna again,,",  # 15: the same customer again
        f"{stranger.pk},,,,,,",  # 16: another org's customer
        "999999999,,,,,,",  # 17: nobody's
        f"{bob.pk},919000000003,anna@example.com,,,,",  # 18: anna's email; line 14 imported anna
        f"{bob.pk},,,ANNA,,,",  # 19: anna's externalId
        ",919000000002,,,,,",  # 20: bob, unchanged
        "1,2,3",  # 21
        ",91910000000\x001,,,,,",  # 22
    )
    # when
    figures = run_import(path, org)
    # then
    assert figures == {"rows read": 20, "inserted": 1, "updated": 1, "unchanged": 1, "rejected": 17}
    dup = "duplicate identifier in the file (first at line {})".format
    sources = "FACEBOOK, WEB_ENGAGE, WECHAT, INSTORE, MARTJACK, TMALL, TAOBAO, JD, ECOMMERCE, WEBSITE, LINE, MOBILE_APP"
    rejects = rejects_of(path, org)
    assert [(int(row[0]), row[1]) for row in rejects] == [
        (3, "malformed: mobile must be 8 to 15 digits, optionally after a leading +"),
        (4, "malformed: email is not a valid address"),
        (5, "malformed: externalId longer than 100 characters"),
        (6, "malformed: firstName longer than 100 characters"),
        (7, f"malformed: source must be one of {sources}"),
        (8, "malformed: customerId must be a positive integer"),
        (9, "malformed: no identifier (customerId, mobile, email or externalId)"),
        (10, "malformed: email is not a valid address"),
        (12, dup(2)),
        (13, dup(2)),
        (15, dup(14)),
        (16, "customerId not in this org"),
        (17, "customerId not in this org"),
        (18, dup(14)),
        (19, dup(14)),
        (21, "malformed: 3 fields, the header has 7"),
        (22, "malformed: contains a NUL character"),
    ]
    # the values exactly as the file has them
    assert rejects[0][2:] == ["", "+91 9100", "", "", "", "", ""]
    assert rejects[6][2:] == ["", "", "", "", " Only ", " Names ", ""]
    assert rejects[7][4] == "line\nbreak@x.com"
    assert rejects[10][2:] == [str(anna.pk), "", "", "", "Anna again", "", ""]
    assert rejects[15][2:] == ["1", "2", "3", "", "", "", ""]
    assert stored(org)[0][4] == "Anna" and Customer.objects.for_org(org).count() == 3


def test_identifiers_of_other_customers_are_rejected(org, tmp_path):
    # given
    anna = CustomerFactory(org=org, mobile="919000000001", email="anna@example.com", external_id="ANNA")
    bob = CustomerFactory(org=org, mobile="919000000002", email="bob@example.com", external_id="BOB")
    before = stored(org)
    path = write_file(
        tmp_path,
        f"{bob.pk},,anna@example.com,,,,",
        ",919000000001,bob@example.com,,,,",
        ",+919000000001,,BOB,Both,,",
        f"{bob.pk},919000000001,,ANNA,,,",
    )
    # when
    figures = run_import(path, org)
    # then
    assert figures["rejected"] == 4 and stored(org) == before
    assert [row[1] for row in rejects_of(path, org)] == [
        f"identifier owned by another customer (email: customer {anna.pk})",
        f"identifiers belong to different customers (mobile: customer {anna.pk}, email: customer {bob.pk})",
        f"identifiers belong to different customers (mobile: customer {anna.pk}, externalId: customer {bob.pk})",
        f"identifier owned by another customer (mobile: customer {anna.pk}, externalId: customer {anna.pk})",
    ]


GOOD_ROWS = [",919100000001,,,,,", ",919100000002,,,,,"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            "\n".join([HEADER, *GOOD_ROWS, ",919100000003,,,Ren\xe9e,,"]).encode("latin-1"),
            r"is not UTF-8 text \(line 4",
            id="latin-1",
        ),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text", id="binary"),
        pytest.param(
            "\n".join([HEADER, *GOOD_ROWS, ',919100000003,,,"Ren,,']).encode(),
            r"is not a valid CSV file \(line 4: unexpected end of data\)",
            id="unterminated-quote",
        ),
        pytest.param(
            "\n".join([HEADER, *GOOD_ROWS, ',919100000003,,,"Re"ne,,']).encode(),
            "is not a valid CSV file",
            id="stray-quote",
        ),
        pytest.param(b'{"customers": [{"mobile": "919100000001"}]}', "bad header row", id="json"),
        pytest.param(
            "\n".join([HEADER.replace("mobile", "phone"), *GOOD_ROWS]).encode(),
            r"bad header row \(unknown: phone; missing: mobile\)",
            id="unknown-column",
        ),
        pytest.param(
            "\n".join([HEADER.replace(",source", ""), *GOOD_ROWS]).encode(),
            r"bad header row \(missing: source\)",
            id="missing-column",
        ),
        pytest.param(
            "\n".join([HEADER + ",mobile", *GOOD_ROWS]).encode(),
            r"bad header row \(repeated: mobile\)",
            id="repeated-column",
        ),
        pytest.param(b"", "is empty: the first row must be the header", id="empty"),
    ],
)
def test_a_malformed_file_is_refused_whole(org, tmp_path, content, message):
    # given: good rows before the fault, one row per chunk
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    # when / then
    with pytest.raises(CommandError, match=message):
        run_import(path, org, "--chunk-size", "1")
    assert not Customer.objects.for_org(org).exists()
    assert not AuditEvent.objects.filter(action="customer.import").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "4242"], "No organization 4242"),
        (["--chunk-size", "0"], "--chunk-size must be at least 1"),
    ],
)
def test_bad_arguments_are_refused(org, tmp_path, args, message):
    path = write_file(tmp_path, *GOOD_ROWS)
    with pytest.raises(CommandError, match=message):
        call_command("import_customers", str(path), "--org", str(org.pk), "--no-progress", *args)
    assert not Customer.objects.exists()


@pytest.mark.parametrize("formula", FORMULAS)
def test_rejected_rows_that_start_a_formula_are_written_as_text(org, tmp_path, formula):
    # given: a row without an identifier whose names a spreadsheet would run
    path = tmp_path / "customers.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([HEADER.split(","), ["", "", "", "", formula, formula, ""]])
    # when
    run_import(path, org)
    # then: the values exactly as the file has them, kept as text
    [rejected] = rejects_of(path, org)
    assert rejected[1] == "malformed: no identifier (customerId, mobile, email or externalId)"
    assert rejected[2:] == ["", "", "", "", as_text(formula), as_text(formula), ""]


def test_a_missing_file_and_a_rejects_file_over_the_input_are_refused(org, tmp_path):
    path = write_file(tmp_path, *GOOD_ROWS)
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.csv"):
        run_import(tmp_path / "missing.csv", org)
    with pytest.raises(CommandError, match="--rejects must not be the input file"):
        run_import(path, org, "--rejects", str(path))
    assert path.read_text().startswith(HEADER) and not Customer.objects.exists()


def test_rejects_go_where_asked(org, tmp_path):
    path = write_file(tmp_path, ",12,,,,,", *GOOD_ROWS)
    target = tmp_path / "out" / "bad.csv"
    target.parent.mkdir()
    run_import(path, org, "--rejects", str(target))
    with open(target, encoding="utf-8") as handle:
        assert [row[:2] for row in csv.reader(handle)][1:] == [
            ["2", "malformed: mobile must be 8 to 15 digits, optionally after a leading +"]
        ]
    assert not list(tmp_path.glob("*.rejects.csv*"))


def test_one_file_imported_into_two_orgs_gives_each_run_its_own_report(org, other_org, tmp_path):
    # given a file whose first row names a customer of the first org
    mine = CustomerFactory(org=org)
    path = write_file(tmp_path, f"{mine.pk},,,,Asha,,", ",12,,,,,")
    # when it is imported into each org
    run_import(path, org)
    run_import(path, other_org)
    # then each run's report holds its own rejects: the bad mobile, and for the other org the customer
    bad_mobile = ["3", "malformed: mobile must be 8 to 15 digits, optionally after a leading +"]
    assert [row[:2] for row in rejects_of(path, org)] == [bad_mobile]
    assert [row[:2] for row in rejects_of(path, other_org)] == [
        ["2", "customerId not in this org"],
        bad_mobile,
    ]


def test_spreadsheet_exports_are_read(org, tmp_path):
    # given: a byte-order mark, CRLF line ends, the columns in another order, spaces in the header
    path = tmp_path / "export.csv"
    path.write_bytes(
        "\ufeffsource, lastName,firstName,externalId,email,mobile,customerId\r\n"
        'WEBSITE,"Rao, Jr.",Asha,,asha@example.com,919100000001,\r\n'.encode()
    )
    # when
    figures = run_import(path, org)
    # then
    assert figures["inserted"] == 1
    assert [row[1:] for row in stored(org)] == [
        ("919100000001", "asha@example.com", None, "Asha", "Rao, Jr.", "WEBSITE")
    ]


@pytest.mark.parametrize("path_taken", ["new rows", "general"])
def test_values_are_stored_as_written_whatever_their_characters(org, tmp_path, path_taken):
    # given: names with a tab, a backslash, a line break, backslash-N (NULL in COPY) and non-ASCII
    # letters; on the general path, because the first row's mobile is an existing customer's
    names = ["Tab\there", "Back\\slash", "Line\nbreak", "\\N", "Zoë Ürünü 山田"]
    existing = CustomerFactory(org=org, mobile="919100000009", email=None, external_id=None)
    path = tmp_path / "customers.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER.split(","))
        if path_taken == "general":
            writer.writerow(["", existing.mobile, "", "", "Tab\tthere", "", ""])
        for n, name in enumerate(names):
            writer.writerow(["", f"91910000000{n}", f'"a\\\tb{n}"@example.com', f"X\\{n}", name, name, ""])
    # when
    figures = run_import(path, org)
    # then
    assert figures["inserted"] == len(names) and figures["rejected"] == 0
    assert [row[2:6] for row in stored(org)[1:]] == [
        (f'"a\\\tb{n}"@example.com', f"X\\{n}", name, name) for n, name in enumerate(names)
    ]
    assert stored(org)[0][4] == ("Tab\tthere" if path_taken == "general" else "Asha")


# A file whose rows meet again across chunks: read with one row per chunk, three per chunk and all
# in one chunk, it must give the same customers and the same rejects.
CROSS_CHUNK_ROWS = [
    ",919100000001,one@example.com,,One,,",  # 2: new
    ",919100000002,,,Two,,",  # 3: new
    ",919000000001,,,Existing,,",  # 4: updates the existing customer (found by mobile)
    ",919100000003,,,Three,,",  # 5: new
    ",,ONE@example.com,,Again,,",  # 6: line 2's email
    "{existing},,,,Existing again,,",  # 7: the customer of line 4
    ",919100000004,,E-4,Four,,",  # 8: new
    ",,existing@example.com,,,,",  # 9: the customer of line 4, by another identifier
    ",919100000002,,,,,",  # 10: line 3's mobile
    ",919100000005,,E-4,,,",  # 11: line 8's externalId
    ",919100000006,,,Six,,",  # 12: new
]


@pytest.mark.parametrize("chunk_size", ["1", "3", "1000"])
def test_duplicates_are_found_across_chunks(org, tmp_path, chunk_size):
    # given
    existing = CustomerFactory(org=org, mobile="919000000001", email="existing@example.com")
    path = write_file(tmp_path, *(row.format(existing=existing.pk) for row in CROSS_CHUNK_ROWS))
    # when
    figures = run_import(path, org, "--chunk-size", chunk_size)
    # then
    assert figures == {"rows read": 11, "inserted": 5, "updated": 1, "unchanged": 0, "rejected": 5}
    dup = "duplicate identifier in the file (first at line {})".format
    assert [(int(row[0]), row[1]) for row in rejects_of(path, org)] == [
        (6, dup(2)),
        (7, dup(4)),
        (9, dup(4)),
        (10, dup(3)),
        (11, dup(8)),
    ]
    assert sorted(row[4] for row in stored(org)) == ["Existing", "Four", "One", "Six", "Three", "Two"]
    # and a second run changes nothing, whatever the chunks
    again = run_import(path, org, "--chunk-size", "2")
    assert (again["inserted"], again["updated"], again["unchanged"], again["rejected"]) == (0, 0, 6, 5)


@pytest.mark.parametrize("chunk_size", ["1", "1000"])
@pytest.mark.parametrize("giver_first", [True, False], ids=["giver-created-first", "taker-created-first"])
def test_an_identifier_can_move_to_another_customer_in_one_file(org, tmp_path, chunk_size, giver_first):
    # given: anna gives her email to bob and takes a new one; bob's externalId goes to a new customer.
    # In one chunk both updates are one statement, whichever customer it reaches first.
    people = {
        "anna": dict(mobile="919000000001", email="anna@old.example", external_id="A"),
        "bob": dict(mobile="919000000002", email="bob@example.com", external_id="B"),
    }
    order = ["anna", "bob"] if giver_first else ["bob", "anna"]
    created = {name: CustomerFactory(org=org, **people[name]) for name in order}
    anna, bob = created["anna"], created["bob"]
    path = write_file(
        tmp_path,
        f"{anna.pk},,anna@new.example,,,,",
        f"{bob.pk},,anna@old.example,B-2,,,",
        ",919100000003,,B,Carl,,",
    )
    # when
    figures = run_import(path, org, "--chunk-size", chunk_size)
    # then
    assert (figures["updated"], figures["inserted"], figures["rejected"]) == (2, 1, 0)
    assert Customer.objects.values_list("email", "external_id").get(pk=anna.pk) == ("anna@new.example", "A")
    assert Customer.objects.values_list("email", "external_id").get(pk=bob.pk) == ("anna@old.example", "B-2")
    assert Customer.objects.for_org(org).get(external_id="B").first_name == "Carl"
    assert run_import(path, org)["unchanged"] == 3


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_interrupted_import_is_completed_by_running_it_again(tmp_path):
    # given: a file of six rows in chunks of two, and a database that refuses the fifth row (as a
    # unique constraint would, every time)
    org = OrganizationFactory()
    path = write_file(tmp_path, *(f",91910000000{n},,,Row {n},," for n in range(1, 7)))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_row_5() RETURNS trigger AS $$ BEGIN"
            " IF NEW.mobile = '919100000005' THEN RAISE unique_violation USING MESSAGE = 'refused';"
            " END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_row_5 BEFORE INSERT ON wallets_customer"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_row_5()"
        )
    try:
        # when: the import stops at the third chunk
        with pytest.raises(CommandError, match=r"rows from line 6 on .* the rows before line 6 are"):
            run_import(path, org, "--chunk-size", "2")
        # then: the first two chunks are in, each committed on its own
        assert sorted(row[1] for row in stored(org)) == [f"91910000000{n}" for n in range(1, 5)]
        assert AuditEvent.objects.filter(org=org, action="customer.import").count() == 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_refuse_row_5 ON wallets_customer")
            cursor.execute("DROP FUNCTION test_refuse_row_5()")
    # when: the same command again
    figures = run_import(path, org, "--chunk-size", "2")
    # then: it completes the import and changes nothing else
    assert (figures["inserted"], figures["unchanged"], figures["rejected"]) == (2, 4, 0)
    assert sorted(row[1] for row in stored(org)) == [f"91910000000{n}" for n in range(1, 7)]


@pytest.mark.postgres_only
def test_a_chunk_that_meets_a_concurrent_writer_is_decided_again(org, tmp_path):
    # given: a database whose unique checks fail twice (as when another writer takes an identifier
    # between the chunk's lookup and its insert), then pass
    path = write_file(tmp_path, ",919100000001,,,One,,", ",919100000002,,,Two,,")
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE test_clashes")
        cursor.execute(
            "CREATE FUNCTION test_clash_twice() RETURNS trigger AS $$ BEGIN"
            " IF nextval('test_clashes') <= 2 THEN RAISE unique_violation USING MESSAGE = 'taken'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER test_clash_twice BEFORE INSERT ON wallets_customer"
            " FOR EACH ROW EXECUTE FUNCTION test_clash_twice()"
        )
    # when
    figures = run_import(path, org)
    # then: the third attempt imports the chunk, once
    assert (figures["inserted"], figures["rejected"]) == (2, 0)
    assert [row[4] for row in stored(org)] == ["One", "Two"]
    assert AuditEvent.objects.filter(org=org, action="customer.import").count() == 1
