"""An Earning promotion's earning criteria in the builder (promotions/builder.py, "Earning criteria"): every
kind is picked with controls, stored as the API stores it, read back into the same controls and saved
again unchanged; what the controls cannot show is kept; a bad or inconsistent pick is an inline error in
words, never a 500; the sentence reads each kind."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions import builder
from promotions.models import Promotion
from tests import factories
from tests.promotions.test_capillary_promotion_objects import OBJECTS
from tests.promotions.test_promotion_admin import ADD_URL
from tests.promotions.test_promotion_builder import (
    ACTIONS,
    CONDITIONS,
    PREVIEW_URL,
    builder_post,
    form_fields,
)

API_URL = "/api_gateway/v1/promotions"
RULE = {**CONDITIONS["cart subtotal"][0], **ACTIONS["% off the cart"][0]}
PUBLISHED = [obj["earningCriteria"] for obj in OBJECTS if obj.get("earningCriteria")]

# Each kind as a marketer picks it, and the JSON it stores.
KINDS = {
    "not by criteria": ({"ec_from": ""}, None),
    "every transaction (Capillary's published criteria)": (
        {
            "ec_from": "ACTIVITY",
            "ec_event": "TransactionAdd",
            "ec_events": "ALL",
            "ec_milestone": "0",
            "ec_group": "0",
            "ec_name": "TransactionAdd_Criteria",
            "ec_active": "true",
        },
        next(c for c in PUBLISHED if c["criteriaDsl"] == "true"),
    ),
    "a transaction with an item of a SKU (Capillary's published criteria)": (
        {
            "ec_from": "ACTIVITY",
            "ec_event": "TransactionAdd",
            "ec_events": "SKU",
            "ec_sku": "221900",
            "ec_milestone": "0",
            "ec_group": "0",
            "ec_name": "TransactionAdd_Criteria",
            "ec_active": "true",
        },
        next(c for c in PUBLISHED if c["criteriaDsl"] != "true"),
    ),
    "registering, within 30 days": (
        {"ec_from": "ACTIVITY", "ec_event": "CustomerRegistration", "ec_valid_days": "30"},
        {"earnedFromType": "ACTIVITY", "eventType": "CustomerRegistration", "earningValidTillDays": 30},
    ),
    "a profile update, every one, switched off": (
        {"ec_from": "ACTIVITY", "ec_event": "CustomerUpdate", "ec_events": "ALL", "ec_active": "false"},
        {
            "earnedFromType": "ACTIVITY",
            "eventType": "CustomerUpdate",
            "criteriaDsl": "true",
            "criteriaDslJson": PUBLISHED[-1]["criteriaDslJson"],
            "active": False,
        },
    ),
    "a milestone of a group": (
        {"ec_from": "MILESTONE", "ec_milestone": "12", "ec_group": "3", "ec_name": "Gold"},
        {"criteriaName": "Gold", "earnedFromType": "MILESTONE", "milestoneId": 12, "groupId": 3},
    ),
}

SENTENCES = {
    "not by criteria": "Not earned by criteria: earned through the earn APIs and bulk earn only.",
    "every transaction (Capillary's published criteria)": (
        "Earned when the customer makes a transaction (criteria “TransactionAdd_Criteria”)."
    ),
    "a transaction with an item of a SKU (Capillary's published criteria)": (
        "Earned when the customer makes a transaction with an item of SKU 221900 (criteria "
        "“TransactionAdd_Criteria”)."
    ),
    "registering, within 30 days": "Earned when the customer registers, within 30 days of being issued it.",
    "a profile update, every one, switched off": (
        "Earned when the customer updates their profile; the criteria are switched off."
    ),
    "a milestone of a group": "Earned when the customer reaches milestone 12 of group 3 (criteria “Gold”).",
}


@pytest.fixture
def staff_client(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="promotions"))
    client.force_login(user)
    return client


def earning_post(kind: str = "EARNING", **fields) -> dict:
    return {**builder_post(**RULE, **fields), "type": kind}


def controls(values: dict) -> dict:
    return {name: value for name, value in values.items() if name.startswith("ec_") and value != ""}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_round_trips_form_to_json_to_form(staff_client, api, org, kind):
    fields, stored = KINDS[kind]

    # when: picked and saved; then its page opened and saved as it stands
    created = staff_client.post(ADD_URL, earning_post(**fields))
    promotion = Promotion.objects.get(org=org)
    url = reverse("admin:promotions_promotion_change", args=[promotion.pk])
    page = staff_client.get(url).content.decode()
    shown = form_fields(page)
    resaved = staff_client.post(url, shown)

    # then: stored as the API echoes it, shown in the same controls, saved back unchanged
    assert created.status_code == 302, created.content.decode()[-3000:]
    assert promotion.earning_criteria == stored
    assert api.get(f"{API_URL}/{promotion.pk}").json()["data"]["earningCriteria"] == stored
    assert controls(shown) == controls(fields)
    assert SENTENCES[kind] in page
    assert resaved.status_code == 302, resaved.content.decode()[-3000:]
    promotion.refresh_from_db()
    assert promotion.earning_criteria == stored
    assert builder.decompose_earning(stored) == controls(fields)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_sentence_reads_each_kind(kind):
    assert builder.earning_words(KINDS[kind][1]) == SENTENCES[kind]


def test_what_the_controls_cannot_show_is_kept(staff_client, api, org):
    # given: criteria sent through the API with an expression of their own and a key of their own
    criteria = {
        "criteriaName": "Big spend", "earnedFromType": "ACTIVITY", "eventType": "TransactionAdd",
        "criteriaDsl": "currentTxn.amount > 1000", "criteriaDslJson": "{}", "active": True,
        "loyaltyProgramId": 7,
    }  # fmt: skip
    promotion = factories.PromotionFactory(org=org, type="EARNING", earning_criteria=criteria)
    url = reverse("admin:promotions_promotion_change", args=[promotion.pk])

    # when: its page is opened, the name changed, and saved
    page = staff_client.get(url).content.decode()
    saved = staff_client.post(url, {**form_fields(page), "ec_name": "Bigger spend"})

    # then: the expression and the unknown key are as they were; the name is the new one
    assert "matching the expression currentTxn.amount &gt; 1000" in page
    assert saved.status_code == 302, saved.content.decode()[-3000:]
    promotion.refresh_from_db()
    assert promotion.earning_criteria == {**criteria, "criteriaName": "Bigger spend"}


BAD = {
    "a milestone without its id": ({"ec_from": "MILESTONE"}, "enter the milestone's id"),
    "a milestone id of 0": ({"ec_from": "MILESTONE", "ec_milestone": "0"}, "enter the milestone's id"),
    "an activity without its event": ({"ec_from": "ACTIVITY"}, "An activity earns it: pick the event"),
    "items of a registration": (
        {"ec_from": "ACTIVITY", "ec_event": "CustomerRegistration", "ec_events": "SKU", "ec_sku": "A1"},
        "Only a transaction has items",
    ),
    "an item filter without its SKU": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_events": "SKU"},
        "Enter the SKU whose purchase earns it.",
    ),
    "a SKU with a quote": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_events": "SKU", "ec_sku": 'A"1'},
        "cannot contain a double quote",
    ),
    "days not a number": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_valid_days": "a month"},
        "Enter the days to earn it in as a whole number from 1 to 3650.",
    ),
    "days zero": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_valid_days": "0"},
        "Enter the days to earn it in as a whole number from 1 to 3650.",
    ),
    "a negative group": (
        {"ec_from": "MILESTONE", "ec_milestone": "4", "ec_group": "-1"},
        "Enter the group's id as a whole number from 0",
    ),
    "the kept part tampered with": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_kept": "[1, 2]"},
        "could not be read: reload the page",
    ),
    "larger than the API takes": (
        {"ec_from": "ACTIVITY", "ec_event": "TransactionAdd", "ec_name": "x" * 17_000},
        "earningCriteria: At most 16384 bytes of JSON.",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_an_inline_error_not_a_500(staff_client, org, case):
    fields, message = BAD[case]

    response = staff_client.post(ADD_URL, earning_post(**fields))

    assert response.status_code == 200
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html or message in html, html[-3000:]
    assert not Promotion.objects.exists()


def test_criteria_on_a_promotion_that_is_not_earning_are_refused_in_words(staff_client, org):
    response = staff_client.post(
        ADD_URL, earning_post("CUSTOMER", ec_from="ACTIVITY", ec_event="TransactionAdd")
    )

    assert response.status_code == 200
    assert "Only an Earning promotion is earned by criteria" in response.content.decode()
    assert not Promotion.objects.exists()


def test_the_preview_answers_the_criteria_and_their_sentence(staff_client, org):
    fields, stored = KINDS["a milestone of a group"]

    answer = staff_client.post(PREVIEW_URL, {**RULE, **fields}).json()
    bad = staff_client.post(PREVIEW_URL, {**RULE, "ec_from": "MILESTONE"}).json()

    assert answer["earningCriteria"] == stored and answer["errors"] == []
    assert answer["earningSummary"] == SENTENCES["a milestone of a group"]
    assert [error["field"] for error in bad["errors"]] == ["ec_milestone"]
