"""`Organization.rules_version`: every write to a promotion of the org or to its limits bumps it, by
whichever path (API, admin, import command, re-dating), and writes of another org leave it alone."""

import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from promotions.audit import Actor
from promotions.models import AuditEvent, Organization, Promotion
from promotions.services import (
    RestrictionSpec,
    organization_rules_version_bump,
    promotion_activate,
    promotion_create,
    promotion_deactivate,
    promotion_update,
)
from tests import factories
from tests.concurrency import run_concurrently
from tests.promotions.test_promotion_admin import ADD_URL, CHANGELIST_URL, form_data
from tests.promotions.test_promotion_create import URL, body

ACTOR = Actor.system()


def version(org) -> int:
    return Organization.objects.get(pk=org.pk).rules_version


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    client.force_login(user)
    return client


def fields(**changes):
    now = timezone.now()
    return {
        "name": "Rules",
        "type": "POS",
        "start_date": now - dt.timedelta(days=1),
        "end_date": now + dt.timedelta(days=10),
        "condition": {
            "type": "CART",
            "cartCondition": {"kpi": "SUBTOTAL", "operator": "EQUALS", "value": "1"},
        },
        "action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "1"}},
        **changes,
    }


def test_a_new_org_starts_at_version_0(org):
    assert version(org) == 0


def test_services_bump_on_every_change_and_not_on_a_no_op(org, other_org):
    # when / then: each service call that changes something moves the version by one
    start = timezone.now() + dt.timedelta(days=1)  # not started: its limits may still change
    promotion = promotion_create(org=org, fields=fields(start_date=start), restrictions=[], actor=ACTOR)
    assert version(org) == 1
    promotion_deactivate(promotion=promotion, actor=ACTOR)
    assert version(org) == 2
    promotion_deactivate(promotion=promotion, actor=ACTOR)  # already inactive: nothing changed
    assert version(org) == 2
    promotion_activate(promotion=promotion, actor=ACTOR)
    assert version(org) == 3
    limit = RestrictionSpec(level="Cart", kpi="REDEMPTION", limit=1)
    promotion_update(promotion=promotion, fields={"priority": 3}, restrictions=[limit], actor=ACTOR)
    assert version(org) == 4
    # the other org's version never moved
    assert version(other_org) == 0


def test_an_update_that_re_dates_wallet_instances_bumps(org, customer):
    promotion = factories.PromotionFactory(org=org)
    factories.EarnedPromotionFactory(org=org, promotion=promotion, customer=customer)
    promotion_update(
        promotion=promotion,
        fields={"end_date": promotion.end_date + dt.timedelta(days=5)},
        restrictions=[],
        actor=ACTOR,
    )
    assert version(org) == 1
    event = AuditEvent.objects.get(action="promotion.update", object_id=promotion.pk)
    assert event.data["redated_instances"] == 1  # the wallets app's receiver ran in that transaction


def test_the_api_writes_bump(api, org):
    created = api.post(URL, body(), format="json").json()["data"]["id"]
    assert version(org) == 1
    api.put(f"{URL}/{created}", {"priority": 4}, format="json")
    assert version(org) == 2
    api.put(f"{URL}/{created}/deactivate")
    api.put(f"{URL}/{created}/activate")
    assert version(org) == 4


def test_a_refused_write_does_not_bump(api, org):
    api.post(URL, body(), format="json")
    duplicate = api.post(URL, body(), format="json")  # 716: rolled back
    assert duplicate.status_code == 400
    assert version(org) == 1


def test_the_admin_writes_bump(staff_client, org):
    # when: add, change, then the deactivate and activate actions
    assert staff_client.post(ADD_URL, form_data()).status_code == 302
    promotion = Promotion.objects.get(org=org)
    assert version(org) == 1
    change = form_data(name="Renamed", **{"restrictions-TOTAL_FORMS": 0})
    change.pop("type"), change.pop("active")
    response = staff_client.post(reverse("admin:promotions_promotion_change", args=[promotion.pk]), change)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert version(org) == 2
    for action in ("deactivate_selected", "activate_selected"):
        staff_client.post(CHANGELIST_URL, {"action": action, "_selected_action": [promotion.pk]})
    assert version(org) == 4


def test_import_promotions_bumps_once_per_created_promotion(org, tmp_path):
    path = tmp_path / "promotions.json"
    path.write_text(json.dumps([body(name="One"), body(name="Two")]), encoding="utf-8")
    call_command("import_promotions", str(path), "--org", str(org.pk), "--no-progress", stdout=io.StringIO())
    assert version(org) == 2
    # importing the same file again creates nothing and changes nothing
    call_command("import_promotions", str(path), "--org", str(org.pk), "--no-progress", stdout=io.StringIO())
    assert version(org) == 2


def test_saving_the_org_in_the_admin_keeps_the_version(admin_client, org):
    organization_rules_version_bump(org=org)
    url = reverse("admin:promotions_organization_change", args=[org.pk])
    response = admin_client.post(
        url,
        {
            "id": org.pk, "name": "Renamed org", "timezone": org.timezone, "max_active_promotions": 10,
            "rounding_mode": "HALF_EVEN", "rounding_precision": 3, "evaluation_mechanism": "CART_FIRST",
            "percentage_base": "GROSS", "several_line_promotions_per_unit": "on",
            "redemption_strategy": "REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED",
            "cart_lock_ttl_seconds": 300, "cart_lock_max_pending_carts": 1,
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    org.refresh_from_db()
    assert (org.name, org.rounding_mode, org.rules_version) == ("Renamed org", "HALF_EVEN", 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_each_count():
    org = factories.OrganizationFactory()

    statuses = run_concurrently(
        6,
        lambda api, index: api.post(URL, body(name=f"Concurrent {index}"), format="json").status_code,
        org=org,
    )

    assert statuses == [200] * 6
    assert version(org) == 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_and_toggles_of_one_promotion_all_answer_and_all_count():
    # given one live promotion
    org = factories.OrganizationFactory()
    promotion = factories.PromotionFactory(org=org, type="POS")

    def write(api, index):
        if index % 3 == 0:
            return api.put(f"{URL}/{promotion.pk}", {"priority": index}, format="json").status_code
        verb = "deactivate" if index % 3 == 1 else "activate"
        return api.put(f"{URL}/{promotion.pk}/{verb}").status_code

    # when: updates, deactivations and activations at once (each takes the org row, then the promotion's)
    statuses = run_concurrently(9, write, org=org)

    # then: no deadlock, every write answered; each update and at least one toggle counted
    assert statuses == [200] * 9
    assert version(org) >= 4
