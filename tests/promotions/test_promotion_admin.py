"""The Promotion admin writes through promotion_create / promotion_update, with the API's rules."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions import builder
from promotions.models import AuditEvent, Promotion, PromotionRestriction
from tests import factories
from tests.promotions.test_capillary_promotion_objects import OBJECTS

ADD_URL = reverse("admin:promotions_promotion_add")
CHANGELIST_URL = reverse("admin:promotions_promotion_changelist")


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    client.force_login(user)
    return client


def form_data(**changes):
    start = timezone.localtime(timezone.now() + dt.timedelta(days=1))
    end = start + dt.timedelta(days=30)
    data = {
        "name": "Admin promotion",
        "type": "CUSTOMER",
        "active": "on",
        "priority": 0,
        "start_date_0": start.strftime("%Y-%m-%d"),
        "start_date_1": start.strftime("%H:%M:%S"),
        "end_date_0": end.strftime("%Y-%m-%d"),
        "end_date_1": end.strftime("%H:%M:%S"),
        "mode": "DISCOUNT",
        "message_label": "",
        "campaign_id": "",
        # The rule, through the builder: more than 10 in the cart, 5 off.
        "cond_type": "CART",
        "cart_kpi": "SUBTOTAL",
        "cart_operator": "GREATER_THAN",
        "cart_value": "10",
        "reward": "CART_BASED:ABSOLUTE",
        "act_value": "5",
        "max_issuance_per_customer": 1,
        "earned_validity_days": "",
        "max_earning_per_customer": "",
        "earning_criteria": "null",
        "restrictions-TOTAL_FORMS": 1,
        "restrictions-INITIAL_FORMS": 0,
        "restrictions-MIN_NUM_FORMS": 0,
        "restrictions-MAX_NUM_FORMS": 1000,
        "restrictions-0-level": "Customer",
        "restrictions-0-kpi": "REDEMPTION",
        "restrictions-0-limit": "3",
        "restrictions-0-frequency": "",
        "restrictions-0-window_type": "",
        "restrictions-0-min_time_between_repeat": "",
        "restrictions-0-fixed_window_config": "null",
    }
    data.update(changes)
    return data


def test_admin_creates_a_promotion_through_the_service(staff_client, org):
    # when
    response = staff_client.post(ADD_URL, form_data())

    # then
    assert response.status_code == 302, response.content.decode()[:3000]
    promotion = Promotion.objects.get(name="Admin promotion")
    assert promotion.org == org
    assert promotion.created_by != ""
    assert list(promotion.restrictions.values_list("level", "kpi")) == [("Customer", "REDEMPTION")]
    event = AuditEvent.objects.get(action="promotion.create", object_id=promotion.pk)
    assert event.actor_type == AuditEvent.ActorType.ADMIN_USER


def test_admin_takes_capillarys_objects_and_stores_them_as_the_api_does(staff_client, org):
    # given: Capillary's "Buy 1 get 1" (PER_UNIT with a FREE_PRODUCT reward, kpi NONE target), as the
    # builder shows it
    obj = next(obj for obj in OBJECTS if obj["name"] == "Buy 1 get 1")

    # when
    published = staff_client.post(ADD_URL, form_data(**builder.decompose(obj["condition"], obj["action"])))

    # then
    assert published.status_code == 302, published.content.decode()[:3000]
    promotion = Promotion.objects.get(name="Admin promotion")
    assert (promotion.condition, promotion.action) == (obj["condition"], obj["action"])
    assert Promotion.objects.get(name="Admin promotion").condition["productCondition"]["value"] == "2.000000"


def test_admin_shows_shape_and_rule_errors(staff_client, org):
    # when: a bad action shape, then a Code limit on a CUSTOMER promotion
    bad_shape = staff_client.post(
        ADD_URL,
        form_data(reward="CART_BASED:PERCENTAGE", act_value="500"),
    )
    bad_rule = staff_client.post(ADD_URL, form_data(**{"restrictions-0-level": "Code"}))

    # then: both re-render the form with the reason and write nothing
    assert bad_shape.status_code == 200
    assert "A percentage must be at most 100." in bad_shape.content.decode()
    assert bad_rule.status_code == 200
    assert "Code is only for CODE promotions" in bad_rule.content.decode()
    assert not Promotion.objects.exists()


def test_admin_duplicate_name_is_reported_not_a_crash(staff_client, org):
    factories.PromotionFactory(org=org, name="Admin promotion")

    response = staff_client.post(ADD_URL, form_data(), follow=True)

    assert response.status_code == 200
    assert "Promotion name must be unique." in response.content.decode()
    assert Promotion.objects.filter(org=org).count() == 1


def test_admin_update_goes_through_the_service_and_freezes_live_limits(staff_client, org):
    # given a live promotion with one limit
    promotion = factories.PromotionFactory(org=org, name="Live one")
    restriction = factories.PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="REDEMPTION", limit=3
    )
    url = reverse("admin:promotions_promotion_change", args=[promotion.pk])
    start = timezone.localtime(promotion.start_date)
    end = timezone.localtime(promotion.end_date)
    base = form_data(
        name="Live one renamed",
        start_date_0=start.strftime("%Y-%m-%d"), start_date_1=start.strftime("%H:%M:%S.%f"),
        end_date_0=end.strftime("%Y-%m-%d"), end_date_1=end.strftime("%H:%M:%S.%f"),
        **{"restrictions-INITIAL_FORMS": 1, "restrictions-0-id": restriction.pk, "restrictions-0-promotion": promotion.pk},
    )  # fmt: skip
    base.pop("type"), base.pop("active")

    # when: raising the limit, then only renaming
    frozen = staff_client.post(url, {**base, "restrictions-0-limit": "9"})
    renamed = staff_client.post(url, base)

    # then
    assert frozen.status_code == 200
    assert "cannot be changed once the promotion is live" in frozen.content.decode()
    assert renamed.status_code == 302, renamed.content.decode()[:3000]
    promotion.refresh_from_db()
    assert promotion.name == "Live one renamed"
    assert PromotionRestriction.objects.get(promotion=promotion).limit == 3
    assert AuditEvent.objects.filter(action="promotion.update", object_id=promotion.pk).count() == 1


def test_admin_actions_activate_and_deactivate_with_the_cap(staff_client, org):
    org.max_active_promotions = 1
    org.save()
    a = factories.PromotionFactory(org=org, active=False)
    b = factories.PromotionFactory(org=org, active=False)

    response = staff_client.post(
        CHANGELIST_URL, {"action": "activate_selected", "_selected_action": [a.pk, b.pk]}, follow=True
    )

    assert Promotion.objects.filter(pk__in=[a.pk, b.pk], active=True).count() == 1
    assert "Exceeded maximum active promotions" in response.content.decode()

    staff_client.post(CHANGELIST_URL, {"action": "deactivate_selected", "_selected_action": [a.pk, b.pk]})
    assert not Promotion.objects.filter(active=True).exists()


@pytest.mark.parametrize(
    "dates",
    [
        {"start_date_0": "", "start_date_1": ""},
        {"end_date_0": "", "end_date_1": ""},
        {"start_date_0": "31/31/2030"},
        {"end_date_1": "noon"},
    ],
    ids=["no start", "no end", "unparsable start", "unparsable end"],
)
def test_admin_missing_or_unparsable_dates_are_form_errors(staff_client, org, dates):
    # when: the restriction formset's rules compare the dates the promotion form could not read
    response = staff_client.post(ADD_URL, form_data(**dates))

    # then
    assert response.status_code == 200
    text = response.content.decode()
    assert "This field is required." in text or "Enter a valid" in text
    assert not Promotion.objects.exists()


def test_admin_missing_builder_values_say_what_is_missing_beside_their_field(staff_client, org):
    # when: no threshold and no percentage
    response = staff_client.post(
        ADD_URL, form_data(cart_value="", reward="CART_BASED:PERCENTAGE", act_value="")
    )

    # then: one message in words under each field, nothing written
    text = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_cart_value_error"><li>Enter the subtotal.</li></ul>' in text
    assert 'id="id_act_value_error"><li>Enter the percentage.</li></ul>' in text
    assert not Promotion.objects.exists()


def test_admin_shape_errors_name_the_part_they_are_in(staff_client, org):
    # when: a percentage above 100 (the API's serializer refuses it)
    response = staff_client.post(ADD_URL, form_data(reward="PRODUCT_BASED:PERCENTAGE", act_value="150"))

    # then: the path, as the API reports it
    assert "action.productBasedAction.value: A percentage must be at most 100." in response.content.decode()


# --- Duplicate ---------------------------------------------------------------------------------------


def _original(org, **fields):
    start = timezone.now() + dt.timedelta(days=2)
    promotion = factories.PromotionFactory(
        org=org, name="Spring sale", start_date=start, end_date=start + dt.timedelta(days=10), **fields
    )
    PromotionRestriction.objects.create(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=3)
    return promotion


def test_duplicate_opens_the_add_form_prefilled_and_saves_only_on_submit(staff_client, org):
    original = _original(org)
    factories.PromotionFactory(org=org, name="Copy of Spring sale")

    response = staff_client.get(reverse("admin:promotions_promotion_duplicate", args=[original.pk]))
    assert response.status_code == 302
    page = staff_client.get(response["Location"])

    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.initial["name"] == "Copy of Spring sale (2)"
    assert form.initial["active"] is False
    assert form.initial["start_date"] == original.start_date
    assert form.initial["cond_type"] == builder.decompose(original.condition, original.action)["cond_type"]
    formset = page.context["inline_admin_formsets"][0].formset
    assert [f.initial["limit"] for f in formset.forms] == [3]
    assert "copied-from" in page.content.decode()
    assert Promotion.objects.filter(org=org).count() == 2  # nothing saved yet

    # the marketer saves the form: the same create service
    data = form_data(name="Copy of Spring sale (2)")
    data.pop("active")
    saved = staff_client.post(response["Location"], data)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    copy = Promotion.objects.get(org=org, name="Copy of Spring sale (2)")
    assert copy.active is False
    assert AuditEvent.objects.filter(action="promotion.create", object_id=copy.pk).exists()


def test_duplicate_of_a_started_promotion_starts_now(staff_client, org):
    original = _original(org)
    Promotion.objects.filter(pk=original.pk).update(start_date=timezone.now() - dt.timedelta(days=1))

    page = staff_client.get(f"{ADD_URL}?copy_of={original.pk}")

    initial = page.context["adminform"].form.initial
    assert abs(initial["start_date"] - timezone.now()) < dt.timedelta(minutes=2)
    assert initial["end_date"] == original.end_date


def test_duplicate_list_action_and_other_orgs(staff_client, org):
    original = _original(org)
    other = factories.PromotionFactory(org=factories.OrganizationFactory())

    response = staff_client.post(
        CHANGELIST_URL, {"action": "duplicate_selected", "_selected_action": [original.pk]}
    )
    assert response.status_code == 302 and f"copy_of={original.pk}" in response["Location"]
    assert (
        staff_client.get(reverse("admin:promotions_promotion_duplicate", args=[other.pk])).status_code == 404
    )
    page = staff_client.get(f"{ADD_URL}?copy_of={other.pk}")
    assert page.context["adminform"].form.initial.get("name") in (None, "")
