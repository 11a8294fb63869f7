"""Admin base classes: a staff user sees and changes only their org's rows."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.db import models
from django.forms.fields import InvalidJSONInput

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization
from promotions_site.limits import JSON_MAX_DEPTH, holds_nul, json_depth_exceeds


def user_org_id(request) -> int | None:
    """The org a staff user is bound to; None for a superuser without one (who sees every org)."""
    return getattr(request.user, "org_id", None)


def sees_all_orgs(request) -> bool:
    return request.user.is_superuser and user_org_id(request) is None


class AdminJSONField(forms.JSONField):
    """Django's JSON form field, refusing what the API's parser refuses: a NUL character anywhere
    (PostgreSQL's jsonb cannot store one: a 500 at the save) and nesting deeper than the API allows
    (Python's decoder would hit the recursion limit: a 500 at the parse)."""

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError as error:
            raise forms.ValidationError(f"Nested more than {JSON_MAX_DEPTH} levels deep.") from error
        if json_depth_exceeds(converted):
            raise forms.ValidationError(f"Nested more than {JSON_MAX_DEPTH} levels deep.")
        if holds_nul(converted):
            raise forms.ValidationError("Null characters (\\u0000) are not allowed.")
        return converted

    def bound_data(self, data, initial):
        # Re-rendering the form with what was typed parses it again.
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)


class _OutOfRangeChoiceMixin:
    """A posted id beyond 64 bits is "not one of the available choices", as any unknown id is. Django
    looks it up, and SQLite's driver raises OverflowError binding it (a 500)."""

    def _out_of_range(self, value):
        message = self.error_messages["invalid_choice"]
        return forms.ValidationError(message, code="invalid_choice", params={"value": value})

    def to_python(self, value):
        try:
            return super().to_python(value)
        except OverflowError as error:
            raise self._out_of_range(value) from error


class AdminModelChoiceField(_OutOfRangeChoiceMixin, forms.ModelChoiceField):
    pass


class AdminModelMultipleChoiceField(_OutOfRangeChoiceMixin, forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        try:
            return super()._check_values(value)
        except OverflowError as error:
            raise self._out_of_range(", ".join(map(str, value))) from error


# Every admin form of ours (model admins and inlines) takes JSON and related ids through these fields.
FORMFIELD_OVERRIDES = {
    models.JSONField: {"form_class": AdminJSONField},
    models.ForeignKey: {"form_class": AdminModelChoiceField},
    models.ManyToManyField: {"form_class": AdminModelMultipleChoiceField},
}


class AuditedAdminMixin:
    """Admin writes of plain model forms (customers, API clients' settings, loyalty programs, users,
    orgs) append an audit event naming the staff user, as a service's write does, in the same
    transaction as Django's own admin log entry. `audited_by_services` names the verbs (create,
    update, delete) whose writes already go through a service that records its own event.

    Rows of no org (a platform superuser) have no org to record an event on; Django's admin log keeps them.
    """

    audited_by_services: frozenset[str] = frozenset()

    def _audit(self, request, obj, verb: str, data: dict) -> None:
        org_id = obj.pk if isinstance(obj, Organization) else getattr(obj, "org_id", None)
        if verb in self.audited_by_services or org_id is None:
            return
        audit_event_record(
            org=org_id,
            actor=Actor.for_user(request.user),
            action=f"{re.sub(r'(?<!^)(?=[A-Z])', '_', type(obj).__name__).lower()}.{verb}",
            object_type=type(obj).__name__,
            object_id=obj.pk,
            data={"via": "admin", **data},
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "create", {})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "update", {"changes": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete", {"repr": str(obj)})
        return super().log_deletions(request, queryset)


class OrgScopedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Scopes the changelist, the object pages and every foreign-key choice to the user's org.

    `org_lookup` names the path from the model to its org's id (`org_id` for most models).
    """

    org_lookup = "org_id"
    formfield_overrides = FORMFIELD_OVERRIDES

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if sees_all_orgs(request) or self.org_lookup != "org_id" or user_org_id(request) is None:
            return form
        org_id = user_org_id(request)

        class OrgBoundForm(form):
            """The org is not on the form (it is the user's), yet the rules unique per org (a loyalty
            program's name, a customer's mobile) need it: the instance gets it before validation,
            and validation keeps it, so a duplicate is a form error, not an IntegrityError at save."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if self.instance.org_id is None:
                    self.instance.org_id = org_id

            def _get_validation_exclusions(self):
                exclusions = super()._get_validation_exclusions()
                exclusions.discard("org")
                return exclusions

        OrgBoundForm.__name__ = form.__name__
        return OrgBoundForm

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if sees_all_orgs(request):
            return queryset
        org_id = user_org_id(request)
        if org_id is None:
            return queryset.none()
        return queryset.filter(**{self.org_lookup: org_id})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not sees_all_orgs(request):
            related = db_field.related_model
            org_id = user_org_id(request)
            if related is Organization:
                kwargs["queryset"] = Organization.objects.filter(pk=org_id)
            elif any(field.name == "org" for field in related._meta.get_fields()):
                kwargs["queryset"] = related._default_manager.filter(org_id=org_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not sees_all_orgs(request) and self.org_lookup == "org_id":
            fields = [name for name in fields if name != "org"]
        return fields

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not sees_all_orgs(request) and self.org_lookup == "org_id":
            exclude.append("org")
        return exclude

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if sees_all_orgs(request) and self.org_lookup == "org_id":
            filters.insert(0, "org")
        return filters

    def save_model(self, request, obj, form, change):
        if not change and not sees_all_orgs(request):
            obj.org_id = user_org_id(request)
        super().save_model(request, obj, form, change)


class ReadOnlyAdminMixin:
    """Facts (earned instances, redemptions, audit events) are viewed here, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyOrgScopedAdmin(ReadOnlyAdminMixin, OrgScopedAdmin):
    pass
