"""`timeCriteria`: a strict shape, stored with `durationInHours` an integer, echoed, kept or replaced by
an update, and taken by the admin form and import_promotions."""

import json

import pytest

from promotions.models import Promotion
from tests.promotions.test_import_promotions import run, write_csv
from tests.promotions.test_promotion_admin import ADD_URL, form_data, staff_client  # noqa: F401
from tests.promotions.test_promotion_create import URL, body

WEEKDAY_EVENINGS = {
    "startTime": "16:00",
    "durationInHours": 2,
    "repeatFrequency": "WEEKS",
    "weeklyValues": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (WEEKDAY_EVENINGS, WEEKDAY_EVENINGS),
        ({**WEEKDAY_EVENINGS, "durationInHours": "2"}, WEEKDAY_EVENINGS),  # Capillary's example writes "2"
        (
            {"startTime": "22:30", "durationInHours": 24, "repeatFrequency": "DAYS"},
            {"startTime": "22:30", "durationInHours": 24, "repeatFrequency": "DAYS"},
        ),
        (
            {"startTime": "00:00", "durationInHours": "1", "repeatFrequency": "DOES_NOT_REPEAT"},
            {"startTime": "00:00", "durationInHours": 1, "repeatFrequency": "DOES_NOT_REPEAT"},
        ),
    ],
    ids=["weeks", "digit string", "days", "does not repeat"],
)
def test_time_criteria_is_stored_and_echoed_with_an_integer_duration(api, sent, stored):
    # when
    response = api.post(URL, body(timeCriteria=sent), format="json")

    # then
    assert response.status_code == 200, response.content
    assert response.json()["data"]["timeCriteria"] == stored
    promotion = Promotion.objects.get(pk=response.json()["data"]["id"])
    assert promotion.time_criteria == stored
    assert api.get(f"{URL}/{promotion.pk}").json()["data"]["timeCriteria"] == stored


def test_without_time_criteria_it_is_echoed_as_null(api):
    data = api.post(URL, body(), format="json").json()["data"]
    assert data["timeCriteria"] is None
    assert Promotion.objects.get(pk=data["id"]).time_criteria is None


@pytest.mark.parametrize(
    ("time_criteria", "message"),
    [
        ({**WEEKDAY_EVENINGS, "startTime": "24:00"}, 'timeCriteria.startTime: Must be a time "HH:mm"'),
        ({**WEEKDAY_EVENINGS, "startTime": "9:00"}, 'timeCriteria.startTime: Must be a time "HH:mm"'),
        ({**WEEKDAY_EVENINGS, "startTime": "16:00:00"}, 'timeCriteria.startTime: Must be a time "HH:mm"'),
        ({**WEEKDAY_EVENINGS, "startTime": 1600}, "timeCriteria.startTime: Must be a JSON string."),
        ({**WEEKDAY_EVENINGS, "durationInHours": 0}, "timeCriteria.durationInHours: Ensure this value is greater"),
        ({**WEEKDAY_EVENINGS, "durationInHours": 25}, "timeCriteria.durationInHours: Ensure this value is less"),
        ({**WEEKDAY_EVENINGS, "durationInHours": "25"}, "timeCriteria.durationInHours: Ensure this value is less"),
        ({**WEEKDAY_EVENINGS, "durationInHours": 2.5}, "timeCriteria.durationInHours: Must be a JSON integer"),
        ({**WEEKDAY_EVENINGS, "durationInHours": "2.0"}, "timeCriteria.durationInHours: A valid integer"),
        ({**WEEKDAY_EVENINGS, "durationInHours": " 2"}, "timeCriteria.durationInHours: A valid integer"),
        ({**WEEKDAY_EVENINGS, "durationInHours": True}, "timeCriteria.durationInHours: Must be a JSON integer"),
        ({**WEEKDAY_EVENINGS, "repeatFrequency": "MONTHS"}, 'timeCriteria.repeatFrequency: "MONTHS" is not'),
        ({**WEEKDAY_EVENINGS, "weeklyValues": []}, "timeCriteria.weeklyValues: Required (at least one day)"),
        ({**WEEKDAY_EVENINGS, "weeklyValues": None}, "timeCriteria.weeklyValues: This field may not be null."),
        ({**WEEKDAY_EVENINGS, "weeklyValues": ["MON"]}, 'timeCriteria.weeklyValues.0: "MON" is not a valid'),
        ({**WEEKDAY_EVENINGS, "weeklyValues": ["MONDAY", "MONDAY"]}, "timeCriteria.weeklyValues: Each day"),
        ({k: v for k, v in WEEKDAY_EVENINGS.items() if k != "weeklyValues"}, "timeCriteria.weeklyValues: Required"),
        ({**WEEKDAY_EVENINGS, "repeatFrequency": "DAYS"}, "timeCriteria.weeklyValues: Only with repeatFrequency"),
        (
            {"startTime": "10:00", "durationInHours": 1, "repeatFrequency": "DAYS", "weeklyValues": []},
            "timeCriteria.weeklyValues: Only with repeatFrequency WEEKS.",
        ),
        ({**WEEKDAY_EVENINGS, "monthlyValues": [1]}, "timeCriteria.monthlyValues: Unknown field."),
        ({"startTime": "10:00", "repeatFrequency": "DAYS"}, "timeCriteria.durationInHours: This field is required."),
        ([WEEKDAY_EVENINGS], "timeCriteria: Invalid data. Expected a dictionary, but got list."),
    ],
)  # fmt: skip
def test_a_time_criteria_not_in_the_documented_shape_is_400(api, time_criteria, message):
    response = api.post(URL, body(timeCriteria=time_criteria), format="json")

    assert response.status_code == 400, response.content
    messages = [error["message"] for error in response.json()["errors"]]
    assert any(text.startswith(message) for text in messages), messages
    assert not Promotion.objects.exists()


