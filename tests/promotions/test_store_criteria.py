"""`storeCriteria` and `isLoyaltyOnly`: stored as sent, echoed, and kept or replaced by an update."""

import json

import pytest

from promotions.models import AuditEvent, Promotion
from tests.promotions.test_capillary_promotion_objects import copied
from tests.promotions.test_import_promotions import run, write_csv
from tests.promotions.test_promotion_admin import ADD_URL, form_data, staff_client  # noqa: F401
from tests.promotions.test_promotion_create import URL, body

WEST = {"type": "ZONE", "values": [75175598], "operator": "IN"}


def test_store_criteria_and_loyalty_only_are_stored_and_echoed(api):
    # when
    response = api.post(URL, body(storeCriteria=WEST, isLoyaltyOnly=True, type="POS"), format="json")

    # then
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["storeCriteria"], data["isLoyaltyOnly"]) == (WEST, True)
    stored = Promotion.objects.get(pk=data["id"])
    assert (stored.store_criteria, stored.is_loyalty_only) == (WEST, True)
    assert api.get(f"{URL}/{data['id']}").json()["data"] == data


def test_without_them_a_promotion_is_for_every_store_and_every_customer(api):
    # when
    data = api.post(URL, body(), format="json").json()["data"]

    # then: echoed as "none", so a client sees the fields and can send the body back
    assert (data["storeCriteria"], data["isLoyaltyOnly"]) == (None, False)
    assert api.post(URL, {**data, "name": "sent back"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("store_criteria", "message"),
    [
        ({**WEST, "type": "REGION"}, 'storeCriteria.type: "REGION" is not a valid choice.'),
        ({**WEST, "operator": "EQUALS"}, 'storeCriteria.operator: "EQUALS" is not a valid choice.'),
        ({**WEST, "values": []}, "storeCriteria.values: This list may not be empty."),
        ({**WEST, "values": ["75175598"]}, "storeCriteria.values: Item 0: Must be a JSON integer."),
        ({**WEST, "values": [0]}, "storeCriteria.values.0: Ensure this value is greater than or equal to 1."),
        (
            {**WEST, "values": list(range(1, 1002))},
            "storeCriteria.values: Ensure this field has no more than",
        ),
        ({"type": "STORE", "values": [101]}, "storeCriteria.operator: This field is required."),
        ({**WEST, "storeIds": [1]}, "storeCriteria.storeIds: Unknown field."),
        ([WEST], "storeCriteria: Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_a_store_criteria_not_in_the_documented_shape_is_400(api, store_criteria, message):
    # when
    response = api.post(URL, body(storeCriteria=store_criteria), format="json")

    # then
    assert response.status_code == 400, response.content
    messages = [error["message"] for error in response.json()["errors"]]
    assert any(text.startswith(message) for text in messages), messages
    assert not Promotion.objects.exists()


def test_loyalty_only_is_a_json_boolean(api):
    response = api.post(URL, body(isLoyaltyOnly="yes"), format="json")
    assert response.json() == {"errors": [{"code": 400, "message": "isLoyaltyOnly: Must be a JSON boolean."}]}


def test_an_update_keeps_them_when_left_out_replaces_them_when_sent_and_null_clears(api):
    # given
    promotion_id = api.post(URL, body(storeCriteria=WEST, isLoyaltyOnly=True), format="json").json()["data"][
        "id"
    ]
    nautica = {"type": "STORE", "values": [75027647], "operator": "NOT_IN"}

    # when
    kept = api.put(f"{URL}/{promotion_id}", {"priority": 3}, format="json").json()["data"]
    replaced = api.put(
        f"{URL}/{promotion_id}", {"storeCriteria": nautica, "isLoyaltyOnly": False}, format="json"
    ).json()["data"]
    cleared = api.put(f"{URL}/{promotion_id}", {"storeCriteria": None}, format="json").json()["data"]

    # then
    assert (kept["storeCriteria"], kept["isLoyaltyOnly"]) == (WEST, True)
    assert (replaced["storeCriteria"], replaced["isLoyaltyOnly"]) == (nautica, False)
    assert (cleared["storeCriteria"], cleared["isLoyaltyOnly"]) == (None, False)
    assert Promotion.objects.get(pk=promotion_id).store_criteria is None
    changes = [
        event.data["changed"]
        for event in AuditEvent.objects.filter(action="promotion.update", object_id=promotion_id).order_by(
            "pk"
        )
    ]
    assert changes == [["priority"], ["is_loyalty_only", "store_criteria"], ["store_criteria"]]


def test_the_published_region_offers_keep_their_store_scope(api):
    # given: Capillary's two objects with a store scope (a ZONE and a STORE), both loyalty-only
    scoped = [index for index in range(14) if "storeCriteria" in copied(index)]

    # when
    created = [api.post(URL, copied(index), format="json").json()["data"] for index in scoped]

    # then
    assert [(data["storeCriteria"]["type"], data["isLoyaltyOnly"]) for data in created] == [
        ("ZONE", True),
        ("STORE", True),
    ]


def test_the_admin_takes_a_store_criteria_checks_it_and_leaves_an_empty_one_as_every_store(
    staff_client,  # noqa: F811
    org,
):
    # when (the builder's store scope: no JSON typed)
    zone = {"store_type": "ZONE", "store_operator": "IN", "store_values": "75175598"}
    scoped = staff_client.post(ADD_URL, form_data(**zone, is_loyalty_only="on", type="POS"))
    empty = staff_client.post(ADD_URL, form_data(name="Every store", store_type=""))
    junk = staff_client.post(ADD_URL, form_data(name="Junk", **{**zone, "store_values": "x"}))

    # then
    assert scoped.status_code == 302, scoped.content.decode()[:3000]
    promotion = Promotion.objects.get(name="Admin promotion")
    assert (promotion.store_criteria, promotion.is_loyalty_only) == (WEST, True)
    assert empty.status_code == 302, empty.content.decode()[:3000]
    assert Promotion.objects.get(name="Every store").store_criteria is None
    assert junk.status_code == 200
    assert "is not an id: one id (a whole number) a line." in junk.content.decode()
    assert not Promotion.objects.filter(name="Junk").exists()


def test_import_takes_store_criteria_as_a_json_cell_and_loyalty_only_as_true_or_false(org, tmp_path):
    # given
    sent = body(name="Imported West")
    header = [
        "name",
        "type",
        "startDateISO",
        "endDateISO",
        "condition",
        "action",
        "storeCriteria",
        "isLoyaltyOnly",
    ]
    row = [sent["name"], "POS", sent["startDateISO"], sent["endDateISO"], json.dumps(sent["condition"]),
           json.dumps(sent["action"]), json.dumps(WEST), "true"]  # fmt: skip
    path = write_csv(tmp_path, header, [row])

    # when
    run(path, org)

    # then
    promotion = Promotion.objects.get(org=org, name="Imported West")
    assert (promotion.store_criteria, promotion.is_loyalty_only) == (WEST, True)
