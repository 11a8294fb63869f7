"""The loyalty program admin: a name taken in the org is a form error, never an IntegrityError."""

from __future__ import annotations

from promotions.models import LoyaltyProgram
from tests.admin_support import admin_url, staff_login
from tests.factories import LoyaltyProgramFactory


def test_a_taken_program_name_is_a_form_error_for_org_staff(client, org):
    # given: org-bound staff, whose form has no org field, and a program named Gold
    staff_login(client, org)
    LoyaltyProgramFactory(org=org, name="Gold")
    # when
    response = client.post(admin_url(LoyaltyProgram, "add"), {"name": "Gold"})
    # then
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert LoyaltyProgram.objects.filter(org=org).count() == 1


def test_another_org_may_use_the_name(client, org, other_org):
    staff_login(client, org)
    LoyaltyProgramFactory(org=other_org, name="Gold")
    response = client.post(admin_url(LoyaltyProgram, "add"), {"name": "Gold"})
    assert response.status_code == 302
    assert LoyaltyProgram.objects.get(org=org).name == "Gold"