def test_an_update_keeps_it_when_left_out_replaces_it_when_sent_and_null_clears(api):
    promotion_id = api.post(URL, body(timeCriteria=WEEKDAY_EVENINGS), format="json").json()["data"]["id"]
    daily = {"startTime": "08:00", "durationInHours": 3, "repeatFrequency": "DAYS"}

    kept = api.put(f"{URL}/{promotion_id}", {"priority": 3}, format="json").json()["data"]
    replaced = api.put(f"{URL}/{promotion_id}", {"timeCriteria": daily}, format="json").json()["data"]
    cleared = api.put(f"{URL}/{promotion_id}", {"timeCriteria": None}, format="json").json()["data"]

    assert kept["timeCriteria"] == WEEKDAY_EVENINGS
    assert replaced["timeCriteria"] == daily
    assert cleared["timeCriteria"] is None
    assert Promotion.objects.get(pk=promotion_id).time_criteria is None


def test_a_promotion_read_and_sent_back_is_unchanged(api):
    created = api.post(URL, body(timeCriteria={**WEEKDAY_EVENINGS, "durationInHours": "2"}), format="json")
    data = created.json()["data"]
    again = api.put(f"{URL}/{data['id']}", {"timeCriteria": data["timeCriteria"]}, format="json").json()[
        "data"
    ]
    assert again["timeCriteria"] == data["timeCriteria"] == WEEKDAY_EVENINGS


def test_the_admin_takes_a_time_criteria_checks_it_and_leaves_an_empty_one_as_any_time(
    staff_client,  # noqa: F811
    org,
):
    # the builder's time scope: no JSON typed
    evenings = {
        "time_repeat": "WEEKS", "time_start": "16:00", "time_hours": "2",
        "time_days": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    }  # fmt: skip
    windowed = staff_client.post(ADD_URL, form_data(**evenings))
    empty = staff_client.post(ADD_URL, form_data(name="Any time", time_repeat=""))
    junk = staff_client.post(
        ADD_URL, form_data(name="Junk", time_repeat="DAYS", time_start="25:00", time_hours="1")
    )

    assert windowed.status_code == 302, windowed.content.decode()[:3000]
    assert Promotion.objects.get(name="Admin promotion").time_criteria == WEEKDAY_EVENINGS
    assert empty.status_code == 302, empty.content.decode()[:3000]
    assert Promotion.objects.get(name="Any time").time_criteria is None
    assert junk.status_code == 200
    assert "Enter the opening time as HH:MM, 00:00 to 23:59." in junk.content.decode()
    assert not Promotion.objects.filter(name="Junk").exists()


def test_import_takes_time_criteria_as_a_json_cell(org, tmp_path):
    sent = body(name="Imported evenings")
    header = ["name", "type", "startDateISO", "endDateISO", "condition", "action", "timeCriteria"]
    row = [sent["name"], "POS", sent["startDateISO"], sent["endDateISO"], json.dumps(sent["condition"]),
           json.dumps(sent["action"]), json.dumps({**WEEKDAY_EVENINGS, "durationInHours": "2"})]  # fmt: skip

    run(write_csv(tmp_path, header, [row]), org)

    assert Promotion.objects.get(org=org, name="Imported evenings").time_criteria == WEEKDAY_EVENINGS
