"""Every admin form answers a bad submission with form errors, never a 500.

The test walks what the admin registers, not a list: each ModelAdmin's add form (when the user may add)
and change form (when they may change), and the bulk-job screens (issue, bulk earn). Each form is
posted empty, with every field junk, and with one field at a time junk on top of what the page
rendered (for a change form, a valid object: so a junk value that passes the form reaches the save).
A new model admin is covered the day it is registered.

A field is validated by the same code whoever posts it, so a change form's fields are junked one at a
time once: as the org's staff (the marketer), then as a superuser for the fields only a superuser's
form has (the org). Every other post is made as both. The pages render without the test client's
record of every template (`Template._render` as it runs outside tests): that record copied the
context for each of the builder's hundred widgets, a fifth of this module's time.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.template.base import Template
from django.test.utils import _TestState
from django.urls import reverse

from tests import factories

# Values a careless or hostile user types: a word, a negative, a huge number, a NUL character, a JSON
# object PostgreSQL's jsonb cannot store (a NUL escape), JSON nested past Python's recursion limit.
JUNK = ["junk", "-1", "9" * 25, "\x00", '{"a": "\\u0000"}', "[" * 5000 + "]" * 5000]
# Rendered by the page, not typed by the user: a junk value here tests Django's own CSRF and formset plumbing.
PLUMBING = ("csrfmiddlewaretoken", "-TOTAL_FORMS", "-INITIAL_FORMS", "-MIN_NUM_FORMS", "-MAX_NUM_FORMS")


class _FormFields(HTMLParser):
    """The fields a browser would submit from the page's form `form_id`, with their rendered values."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._first_option: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        name = attrs.get("name") or ""
        if not self.inside or (tag in {"input", "select", "textarea"} and "__prefix__" in name):
            return
        if tag == "input" and name and attrs.get("type") not in {"submit", "button", "file", "image"}:
            if attrs.get("type") in {"checkbox", "radio"} and "checked" not in attrs:
                return
            self.fields.setdefault(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            self._first_option.setdefault(self._select, attrs.get("value") or "")
            if "selected" in attrs:
                self.fields[self._select] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            self.fields.setdefault(self._select, self._first_option.get(self._select, ""))
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Django writes a newline after <textarea> that browsers drop.
            self.fields[self._textarea] = self.fields[self._textarea].removeprefix("\n")
            self._textarea = None


def rendered_fields(response, form_id: str) -> dict[str, str]:
    parser = _FormFields(form_id)
    parser.feed(response.content.decode())
    assert parser.fields, f"no form #{form_id} on the page"
    return parser.fields


def typed(fields: dict[str, str]) -> list[str]:
    return [name for name in fields if not name.endswith(PLUMBING)]


def shows_errors(response) -> bool:
    text = response.content.decode()
    return response.status_code == 200 and ('class="errornote"' in text or 'class="errorlist' in text)


def posts(fields: dict[str, str], *, one_field_at_a_time: bool, walked: set[str] | None = None):
    """(what, data, must show errors): nothing, every typed field blank, every typed field junk, then
    (on a page that renders a valid object) each field junk in turn, but those in `walked` (junked one
    at a time already, as another user); those junked are added to `walked`."""
    names = typed(fields)
    yield "nothing", {}, True
    yield "every field blank", {**fields, **dict.fromkeys(names, "")}, True
    for junk in JUNK:
        yield f"every field {junk[:20]!r}", {**fields, **dict.fromkeys(names, junk)}, False
    walked = set() if walked is None else walked
    for name in one_of_each_kind(names) if one_field_at_a_time else []:
        if _kind(name) in walked:
            continue
        walked.add(_kind(name))
        for junk in JUNK:
            yield f"{name}={junk[:20]!r}", {**fields, name: junk}, False


def one_of_each_kind(names: list[str]) -> list[str]:
    """The first field of each kind: fields whose names differ only by a number after a letter (the
    promotion builder's groups and rows, `cg0_c1_values`) are validated by the same code, so one of them
    junked in turn says what all of them would (and keeps the builder's hundred fields from taking minutes)."""
    kinds: dict[str, str] = {}
    for name in names:
        kinds.setdefault(_kind(name), name)
    return list(kinds.values())


def _kind(name: str) -> str:
    return re.sub(r"(?<=[a-z])\d+", "#", name)


def submit_every_way(
    client, url: str, form_id: str, *, one_field_at_a_time: bool, walked: set[str] | None = None
) -> None:
    page = client.get(url)
    assert page.status_code == 200, url
    fields = rendered_fields(page, form_id)
    for what, data, errors_expected in posts(fields, one_field_at_a_time=one_field_at_a_time, walked=walked):
        response = client.post(url, data)
        assert response.status_code in {200, 302}, f"{url} with {what}: {response.status_code}"
        if errors_expected:
            assert shows_errors(response), f"{url} with {what}: no form errors shown"


@pytest.fixture(autouse=True)
def _templates_rendered_as_outside_tests(monkeypatch):
    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)


