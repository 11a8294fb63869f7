"""The promotion builder's form fields and its two small admin endpoints (docs/marketer-guide.md, "The
promotion builder"). `promotions/builder.py` turns the fields into the API's JSON; this module makes
them form fields, checks the result with the create API's serializers and the engine's compile (the
same code the API runs), and answers the page's live preview and value search."""

from __future__ import annotations

import json
from collections.abc import Mapping

from django import forms
from django.http import JsonResponse
from rest_framework import serializers

from promotions import builder
from promotions.engine import UnsupportedRule
from promotions.engine.compile import compile_action, compile_condition
from promotions.rules import unsupported_text
from promotions.serializers import (
    ActionSerializer,
    ConditionSerializer,
    PromotionInputSerializer,
    StoreCriteriaSerializer,
    TimeCriteriaSerializer,
)
from promotions_site.errors import flatten_detail

SMALL = {"size": 10}


def _choice(choices, initial=None, **kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=choices, required=False, initial=initial if initial is not None else choices[0][0], **kwargs
    )


def _text(label: str, help_text: str = "", **attrs) -> forms.CharField:
    return forms.CharField(
        required=False, label=label, help_text=help_text, widget=forms.TextInput(attrs={**SMALL, **attrs})
    )


def _lines(label: str, help_text: str = "", rows: int = 2) -> forms.CharField:
    return forms.CharField(
        required=False,
        label=label,
        help_text=help_text,
        strip=False,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 30, "class": "builder-values"}),
    )


def _group_fields(prefix: str, criteria: int) -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {
        f"{prefix}kpi": _choice(builder.GROUP_KPIS, label="The cart must have"),
        f"{prefix}operator": _choice(builder.OPERATORS, label="Comparison"),
        f"{prefix}value": _text("How many / how much"),
    }
    for j in range(criteria):
        fields[f"{prefix}c{j}_entity"] = _choice(builder.ENTITIES, label="Match on")
        fields[f"{prefix}c{j}_operator"] = _choice(builder.IN_OPERATORS, label="Which")
        fields[f"{prefix}c{j}_values"] = _lines("Values", "One a line; search to add values seen.")
        fields[f"{prefix}c{j}_attribute"] = _text("Attribute name")
    return fields


def builder_fields(counts: Mapping[str, int]) -> dict[str, forms.Field]:
    """Every field of the builder, for `counts` slots (`builder.slot_counts`)."""
    fields: dict[str, forms.Field] = {
        "cond_type": _choice(builder.CONDITION_KINDS, label="The customer must"),
        "cart_kpi": _choice(builder.CART_KPIS, label="Measure"),
        "cart_operator": _choice(builder.OPERATORS, label="Comparison"),
        "cart_value": _text("Amount or count", placeholder="1000.00"),
        "tender_nested": _choice(builder.TENDER_NESTED, label="Also require"),
        "pay_operator": _choice(builder.IN_OPERATORS, label="Payment mode"),
        "pay_values": _lines("Payment modes", "One a line, e.g. POINTS."),
        "reward": _choice(builder.REWARDS, label="The reward"),
        "act_value": _text("Percentage, amount or price", placeholder="10"),
        "free_qty": _text("Free units (empty: one, or the N of “exactly N units”)"),
        "target": _choice(builder.TARGETS, label="Applies to"),
        "target_type": _choice(builder.TARGET_TYPES, label="Which items"),
        "tcart_kpi": _choice(builder.CART_KPIS, label="Measure"),
        "tcart_operator": _choice(builder.OPERATORS, label="Comparison"),
        "tcart_value": _text("Amount or count"),
        "pu_kpi": _choice(builder.PER_UNIT_KPIS, label="Count"),
        "pu_divider": _text("Every", placeholder="2"),
        "pu_count": _choice(builder.PER_UNIT_COUNTS, label="Counted on"),
        "pu_reward": _choice(builder.PER_UNIT_REWARDS, label="Each group gets"),
        "store_type": _choice(builder.STORE_TYPES, label="Where"),
        "store_operator": _choice(builder.IN_OPERATORS, label="Which"),
        "store_values": _lines("Store, zone or concept ids", "One id a line; search to add.", rows=3),
        "time_repeat": _choice(builder.TIME_REPEATS, label="When"),
        "time_start": _text("Opens at (HH:MM, the org's time zone)", placeholder="18:00"),
        "time_hours": _text("For hours (1 to 24)", placeholder="4"),
        "time_days": forms.MultipleChoiceField(
            required=False,
            label="Days",
            choices=[(day, day.title()) for day in builder.WEEKDAYS],
            widget=forms.CheckboxSelectMultiple,
        ),
        "custom_fields": _lines("Custom fields", "One a line, as Name: value.", rows=3),
        **earning_fields(),
    }
    for k in range(counts["tm"]):
        fields[f"tm{k}_type"] = _choice(builder.TENDER_MODE_TYPES, label="Tender kind")
        fields[f"tm{k}_ids"] = _lines("Tender identifiers", "One a line, e.g. CreditCard.")
    for i in range(counts["cg"]):
        fields.update(_group_fields(f"cg{i}_", counts["criteria"]))
    for i in range(counts["tg"]):
        fields.update(_group_fields(f"tg{i}_", counts["criteria"]))
    return fields


