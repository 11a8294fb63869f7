"""The org's evaluation settings: defaults, the database's checks, the admin, and `engine_settings_for`."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from promotions.engine.types import Settings
from promotions.models import Organization
from promotions.selectors import engine_settings_for


def test_a_new_org_has_the_documented_defaults(org):
    org.refresh_from_db()
    assert engine_settings_for(org) == Settings(
        rounding_mode="HALF_UP",
        precision=2,
        mechanism="LINE_ITEM_FIRST",
        percentage_base="NET",
        several_line_promotions_per_unit=False,
    )
    assert org.redemption_strategy == "REDEMPTION_WITHOUT_CART_EVALUATION"


def test_engine_settings_follow_the_org(org):
    Organization.objects.filter(pk=org.pk).update(
        rounding_mode="FLOOR",
        rounding_precision=0,
        evaluation_mechanism="CART_FIRST",
        percentage_base="GROSS",
        several_line_promotions_per_unit=True,
    )
    org.refresh_from_db()
    assert engine_settings_for(org) == Settings("FLOOR", 0, "CART_FIRST", "GROSS", True)


@pytest.mark.parametrize(
    "change",
    [
        {"rounding_mode": "ROUND"},
        {"rounding_precision": 7},
        {"evaluation_mechanism": "LINE_FIRST"},
        {"percentage_base": "TOTAL"},
        {"redemption_strategy": "CAPPED"},
    ],
)
def test_the_database_refuses_a_setting_outside_its_values(org, change):
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=org.pk).update(**change)


def _org_form(org, **changes):
    data = {
        "id": org.pk, "name": org.name, "timezone": org.timezone, "max_active_promotions": 10,
        "rounding_mode": "HALF_UP", "rounding_precision": 2, "evaluation_mechanism": "LINE_ITEM_FIRST",
        "percentage_base": "NET", "redemption_strategy": "REDEMPTION_WITHOUT_CART_EVALUATION",
        "cart_locking_enabled": "on", "cart_lock_ttl_seconds": 300, "cart_lock_max_pending_carts": 1,
    }  # fmt: skip
    data.update(changes)
    return data


def test_the_admin_edits_the_settings_and_shows_the_rules_version(admin_client, org):
    url = reverse("admin:promotions_organization_change", args=[org.pk])
    page = admin_client.get(url).content.decode()
    assert "Promotion engine" in page and "Rules version" in page

    response = admin_client.post(url, _org_form(org, rounding_mode="HALF_EVEN", percentage_base="GROSS"))

    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.rounding_mode, org.percentage_base) == ("HALF_EVEN", "GROSS")


@pytest.mark.parametrize(
    "change",
    [
        {"rounding_precision": 7},
        {"rounding_mode": "SOMETIMES"},
        {"redemption_strategy": ""},
        {"cart_lock_ttl_seconds": 0},
        {"cart_lock_ttl_seconds": 86401},
        {"cart_lock_max_pending_carts": 51},
    ],
)
def test_the_admin_shows_a_bad_setting_as_a_form_error(admin_client, org, change):
    url = reverse("admin:promotions_organization_change", args=[org.pk])
    response = admin_client.post(url, _org_form(org, **change))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
