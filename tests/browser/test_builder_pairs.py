"""Every condition x reward pair the builder allows (91), built in a real browser (Debian's Chromium,
driven by Playwright) through the add page alone: the marketer picks the condition and the reward and
types their values as the page offers them, saves, and the promotion is stored with exactly the JSON
those picks mean: the same table of picks and JSON that
tests/promotions/test_promotion_builder.py posts without a browser, where the API's copy of each pair and
the engine's evaluation of it are checked too. tests/browser/test_console_proof.py tries a promotion of
each kind on a cart, issues one and reads its performance page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from promotions.models import Promotion
from promotions.rules import org_rules_forget
from tests.browser.checks import WIDTH, login
from tests.browser.test_console_proof import PASSWORD, Built, _build
from tests.factories import OrganizationFactory, UserFactory
from tests.promotions.test_promotion_builder import ACTIONS, CONDITIONS, supported

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_marketer_builds_every_condition_and_reward_pair_in_the_browser(server, page):
    # given a marketer of an org
    org_rules_forget()
    org = OrganizationFactory(name="Pairs Retail")
    marketer = UserFactory(org=org, username="pairs", is_staff=True)
    marketer.set_password(PASSWORD)
    marketer.save()
    marketer.user_permissions.set(Permission.objects.all())
    start = timezone.localtime(timezone.now()) - dt.timedelta(days=1)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    login(page, server.url, "pairs", PASSWORD)
    pairs = [(c, a) for c in CONDITIONS for a in ACTIONS if supported(c, a)]

    # when the marketer builds each pair on the add page, picking and typing only, saving each with
    # "Save and add another"
    page.goto(server.url + reverse("admin:promotions_promotion_add"))
    expected = {}
    for number, (condition, action) in enumerate(pairs):
        (condition_fields, condition_json), (action_fields, action_json) = (
            CONDITIONS[condition],
            ACTIONS[action],
        )
        steps = [*condition_fields.items(), *action_fields.items()]
        built = Built(f"Pair {number}", steps=steps, discount="")  # a name is at most 50 characters
        _build(page, server.url, built, start, another=True)
        expected[built.name] = (condition_json, action_json)

    # then each is stored with the JSON its picks mean
    assert len(pairs) == 91
    stored = {p.name: (p.condition, p.action) for p in Promotion.objects.filter(org=org)}
    assert set(stored) == set(expected)
    wrong = {pairs[int(name.split()[1])]: stored[name] for name in expected if stored[name] != expected[name]}
    assert wrong == {}