def earning_fields() -> dict[str, forms.Field]:
    """The earning criteria's controls (an EARNING promotion); `ec_kept` carries the stored keys no
    control sets, as they were read."""
    return {
        "ec_from": _choice(builder.EARNED_FROM, label="How customers earn it"),
        "ec_event": _choice(builder.EVENT_TYPES, label="The event", help_text="API: eventType."),
        "ec_events": _choice(
            builder.EVENT_FILTERS, label="Which events count", help_text="API: criteriaDsl."
        ),
        "ec_sku": _text("SKU", placeholder="221900"),
        "ec_milestone": _text("Milestone id", help_text="API: milestoneId."),
        "ec_group": _text("Group id", help_text="API: groupId (0: none)."),
        "ec_valid_days": _text(
            "Earn within (days of being issued)", help_text="API: earningValidTillDays; empty: no limit."
        ),
        "ec_name": _text("Criteria name", help_text="API: criteriaName.", size=24),
        "ec_active": _choice(builder.YES_NO, label="Criteria switched on", help_text="API: active."),
        "ec_kept": forms.CharField(required=False, widget=forms.HiddenInput),
    }


def _api_field(serializer_class, name: str, value):
    """`value` through the create API's own field `name` (its type and size checks)."""
    try:
        return serializer_class().fields[name].run_validation(value)
    except serializers.ValidationError as error:
        raise forms.ValidationError("; ".join(flatten_detail({name: error.detail}))) from error


def _api_shape(serializer_class, name: str, value) -> dict:
    """`value` as the create API validates and stores it; forms.ValidationError with the API's words."""
    serializer = serializer_class(data=value)
    if not serializer.is_valid():
        raise forms.ValidationError("; ".join(flatten_detail(serializer.errors, prefix=name)))
    return serializer.to_representation(serializer.validated_data)


