"""The admin pages of zones, concepts, stores and tills, and an API client's default till."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions.models import ApiClient, AuditEvent, Store, Till, Zone
from tests import factories
from tests.admin_support import admin_url


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    client.force_login(user)
    return client


def test_staff_build_a_hierarchy_in_their_org(staff_client, org):
    # when
    staff_client.post(admin_url(Zone, "add"), {"external_id": 75175598, "name": "West"})
    west = Zone.objects.get(org=org, external_id=75175598)
    response = staff_client.post(
        admin_url(Store, "add"), {"external_id": 101, "code": "S101", "name": "Andheri", "zone": west.pk}
    )
    store = Store.objects.get(org=org, external_id=101)
    till = staff_client.post(admin_url(Till, "add"), {"code": "pos.101", "name": "Till", "store": store.pk})

    # then
    assert response.status_code == 302 and till.status_code == 302
    assert (store.zone, Till.objects.get(org=org).store) == (west, store)
    assert AuditEvent.objects.filter(org=org, action="zone.create").count() == 1


def test_a_parent_closing_a_cycle_is_a_form_error(staff_client, org):
    top = factories.ZoneFactory(org=org, name="Top")
    child = factories.ZoneFactory(org=org, parent=top)

    response = staff_client.post(
        admin_url(Zone, "change", top.pk), {"external_id": top.external_id, "name": "Top", "parent": child.pk}
    )

    assert response.status_code == 200
    assert "Would make a cycle" in response.content.decode()
    top.refresh_from_db()
    assert top.parent is None


def test_staff_are_offered_only_their_orgs_rows(staff_client, org, other_org):
    theirs = factories.ZoneFactory(org=other_org)
    page = staff_client.get(admin_url(Store, "add")).content.decode()
    assert f'value="{theirs.pk}"' not in page

    response = staff_client.post(admin_url(Store, "add"), {"external_id": 5, "name": "S", "zone": theirs.pk})

    assert response.status_code == 200
    assert not Store.objects.filter(external_id=5).exists()


def test_a_superuser_cannot_mix_orgs(admin_client, org, other_org):
    theirs = factories.StoreFactory(org=other_org)
    response = admin_client.post(
        admin_url(Till, "add"), {"org": org.pk, "code": "pos.1", "name": "T", "store": theirs.pk}
    )
    assert response.status_code == 200
    assert "Must belong to the same organization." in response.content.decode()
    assert not Till.objects.exists()


def test_an_api_clients_default_till_is_set_in_the_admin(staff_client, org, other_org):
    client = factories.ApiClientFactory(org=org)
    till = factories.TillFactory(org=org)
    theirs = factories.TillFactory(org=other_org)
    url = reverse("admin:promotions_apiclient_change", args=[client.pk])
    base = {"access": "WRITE", "is_active": "on", "token_ttl_seconds": 300}

    refused = staff_client.post(url, {**base, "default_till": theirs.pk})
    taken = staff_client.post(url, {**base, "default_till": till.pk})

    assert refused.status_code == 200
    assert taken.status_code == 302
    assert ApiClient.objects.get(pk=client.pk).default_till == till


def test_a_new_api_client_gets_its_default_till(staff_client, org):
    till = factories.TillFactory(org=org)
    response = staff_client.post(
        admin_url(ApiClient, "add"),
        {"username": "till.server", "access": "WRITE", "is_active": "on", "token_ttl_seconds": 300, "default_till": till.pk},
    )  # fmt: skip
    assert response.status_code == 200  # the page showing the secret once
    assert ApiClient.objects.get(username="till.server").default_till == till


def test_a_superuser_cannot_give_a_client_another_orgs_till(admin_client, org, other_org):
    response = admin_client.post(
        admin_url(ApiClient, "add"),
        {"org": org.pk, "username": "x.client", "access": "WRITE", "is_active": "on", "token_ttl_seconds": 300,
         "default_till": factories.TillFactory(org=other_org).pk},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Must belong to the same organization." in response.content.decode()
    assert not ApiClient.objects.filter(username="x.client").exists()