def superuser(client):
    user = factories.UserFactory(org=None, is_superuser=True)
    client.force_login(user)
    return user


def org_staff(client, org):
    user = factories.UserFactory(org=org)
    user.user_permissions.set(Permission.objects.all())
    client.force_login(user)
    return user


USERS = {"superuser": lambda client, org: superuser(client), "org staff": org_staff}
REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _instance(model, org):
    if model is Group:
        return Group.objects.create(name="Marketers")
    return factories.make_in_org(model, org)


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _form_id(model) -> str:
    return f"{model._meta.model_name}_form"


@pytest.mark.parametrize("who", USERS)
@pytest.mark.parametrize("model,model_admin", REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_add_form_answers_bad_input_with_errors(client, org, rf, who, model, model_admin):
    # given
    user = USERS[who](client, org)
    request = rf.get("/")
    request.user = user
    if not model_admin.has_add_permission(request):
        # then: no form to submit (facts such as redemptions are never added by hand)
        assert client.post(_admin_url(model, "add"), {}).status_code == 403
        return
    # when / then: an add form renders no valid object, so one junk field among blank ones says little
    submit_every_way(client, _admin_url(model, "add"), _form_id(model), one_field_at_a_time=False)


@pytest.mark.parametrize("model,model_admin", REGISTERED, ids=[m._meta.label for m, _ in REGISTERED])
def test_change_form_answers_bad_input_with_errors(client, org, rf, model, model_admin):
    # given: a valid object, so one junk field at a time is the only thing wrong
    obj = _instance(model, org)
    walked: set[str] = set()
    for who in ("org staff", "superuser"):  # the marketer's fields first; then what only a superuser has
        user = USERS[who](client, org)
        request = rf.get("/")
        request.user = user
        if not model_admin.has_change_permission(request, obj):
            # then: the page is read-only and a post is refused
            assert client.post(_admin_url(model, "change", obj.pk), {}).status_code == 403, who
            continue
        # when / then: a change form may legitimately save junk a field allows (a name "junk")
        submit_every_way(
            client,
            _admin_url(model, "change", obj.pk),
            _form_id(model),
            one_field_at_a_time=True,
            walked=walked,
        )


@pytest.mark.parametrize("who", USERS)
def test_bulk_job_screens_answer_bad_input_with_errors(client, org, who):
    # given
    USERS[who](client, org)
    promotion = factories.PromotionFactory(org=org, type="EARNING")
    factories.CustomerFactory(org=org)
    # when / then: a junk list of customers is a preview that reports them, not an error
    for url in (
        reverse("admin:wallets_bulkjob_issue", args=[promotion.pk]),
        reverse("admin:wallets_bulkjob_earn"),
    ):
        submit_every_way(client, url, "bulk_job_form", one_field_at_a_time=True)


@pytest.mark.parametrize("who", USERS)
def test_cart_trial_screen_answers_bad_input_with_errors(client, org, who):
    # given a promotion, a till and a customer to choose
    USERS[who](client, org)
    promotion = factories.PromotionFactory(org=org, type="POS")
    factories.TillFactory(org=org)
    factories.CustomerFactory(org=org)
    # when / then: junk in a line row, the pasted cart, the customer, the till or the moment is a form error
    url = reverse("admin-promotion-try", args=[promotion.pk])
    submit_every_way(client, url, "try_cart_form", one_field_at_a_time=True)