class BuiltRule:
    """What the builder's values make: the API's condition, action, store and time criteria and custom
    fields, each checked by the create API's serializer and the engine's compile; `errors` as
    (field or None, message), in words."""

    def __init__(self, values: Mapping):
        self.errors: list[tuple[str | None, str]] = []
        self.condition = self.action = self.store_criteria = self.time_criteria = None
        self.custom_field_values: dict = {}
        self.earning_criteria: dict | None = None
        try:
            condition = builder.compose_condition(values)
            self.condition = _api_shape(ConditionSerializer, "condition", condition)
        except builder.BuilderError as error:
            self.errors.append((error.field, error.message))
        except forms.ValidationError as error:
            self.errors.append((None, " ".join(error.messages)))
        try:
            action = builder.compose_action(values)
            self.action = _api_shape(ActionSerializer, "action", action)
        except builder.BuilderError as error:
            self.errors.append((error.field, error.message))
        except forms.ValidationError as error:
            self.errors.append((None, " ".join(error.messages)))
        if self.condition is not None and self.action is not None:
            try:
                compile_action(self.action, compile_condition(self.condition))
            except UnsupportedRule as error:
                self.errors.append(
                    (None, f"Not supported by the promotion engine: {unsupported_text(error)}")
                )
        for name, compose, serializer, api_name in (
            ("store_criteria", builder.compose_store, StoreCriteriaSerializer, "storeCriteria"),
            ("time_criteria", builder.compose_time, TimeCriteriaSerializer, "timeCriteria"),
        ):
            try:
                value = compose(values)
                setattr(self, name, None if value is None else _api_shape(serializer, api_name, value))
            except builder.BuilderError as error:
                self.errors.append((error.field, error.message))
            except forms.ValidationError as error:
                self.errors.append((None, " ".join(error.messages)))
        try:
            self.custom_field_values = builder.compose_custom_fields(values)
        except builder.BuilderError as error:
            self.errors.append((error.field, error.message))
        try:
            criteria = builder.compose_earning(values)
            if criteria is not None:
                criteria = _api_field(PromotionInputSerializer, "earningCriteria", criteria)
            self.earning_criteria = criteria
        except builder.BuilderError as error:
            self.errors.append((error.field, error.message))
        except forms.ValidationError as error:
            self.errors.append(("ec_from", " ".join(error.messages)))

    @property
    def summary(self) -> str:
        if self.condition is None or self.action is None:
            return ""
        return builder.summary(self.condition, self.action)


def preview_response(data) -> JsonResponse:
    """The page's live preview: the sentence, the JSON that would be stored, and what is wrong, from the
    builder's posted values (the same code the form's save runs)."""
    values = {key: (data.getlist(key) if key == "time_days" else data.get(key)) for key in data}
    rule = BuiltRule(values)
    return JsonResponse(
        {
            "summary": rule.summary,
            "condition": rule.condition,
            "action": rule.action,
            "storeCriteria": rule.store_criteria,
            "timeCriteria": rule.time_criteria,
            "customFieldValues": rule.custom_field_values,
            "earningCriteria": rule.earning_criteria,
            "earningSummary": builder.earning_words(rule.earning_criteria),
            "errors": [{"field": field, "message": message} for field, message in rule.errors],
        }
    )


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


# --- Values the org has seen, for the pickers ----------------------------------------------------------

VALUES_MAX = 20  # suggestions per search
EVALUATIONS_SCANNED = 200  # the latest evaluations whose carts are read for categories, brands, tenders
ITEM_KEYS = {"SKU": "sku", "CATEGORY": "categoryList", "BRAND": "brandList"}
ATTRIBUTE_KEYS = {"PRODUCT_ID": "product_id", "STYLE": "style", "COLOR": "color", "SIZE": "size"}


def _from_carts(requests, entity: str, attribute: str) -> list[str]:
    """The values of `entity` in evaluated carts (`Evaluation.request`: cartItems, cartTenders)."""
    found: list[str] = []
    for request in requests:
        cart = request if isinstance(request, dict) else {}
        if entity == "TENDER":
            for tender in cart.get("cartTenders") or []:
                if isinstance(tender, dict) and isinstance(tender.get("identifier"), str):
                    found.append(tender["identifier"])
            continue
        for item in cart.get("cartItems") or []:
            if not isinstance(item, dict):
                continue
            if entity in ITEM_KEYS:
                value = item.get(ITEM_KEYS[entity])
                found.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
            else:
                attributes = item.get("attributes") if isinstance(item.get("attributes"), dict) else {}
                name = ATTRIBUTE_KEYS.get(entity, attribute)
                if isinstance(attributes.get(name), str):
                    found.append(attributes[name])
    return found


