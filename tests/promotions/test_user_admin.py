"""Users and groups in the admin: an org's staff manage their own org's users and never end up with more
than they hold; groups (global, the Auditors group among them) are managed by superusers only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from promotions.models import User
from tests.admin_support import admin_url, staff_login
from tests.factories import UserFactory

PASSWORD = "A-new-pass-phrase-9"


def user_manager_codenames() -> list[str]:
    """What an org's user manager holds: the user permissions and changing groups, nothing else."""
    return ["view_user", "add_user", "change_user", "delete_user", "view_group", "change_group"]


@pytest.fixture
def admin_of_org(client, org):
    """Org staff holding every permission (change_group, change_permission and change_user included)."""
    return staff_login(client, org)


def password_url(user: User) -> str:
    # UserAdmin names its password page after auth.User, whatever the user model.
    return reverse("admin:auth_user_password_change", args=[user.pk])


def permission_ids(group: Group) -> set[int]:
    return set(group.permissions.values_list("pk", flat=True))


def change_form(user: User, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value != ""}


# --- groups -------------------------------------------------------------------------------------


def test_org_staff_cannot_change_the_auditors_group(client, admin_of_org):
    # given: every permission, change_group included
    auditors = Group.objects.get(name="Auditors")
    before = permission_ids(auditors)
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    # when
    page = client.get(admin_url(Group, "change", auditors.pk))
    posted = client.post(
        admin_url(Group, "change", auditors.pk), {"name": "Auditors", "permissions": everything}
    )
    # then
    assert (page.status_code, posted.status_code) == (403, 403)
    assert permission_ids(auditors) == before


def test_org_staff_cannot_list_add_or_delete_groups(client, admin_of_org):
    auditors = Group.objects.get(name="Auditors")
    assert client.get(admin_url(Group)).status_code == 403
    assert client.post(admin_url(Group, "add"), {"name": "Mine"}).status_code == 403
    assert client.post(admin_url(Group, "delete", auditors.pk), {"post": "yes"}).status_code == 403
    assert Group.objects.filter(name="Auditors").exists() and not Group.objects.filter(name="Mine").exists()


def test_a_superuser_manages_groups(client, db):
    # given
    client.force_login(UserFactory(org=None, is_superuser=True))
    auditors = Group.objects.get(name="Auditors")
    view_user = Permission.objects.get(codename="view_user")
    # when
    response = client.post(
        admin_url(Group, "change", auditors.pk),
        {"name": "Auditors", "permissions": [str(pk) for pk in {*permission_ids(auditors), view_user.pk}]},
    )
    # then
    assert response.status_code == 302
    assert view_user.pk in permission_ids(auditors)


# --- their own account --------------------------------------------------------------------------


def test_staff_cannot_give_themselves_groups_permissions_or_superuser(client, org):
    # given: a user manager, and a group granting far more than they hold
    me = staff_login(client, org, codenames=user_manager_codenames())
    powerful = Group.objects.create(name="Powerful")
    powerful.permissions.set(Permission.objects.all())
    delete_promotion = Permission.objects.get(codename="delete_promotion")
    # when: they post their own change form with the group, a permission and superuser status
    response = client.post(
        admin_url(User, "change", me.pk),
        change_form(
            me, groups=[str(powerful.pk)], user_permissions=[str(delete_promotion.pk)], is_superuser="on"
        ),
    )
    # then: saved, and nothing of it taken
    assert response.status_code == 302
    me.refresh_from_db()
    assert list(me.groups.all()) == []
    assert not me.user_permissions.filter(pk=delete_promotion.pk).exists()
    assert not me.is_superuser
    page = client.get(admin_url(User, "change", me.pk)).content.decode()
    assert 'name="groups"' not in page and 'name="user_permissions"' not in page
    assert 'name="is_superuser"' not in page


def test_staff_cannot_remove_their_own_staff_status_or_groups(client, org):
    me = staff_login(client, org, group="Auditors")
    me.user_permissions.set(Permission.objects.filter(codename__in=user_manager_codenames()))
    client.post(admin_url(User, "change", me.pk), change_form(me, is_staff="", groups=[]))
    me.refresh_from_db()
    assert me.is_staff and list(me.groups.values_list("name", flat=True)) == ["Auditors"]


