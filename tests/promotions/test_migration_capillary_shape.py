"""Migration 0005 rewrites the stored conditions and actions into Capillary's documented shape.

The rewrite is unit-tested on raw rows (its result is what the current API stores for the same
promotion), then run by Django's MigrationExecutor, forwards and backwards, on the test database.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from promotions.serializers import ActionSerializer, ConditionSerializer
from tests.factories import OrganizationFactory, PromotionFactory

MIGRATION = importlib.import_module("promotions.migrations.0005_promotion_objects_capillary_shape")
BEFORE = ("promotions", "0004_audit_event_append_only")
AFTER = ("promotions", "0005_promotion_objects_capillary_shape")

BARE_TARGET = {"criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["TIE-1"]}], "kpi": "NONE"}
WRAPPED_TARGET = {
    "type": "PRODUCT",
    "productCondition": {
        "criteriaList": [{"entity": "SKU", "operator": "IN", "values": ["TIE-1"]}],
        "kpi": "NONE",
        "operator": "NONE",
        "value": "0.000000",
    },
}
# (condition, action) as this service stored them before, and as they are stored now
LEGACY = {
    "free product, bare target": (
        {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 100}},
        {"type": "FREE_PRODUCT", "freeProductAction": {"includeItemsFromConditionSet": False,
                                                       "productBasedCondition": BARE_TARGET}},
    ),
    "per unit, old shape": (
        {"type": "PRODUCT", "productCondition": {**BARE_TARGET, "kpi": "QUANTITY", "operator": "EQUALS", "value": 2}},
        {"type": "PER_UNIT", "perUnitAction": {"type": "ABSOLUTE", "value": 5.5, "unit": 2,
                                               "includeItemsFromConditionSet": True}},
    ),
    "product based, bare target": (
        {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [BARE_TARGET]}},
        {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": 10,
                                                         "includeItemsFromConditionSet": False,
                                                         "productBasedCondition": BARE_TARGET}},
    ),
}  # fmt: skip
CURRENT = {
    "free product, bare target": (
        {"type": "CART", "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": "100.000000"}},
        {"type": "FREE_PRODUCT", "freeProductAction": {"includeItemsFromConditionSet": False,
                                                       "productBasedCondition": WRAPPED_TARGET}},
    ),
    "per unit, old shape": (
        {"type": "PRODUCT", "productCondition": {**WRAPPED_TARGET["productCondition"], "kpi": "QUANTITY",
                                                 "operator": "EQUALS", "value": "2.000000"}},
        {"type": "PER_UNIT", "perUnitAction": {
            "rewardAction": {"type": "PRODUCT_BASED", "productBasedAction": {
                "type": "ABSOLUTE", "value": "5.500000", "includeItemsFromConditionSet": True}},
            "perUnitKPI": "QUANTITY", "perUnitDivider": "2.000000", "includeItemsFromConditionSet": True}},
    ),
    "product based, bare target": (
        {"type": "COMBO_PRODUCT", "comboProductCondition": {"productConditions": [WRAPPED_TARGET["productCondition"]]}},
        {"type": "PRODUCT_BASED", "productBasedAction": {"type": "PERCENTAGE", "value": "10.000000",
                                                         "includeItemsFromConditionSet": False,
                                                         "productBasedCondition": WRAPPED_TARGET}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LEGACY))
def test_the_rewrite_gives_what_the_api_stores_now(case):
    # given
    condition, action = LEGACY[case]

    # when
    new_condition, new_action = MIGRATION.values_forward(condition), MIGRATION.action_forward(action)

    # then: the documented shape, which the API accepts and stores unchanged
    assert (new_condition, new_action) == CURRENT[case]
    for serializer_class, value in ((ConditionSerializer, new_condition), (ActionSerializer, new_action)):
        serializer = serializer_class(data=value)
        assert serializer.is_valid(), serializer.errors
        assert serializer.to_representation(serializer.validated_data) == value
    # and a second run changes nothing
    assert MIGRATION.values_forward(new_condition) == new_condition
    assert MIGRATION.action_forward(new_action) == new_action


def test_the_current_shapes_are_left_as_they_are():
    for condition, action in CURRENT.values():
        assert MIGRATION.values_forward(condition) == condition
        assert MIGRATION.action_forward(action) == action


def migrate(*targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(list(targets))


def promotion_model_at(target, name="Promotion"):
    """The Promotion model (or another of the app) as it stood at `target`: later migrations add
    columns the current model would write and read."""
    return MigrationExecutor(connection).loader.project_state([target]).apps.get_model("promotions", name)


def latest() -> list[tuple[str, str]]:
    """Every app's last migration: migrating back to BEFORE also unapplies the other apps' migrations
    that depend on a later promotions migration, and the tests after this one need them again."""
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


# Outside a test transaction: PostgreSQL refuses to ALTER a table (a later migration's columns) with
# the rows' deferred foreign-key checks pending, and SQLite's schema editor needs its checks off.
def test_the_migration_runs_forwards_and_backwards(transactional_db):
    # given: the database before the migration, holding promotions in this service's old shapes
    migrate(BEFORE)
    try:
        org = promotion_model_at(BEFORE, "Organization").objects.create(id=OrganizationFactory.build().id)
        template = PromotionFactory.build(org_id=org.pk)
        ids = {
            case: promotion_model_at(BEFORE)
            .objects.create(
                org_id=template.org_id,
                name=case,
                type=template.type,
                start_date=template.start_date,
                end_date=template.end_date,
                condition=condition,
                action=action,
            )
            .pk
            for case, (condition, action) in LEGACY.items()
        }

        # when
        migrate(AFTER)

        # then
        Promotion = promotion_model_at(AFTER)
        for case, promotion_id in ids.items():
            promotion = Promotion.objects.get(pk=promotion_id)
            assert (promotion.condition, promotion.action) == CURRENT[case], case

        # when: migrated back, the old code's shapes return (values stay six-decimal strings)
        migrate(BEFORE)
        Promotion = promotion_model_at(BEFORE)

        # then
        free = Promotion.objects.get(pk=ids["free product, bare target"]).action["freeProductAction"]
        assert free["productBasedCondition"] == WRAPPED_TARGET["productCondition"]
        per_unit = Promotion.objects.get(pk=ids["per unit, old shape"]).action["perUnitAction"]
        assert per_unit == {"type": "ABSOLUTE", "value": "5.500000", "unit": "2.000000",
                            "includeItemsFromConditionSet": True}  # fmt: skip
    finally:
        migrate(*latest())