def _from_promotions(promotions, entity: str, attribute: str) -> list[str]:
    """The criteria values the org's promotions already name for `entity`."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("entity") == entity and (
                entity != "ATTRIBUTE" or node.get("attributeName") == attribute
            ):
                found.extend(v for v in node.get("values") or [] if isinstance(v, str))
            if entity == "TENDER":
                found.extend(v for v in node.get("identifiers") or [] if isinstance(v, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for condition, action in promotions:
        walk(condition)
        walk(action)
    return found


# Where else the org's values are seen (redemption lines, evaluated carts): the redemptions app is built
# on this one, so it registers its reader here at start-up (redemptions/apps.py).
_seen_elsewhere: list = []


def values_seen_source_register(source) -> None:
    """`source(org_id, entity, query, attribute)` -> values of `entity` the org has seen elsewhere."""
    if source not in _seen_elsewhere:
        _seen_elsewhere.append(source)


def values_seen(org_id: int | None, entity: str, query: str, attribute: str = "") -> list[dict]:
    """Up to VALUES_MAX values of `entity` containing `query` (any case) the org has seen: SKUs of its
    recorded redemption lines, the items and tenders of its latest evaluations (both read by the
    sources registered with `values_seen_source_register`), the values its promotions name; for STORE,
    ZONE and CONCEPT its own ids with their names. [{value, label}]."""
    from promotions.models import Concept, Promotion, Store, Zone

    query = (query or "").strip()
    if entity in ("STORE", "ZONE", "CONCEPT"):
        model = {"STORE": Store, "ZONE": Zone, "CONCEPT": Concept}[entity]
        rows = model.objects.filter(org_id=org_id)
        if query:
            matches = model.objects.filter(name__icontains=query)
            if query.isdigit():
                matches = matches | model.objects.filter(external_id=int(query))
            rows = rows.filter(pk__in=matches.values("pk"))
        return [
            {"value": str(external_id), "label": f"{external_id} {name}"}
            for external_id, name in rows.order_by("name").values_list("external_id", "name")[:VALUES_MAX]
        ]
    seen: dict[str, None] = {}
    elsewhere = [value for source in _seen_elsewhere for value in source(org_id, entity, query, attribute)]
    promotions = (
        Promotion.objects.filter(org_id=org_id)
        .order_by("-created_on")
        .values_list("condition", "action")[:500]
    )
    for value in [*elsewhere, *_from_promotions(promotions, entity, attribute)]:
        if query.casefold() in value.casefold():
            seen[value] = None
    values = sorted(seen)[:VALUES_MAX]
    return [{"value": value, "label": value} for value in values]


def _groups_layout(form, prefix: str, count: int, criteria: int) -> list[dict]:
    return [
        {
            "index": i,
            "number": i + 1,
            "kpi": form[f"{prefix}{i}_kpi"],
            "operator": form[f"{prefix}{i}_operator"],
            "value": form[f"{prefix}{i}_value"],
            "criteria": [
                {
                    name: form[f"{prefix}{i}_c{j}_{name}"]
                    for name in ("entity", "operator", "values", "attribute")
                }
                for j in range(criteria)
            ],
        }
        for i in range(count)
    ]


def builder_layout(form) -> dict:
    """The builder's bound fields, grouped as the page shows them (templates/admin/promotions/promotion/
    builder.html)."""
    counts = form.builder_counts
    names = [
        "cond_type", "cart_kpi", "cart_operator", "cart_value", "tender_nested", "pay_operator", "pay_values",
        "reward", "act_value", "free_qty", "target", "target_type", "tcart_kpi", "tcart_operator", "tcart_value",
        "pu_kpi", "pu_divider", "pu_count", "pu_reward", "store_type", "store_operator", "store_values",
        "time_repeat", "time_start", "time_hours", "time_days", "custom_fields", *earning_fields(),
    ]  # fmt: skip
    layout = {name: form[name] for name in names}
    layout["modes"] = [{"type": form[f"tm{k}_type"], "ids": form[f"tm{k}_ids"]} for k in range(counts["tm"])]
    layout["cgroups"] = _groups_layout(form, "cg", counts["cg"], counts["criteria"])
    layout["tgroups"] = _groups_layout(form, "tg", counts["tg"], counts["criteria"])
    return layout


def initial_summary(form) -> str:
    """The sentence the page opens with: of the posted values (a re-shown form) or the stored rule."""
    if form.is_bound:
        values = {name: form.data.get(name) for name in form.builder_names}
        try:
            return builder.summary(*builder.compose(values))
        except builder.BuilderError:
            return ""
    instance = form.instance
    if instance.condition and instance.action:
        return builder.summary(instance.condition, instance.action)
    return ""


def initial_earning_summary(form) -> str:
    """The earning criteria's sentence the page opens with (posted values, or the stored criteria)."""
    if not form.is_bound and not form.instance._state.adding:
        return builder.earning_words(form.instance.earning_criteria)
    try:
        return builder.earning_words(builder.compose_earning(form.data if form.is_bound else form.initial))
    except builder.BuilderError:
        return ""


