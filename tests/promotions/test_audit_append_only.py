"""Audit events are append-only: the database refuses UPDATE, DELETE and TRUNCATE, and the admin offers none."""

from __future__ import annotations

import pytest
from django.core.management.color import no_style
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from promotions.models import AuditEvent
from tests.admin_support import admin_url, staff_login
from tests.factories import AuditEventFactory, UserFactory

TABLE = "promotions_auditevent"


def refused(statement) -> str:
    """Run `statement` in its own savepoint; return the database's refusal (the test fails if none)."""
    with pytest.raises(DatabaseError) as refusal, transaction.atomic():
        statement()
    return str(refusal.value)


def stored(event) -> tuple:
    return AuditEvent.objects.filter(pk=event.pk).values_list("action", "actor_name", "org_id").get()


def test_update_through_the_orm_is_refused_by_the_database(org):
    # given
    event = AuditEventFactory(org=org, action="promotion.create", actor_name="till.1")
    before = stored(event)
    # when / then: a queryset update, a model save, a bulk update
    assert "append-only" in refused(lambda: AuditEvent.objects.filter(pk=event.pk).update(action="x"))
    event.actor_name = "someone else"
    assert "append-only" in refused(event.save)
    assert "append-only" in refused(lambda: AuditEvent.objects.bulk_update([event], ["actor_name"]))
    assert stored(event) == before


def test_delete_through_the_orm_is_refused_by_the_database(org):
    event = AuditEventFactory(org=org)
    assert "append-only" in refused(event.delete)
    assert "append-only" in refused(AuditEvent.objects.all().delete)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_raw_sql_update_and_delete_are_refused(org):
    event = AuditEventFactory(org=org, action="customer.create")

    def execute(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])

    assert "append-only" in refused(lambda: execute(f"UPDATE {TABLE} SET action = 'forged' WHERE id = %s"))
    assert "append-only" in refused(lambda: execute(f"DELETE FROM {TABLE} WHERE id = %s"))
    assert stored(event)[0] == "customer.create"


def test_inserting_still_works(org):
    AuditEventFactory(org=org)
    AuditEvent.objects.bulk_create([AuditEvent(org=org, actor_type="SYSTEM", action="a", object_type="T")])
    assert AuditEvent.objects.for_org(org).count() == 2


@pytest.mark.postgres_only
def test_truncate_is_refused_also_by_cascade(org):
    event = AuditEventFactory(org=org)

    def execute(sql):
        with connection.cursor() as cursor:
            # The test's own INSERT left deferred FK checks pending, which TRUNCATE would refuse first.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(sql)

    assert "TRUNCATE is not allowed" in refused(lambda: execute(f"TRUNCATE {TABLE}"))
    # A TRUNCATE of the table it references reaches it too.
    assert "TRUNCATE is not allowed" in refused(lambda: execute("TRUNCATE promotions_organization CASCADE"))
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_manage_py_flush_is_refused(org):
    """`flush` (TRUNCATE on PostgreSQL, DELETE on SQLite) cannot wipe the audit trail. The test suite's
    own resets between transactional tests go through tests/conftest.py, which suspends the triggers."""
    AuditEventFactory(org=org)
    statements = connection.ops.sql_flush(no_style(), [TABLE, "promotions_organization"], allow_cascade=True)

    def execute():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in the test above
            for sql in statements:
                cursor.execute(sql)

    assert "append-only" in refused(execute)
    assert AuditEvent.objects.for_org(org).exists()


def test_an_org_with_audit_events_cannot_be_deleted(org):
    AuditEventFactory(org=org)
    with pytest.raises(ProtectedError):
        org.delete()


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_still_starts_empty_and_is_emptied_after(org):
    """pytest-django flushes after this test; the session fixture in tests/conftest.py lets it through
    and the triggers are back for the next test (test_update_... above run in any order)."""
    AuditEventFactory(org=org)
    assert AuditEvent.objects.count() == 1
    # the triggers are in place in a transactional test too
    assert "append-only" in refused(AuditEvent.objects.all().delete)


def test_triggers_are_back_after_a_transactional_test(org):
    # A test that runs after the one above (file order) finds the table empty and guarded.
    assert not AuditEvent.objects.exists()
    event = AuditEventFactory(org=org)
    assert "append-only" in refused(event.delete)


# --- The admin: audit events are viewed, never added, changed or deleted --------------------------


@pytest.fixture(params=["superuser", "org_staff"])
def admin_client(request, client, org):
    if request.param == "superuser":
        client.force_login(UserFactory(org=None, is_superuser=True))
    else:
        staff_login(client, org)  # every permission there is, auditevent's change and delete included
    return client


def test_admin_offers_no_add_change_or_delete(admin_client, org):
    # given
    event = AuditEventFactory(org=org, action="promotion.create")
    before = stored(event)
    # then: the page is a read-only view
    page = admin_client.get(admin_url(AuditEvent, "change", event.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b"deletelink" not in page.content
    # and every write is refused
    assert (
        admin_client.post(admin_url(AuditEvent, "change", event.pk), {"action": "forged"}).status_code == 403
    )
    assert admin_client.post(admin_url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/promotions/auditevent/add/").status_code == 403
    listing = admin_client.get("/admin/promotions/auditevent/")
    assert listing.status_code == 200 and b"delete_selected" not in listing.content
    response = admin_client.post(
        "/admin/promotions/auditevent/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)  # "No action selected": the action does not exist
    assert stored(event) == before
