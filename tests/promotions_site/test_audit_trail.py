"""Every write records who did it, on which org, under which request id (X-Request-ID)."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME as ACTION
from rest_framework.permissions import SAFE_METHODS

from promotions.models import ApiClient, AuditEvent, LoyaltyProgram, Organization, Promotion
from redemptions.models import Redemption
from tests.admin_support import admin_url, staff_login
from tests.factories import ApiClientFactory, CustomerFactory, PromotionFactory
from tests.promotions.test_promotion_admin import form_data as promotion_form_data
from tests.promotions_site.api_routes import CASES, Ids, case_id, org_seed, send
from wallets.models import Customer

API_WRITES = sorted(
    key for key, case in CASES.items() if key[1] not in SAFE_METHODS and not (case.public or case.read_access)
)


def test_every_api_write_names_its_audit_action():
    assert [key for key in API_WRITES if CASES[key].audit is None] == []


@pytest.mark.parametrize("key", API_WRITES, ids=case_id)
def test_api_write_records_actor_org_and_request_id(key, org):
    # given
    mine = org_seed(org)
    case, request_id = CASES[key], f"audit-{key[0]}-{key[1]}"
    # when
    response = send(mine.api, key[1], case.call(Ids(mine)), HTTP_X_REQUEST_ID=request_id)
    # then
    assert response.status_code == case.status, response.content
    assert response["X-Request-ID"] == request_id
    events = AuditEvent.objects.filter(request_id=request_id)
    assert [(e.org_id, e.actor_type, e.actor_id, e.actor_name, e.action) for e in events] == [
        (org.pk, "API_CLIENT", str(mine.client.pk), mine.client.username, case.audit)
    ]


# --- The admin: service writes and plain model forms alike --------------------------------------


def admin_events(request_id: str) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(request_id=request_id)
        .order_by("id")
        .values_list("org_id", "actor_type", "actor_id", "actor_name", "action")
    )


def admin_post(client, url: str, data: dict, request_id: str):
    response = client.post(url, data, HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 302, response.content.decode()[:2000]
    return response


def _customer_form(**changes) -> dict:
    return {"mobile": "919811111111", "email": "", "external_id": "", "first_name": "Asha",
            "last_name": "Rao", "source": "INSTORE", **changes}  # fmt: skip


ADMIN_FORM_WRITES = {
    "customer add": (
        lambda org: None,
        lambda obj: admin_url(Customer, "add"),
        lambda obj: _customer_form(),
        "customer.create",
    ),
    "customer change": (
        lambda org: CustomerFactory(org=org),
        lambda obj: admin_url(Customer, "change", obj.pk),
        lambda obj: _customer_form(mobile=obj.mobile, first_name="Changed"),
        "customer.update",
    ),
    "customer delete": (
        lambda org: CustomerFactory(org=org),
        lambda obj: admin_url(Customer, "delete", obj.pk),
        lambda obj: {"post": "yes"},
        "customer.delete",
    ),
    "API client access change": (
        lambda org: ApiClientFactory(org=org),
        lambda obj: admin_url(ApiClient, "change", obj.pk),
        lambda obj: {"access": "READ", "is_active": "on", "token_ttl_seconds": 300},
        "api_client.update",
    ),
    "loyalty program add": (
        lambda org: None,
        lambda obj: admin_url(LoyaltyProgram, "add"),
        lambda obj: {"name": "Gold"},
        "loyalty_program.create",
    ),
    "organization change": (
        lambda org: org,
        lambda obj: admin_url(Organization, "change", obj.pk),
        lambda obj: {
            "name": "Renamed",
            "timezone": "UTC",
            "rounding_mode": "HALF_UP",
            "rounding_precision": 2,
            "evaluation_mechanism": "LINE_ITEM_FIRST",
            "percentage_base": "NET",
            "redemption_strategy": "REDEMPTION_WITHOUT_CART_EVALUATION",
            "cart_locking_enabled": "on",
            "cart_lock_ttl_seconds": 300,
            "cart_lock_max_pending_carts": 1,
        },
        "organization.update",
    ),
    # Through promotion_create: one event, the service's (not a second one from the admin).
    "promotion add": (
        lambda org: None,
        lambda obj: admin_url(Promotion, "add"),
        lambda obj: promotion_form_data(),
        "promotion.create",
    ),
}


@pytest.mark.parametrize("name", ADMIN_FORM_WRITES)
def test_admin_write_records_the_staff_user_org_and_request_id(name, client, org):
    # given
    setup, url, data, action = ADMIN_FORM_WRITES[name]
    user, obj = staff_login(client, org), setup(org)
    request_id = f"admin-{name.replace(' ', '-')}"
    # when
    admin_post(client, url(obj), data(obj), request_id)
    # then
    assert admin_events(request_id) == [(org.pk, "ADMIN_USER", str(user.pk), user.username, action)]


def test_admin_actions_through_services_carry_the_request_id(client, org):
    # given
    user = staff_login(client, org)
    promotion = PromotionFactory(org=org, active=False)
    mine = org_seed(org)
    # when: activate a promotion, then reverse a redemption (confirmed)
    admin_post(
        client, admin_url(Promotion), {"action": "activate_selected", ACTION: [promotion.pk]}, "admin-act"
    )
    admin_post(
        client,
        admin_url(Redemption),
        {"action": "reverse_selected", ACTION: [mine.redemption.pk], "post": "yes", "reason": "Returned"},
        "admin-rev",
    )
    # then
    actor = ("ADMIN_USER", str(user.pk), user.username)
    assert admin_events("admin-act") == [(org.pk, *actor, "promotion.activate")]
    assert admin_events("admin-rev") == [(org.pk, *actor, "redemption.reverse")]