# --- A limit's window, without JSON ------------------------------------------------------------------

FREQUENCIES = [("", "—"), ("DAYS", "days"), ("WEEKS", "weeks"), ("DOES_NOT_REPEAT", "does not repeat")]
WINDOW_TYPES = [
    ("", "default"), ("OVERALL", "lifetime"), ("MOVING", "rolling"), ("FIXED", "fixed cycles"),
    ("CLASSIC", "classic"),
]  # fmt: skip
CYCLES = [("", "—"), ("CALENDAR_MONTH", "calendar month"), ("WEEK", "week"), ("N_DAY", "every N days")]
SOURCES = [("", "—"), ("PROMOTION_CONFIG", "promotion's dates")]


class PromotionRestrictionForm(forms.ModelForm):
    """One limit as a labelled row: its window's `fixedWindowConfig` as four fields (cycle, week start,
    days, reference date) instead of JSON; the config is rebuilt exactly (keys given are kept, so an
    unchanged limit compares equal), and checked by the service with the promotion."""

    frequency = forms.ChoiceField(choices=FREQUENCIES, required=False, label="Repeats every")
    window_type = forms.ChoiceField(choices=WINDOW_TYPES, required=False, label="Window")
    fw_cycle = forms.ChoiceField(choices=CYCLES, required=False, label="Fixed cycle")
    fw_week_start = forms.ChoiceField(
        choices=[("", "—"), *((day, day.title()) for day in builder.WEEKDAYS)],
        required=False,
        label="Week starts",
    )
    fw_days = forms.IntegerField(required=False, min_value=1, label="Cycle days", widget=forms.NumberInput(attrs=SMALL))  # fmt: skip
    fw_anchor = forms.IntegerField(
        required=False,
        min_value=0,
        label="Cycle reference (epoch ms)",
        widget=forms.NumberInput(attrs={"size": 14}),
    )
    fw_source = forms.ChoiceField(choices=SOURCES, required=False, label="Reference date source")

    class Meta:
        fields = ["level", "kpi", "limit", "frequency", "window_type", "min_time_between_repeat"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.fixed_window_config if self.instance.pk else None
        if config is None:  # a copy's limit (promotions/duplicate.py) comes as initial values
            config = self.initial.get("fixed_window_config")
        if isinstance(config, dict):
            self.initial.update(
                {
                    "fw_cycle": config.get("cycleType", ""),
                    "fw_week_start": config.get("weekStartDay", ""),
                    "fw_days": config.get("refreshRate"),
                    "fw_anchor": config.get("cycleReferenceDate"),
                    "fw_source": config.get("cycleReferenceDateSource", ""),
                }
            )

    def clean(self):
        cleaned = super().clean()
        cycle = cleaned.get("fw_cycle")
        config = None
        if cycle:
            config = {"cycleType": cycle}
            for key, name in (
                ("weekStartDay", "fw_week_start"), ("refreshRate", "fw_days"),
                ("cycleReferenceDate", "fw_anchor"), ("cycleReferenceDateSource", "fw_source"),
            ):  # fmt: skip
                if cleaned.get(name) not in (None, ""):
                    config[key] = cleaned[name]
        elif any(
            cleaned.get(name) not in (None, "")
            for name in ("fw_week_start", "fw_days", "fw_anchor", "fw_source")
        ):
            self.add_error("fw_cycle", "Pick the fixed cycle these settings are for.")
        cleaned["fixed_window_config"] = config
        self.instance.fixed_window_config = config
        return cleaned
