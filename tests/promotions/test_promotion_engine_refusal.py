"""What the engine cannot evaluate is refused at create and update (API, admin, import_promotions), and
check_promotions lists the stored promotions that no longer compile."""

from __future__ import annotations

import io

from django.core.management import call_command

from promotions.models import Promotion
from tests.factories import PromotionFactory
from tests.promotions.test_import_promotions import run_failing, write_json
from tests.promotions.test_promotion_admin import ADD_URL, form_data, staff_client  # noqa: F401
from tests.promotions.test_promotion_create import body

URL = "/api_gateway/v1/promotions"
# Valid for the create API's shapes, but a fixed price for the whole cart: the engine prices products.
WHOLE_CART_FIXED_PRICE = {
    "type": "FIXED_PRICE",
    "fixedPriceAction": {"value": 50, "includeItemsFromConditionSet": True},
}
CART_CONDITION = {
    "type": "CART",
    "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 100},
}
REASON = "action.fixedPriceAction.includeItemsFromConditionSet: A fixed price applies to products"


def test_create_refuses_what_the_engine_cannot_evaluate_naming_the_part(api, org):
    response = api.post(URL, body(condition=CART_CONDITION, action=WHOLE_CART_FIXED_PRICE), format="json")

    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["code"] == 400
    assert error["message"].startswith(f"Not supported by the promotion engine: {REASON}")
    assert not Promotion.objects.exists()


def test_update_refuses_it_and_keeps_the_promotion(api, org):
    created = api.post(URL, body(), format="json")
    assert created.status_code == 200, created.content
    promotion_id = created.json()["data"]["id"]
    before = Promotion.objects.get(pk=promotion_id)

    response = api.put(
        f"{URL}/{promotion_id}",
        {"condition": CART_CONDITION, "action": WHOLE_CART_FIXED_PRICE},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert REASON in response.json()["errors"][0]["message"]
    after = Promotion.objects.get(pk=promotion_id)
    assert (after.condition, after.action) == (before.condition, before.action)


def test_the_admin_shows_it_as_a_form_error(staff_client, org):  # noqa: F811
    # a fixed bundle price on the items of a cart condition (the whole cart), picked in the builder
    response = staff_client.post(ADD_URL, form_data(reward="FIXED_PRICE", act_value="50"))

    assert response.status_code == 200
    assert "Not supported by the promotion engine" in response.content.decode()
    assert not Promotion.objects.exists()


def test_import_reports_it_per_entry(org, tmp_path):
    path = write_json(
        tmp_path, [body(name="Fixed cart", condition=CART_CONDITION, action=WHOLE_CART_FIXED_PRICE)]
    )

    message, _, errors = run_failing(path, org)

    assert "nothing was imported" in message
    assert f"index 0 'Fixed cart': 400 Not supported by the promotion engine: {REASON}" in errors
    assert not Promotion.objects.exists()


def check(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_promotions", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_check_promotions_lists_stored_promotions_that_do_not_compile(org, other_org):
    # given promotions stored around the services: one the engine cannot evaluate, in each org
    PromotionFactory(org=org, name="fine")
    broken = PromotionFactory(org=org, name="broken", condition=CART_CONDITION, action=WHOLE_CART_FIXED_PRICE)
    elsewhere = PromotionFactory(
        org=other_org, name="other", active=False, condition=CART_CONDITION, action=WHOLE_CART_FIXED_PRICE
    )

    status, output, errors = check()
    mine = check("--org", str(org.pk))
    active = check("--active-only")

    assert status == 1
    # in (org, id) order, each with its id, org, name and the unsupported part
    assert [line.split()[0] for line in output.splitlines()] == [broken.pk, elsewhere.pk]
    assert output.splitlines()[0].startswith(f"{broken.pk} org {org.pk} 'broken': {REASON}")
    assert all(REASON in line for line in output.splitlines())
    assert "2 promotion(s) the engine cannot evaluate." in errors
    assert mine[0] == 1 and [line.split()[0] for line in mine[1].splitlines()] == [broken.pk]
    assert active[0] == 1 and [line.split()[0] for line in active[1].splitlines()] == [broken.pk]


def test_check_promotions_exits_0_when_everything_compiles(org):
    PromotionFactory(org=org)

    assert check() == (0, "Every promotion compiles.\n", "")


def test_a_promotion_that_does_not_compile_is_skipped_by_evaluate(api, org):
    from promotions.rules import org_rules_forget

    org_rules_forget()
    PromotionFactory(org=org, type="POS", condition=CART_CONDITION, action=WHOLE_CART_FIXED_PRICE)
    fine = PromotionFactory(
        org=org, type="POS", condition=CART_CONDITION,
        action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 5}},
    )  # fmt: skip

    response = api.post(
        "/api_gateway/v1/promotions/evaluate",
        {"amount": "200", "cartItems": [{"sku": "A", "amount": "200", "qty": "1"}]},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert [p["promotionId"] for p in response.json()["data"]["appliedPromotions"]] == [fine.pk]
    org_rules_forget()