# --- colleagues ---------------------------------------------------------------------------------


def test_staff_give_a_colleague_only_groups_within_their_own_permissions(client, org):
    # given: a user manager who holds the Auditors' permissions too, and a group granting more
    me = staff_login(client, org, codenames=user_manager_codenames())
    me.user_permissions.add(*Group.objects.get(name="Auditors").permissions.all())
    auditors = Group.objects.get(name="Auditors")
    powerful = Group.objects.create(name="Powerful")
    powerful.permissions.set(Permission.objects.all())
    colleague = UserFactory(org=org)
    # when: the group beyond their permissions
    refused = client.post(
        admin_url(User, "change", colleague.pk), change_form(colleague, groups=[str(powerful.pk)])
    )
    # then
    assert refused.status_code == 200 and "is not one of the available choices" in refused.content.decode()
    assert not colleague.groups.exists()
    # when: a group within them
    given = client.post(
        admin_url(User, "change", colleague.pk), change_form(colleague, groups=[str(auditors.pk)])
    )
    # then
    assert given.status_code == 302
    assert list(colleague.groups.all()) == [auditors]


def test_a_colleague_holding_more_is_view_only(client, org):
    # given
    staff_login(client, org, codenames=user_manager_codenames())
    boss = UserFactory(org=org)
    boss.user_permissions.set(Permission.objects.all())
    old_hash = boss.password
    # when
    password = client.post(password_url(boss), {"password1": PASSWORD, "password2": PASSWORD})
    changed = client.post(admin_url(User, "change", boss.pk), change_form(boss, email="taken@example.com"))
    deleted = client.post(admin_url(User, "delete", boss.pk), {"post": "yes"})
    # then
    assert (password.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    boss.refresh_from_db()
    assert (boss.password, boss.email) == (old_hash, "")


def test_staff_manage_a_colleague_holding_less(client, org):
    staff_login(client, org, codenames=user_manager_codenames())
    colleague = UserFactory(org=org)
    response = client.post(
        password_url(colleague),
        {"password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.check_password(PASSWORD)


# --- superusers and other orgs ------------------------------------------------------------------


@pytest.mark.parametrize("superuser_org", ["same org", "no org"])
def test_staff_never_touch_a_superuser(client, org, admin_of_org, superuser_org):
    # given: a superuser, bound to the staff's org (as the demo's admin is) or a platform operator
    root = UserFactory(org=org if superuser_org == "same org" else None, is_superuser=True)
    old_hash = root.password
    # when
    listing = client.get(admin_url(User)).content.decode()
    pages = [
        client.get(admin_url(User, "change", root.pk)),
        client.get(password_url(root)),
        client.post(
            password_url(root),
            {"password1": PASSWORD, "password2": PASSWORD},
        ),
        client.post(admin_url(User, "change", root.pk), change_form(root, is_active="")),
        client.post(admin_url(User, "delete", root.pk), {"post": "yes"}),
        client.post(
            admin_url(User), {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"}
        ),
    ]
    # then: it is not theirs: not listed, its pages are not found, nothing changed
    assert admin_url(User, "change", root.pk) not in listing
    assert all(page.status_code in (302, 404) for page in pages), [p.status_code for p in pages]
    root.refresh_from_db()
    assert (root.password, root.is_active) == (old_hash, True)


def test_staff_never_touch_another_orgs_user(client, org, other_org, admin_of_org):
    theirs = UserFactory(org=other_org)
    old_hash = theirs.password
    responses = [
        client.get(password_url(theirs)),
        client.post(
            password_url(theirs),
            {"password1": PASSWORD, "password2": PASSWORD},
        ),
        client.post(admin_url(User, "delete", theirs.pk), {"post": "yes"}),
    ]
    assert all(response.status_code in (302, 404) for response in responses)
    theirs.refresh_from_db()
    assert theirs.password == old_hash
