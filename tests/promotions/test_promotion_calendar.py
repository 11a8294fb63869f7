"""The promotion calendar: a month of the org's promotions as bars, in the org's time zone."""

import datetime as dt

import pytest
from django.urls import reverse

from tests import factories
from tests.admin_support import staff_login

CALENDAR = reverse("admin:promotions_promotion_calendar")


def moment(org, *args):
    return dt.datetime(*args, tzinfo=org.tz)


@pytest.fixture
def month(org, other_org):
    org.timezone = "Asia/Kolkata"
    org.save()
    org.refresh_from_db()
    made = {
        "inside": factories.PromotionFactory(
            org=org, name="Mid-month", type="POS", start_date=moment(org, 2026, 3, 10), end_date=moment(org, 2026, 3, 20)
        ),
        "across": factories.PromotionFactory(
            org=org, name="Spring long", type="CUSTOMER", active=False,
            start_date=moment(org, 2026, 2, 20), end_date=moment(org, 2026, 4, 5),
        ),
        # ends at 00:30 on 1 March in Kolkata: 19:00 UTC on 28 February, still March in the org's zone
        "edge": factories.PromotionFactory(
            org=org, name="Edge", type="CODE", start_date=moment(org, 2026, 2, 1), end_date=moment(org, 2026, 3, 1, 0, 30)
        ),
        "before": factories.PromotionFactory(
            org=org, name="January", start_date=moment(org, 2026, 1, 1), end_date=moment(org, 2026, 1, 31)
        ),
        "theirs": factories.PromotionFactory(
            org=other_org, name="Theirs", start_date=moment(org, 2026, 3, 1), end_date=moment(org, 2026, 3, 30)
        ),
    }  # fmt: skip
    return made


def test_a_month_of_bars(client, org, month):
    staff_login(client, org)
    response = client.get(CALENDAR, {"month": "2026-03"})
    assert response.status_code == 200
    bars = {bar.promotion.name: bar for bar in response.context["month"].bars}
    assert set(bars) == {"Edge", "Spring long", "Mid-month"}  # not January, not another org's
    inside = bars["Mid-month"]
    assert inside.left == pytest.approx(9 / 31 * 100, abs=0.01)
    assert inside.width == pytest.approx(10 / 31 * 100, abs=0.01)
    assert bars["Spring long"].left == 0 and bars["Spring long"].width == 100
    assert "inactive" in bars["Spring long"].css and "starts-before" in bars["Spring long"].css
    assert "type-pos" in inside.css and "inactive" not in inside.css
    html = response.content.decode()
    assert "Theirs" not in html and "January" not in html
    assert reverse("admin:promotions_promotion_change", args=[month["inside"].pk]) in html
    assert "2026-03-10 00:00 IST" in html  # the bar's tooltip: the org's zone
    assert "Asia/Kolkata" in html


def test_navigation_and_bad_months(client, org, month):
    staff_login(client, org)
    response = client.get(CALENDAR, {"month": "2026-01"})
    assert 'href="?month=2025-12"' in response.content.decode()
    assert 'href="?month=2026-02"' in response.content.decode()
    assert [bar.promotion.name for bar in response.context["month"].bars] == ["January"]
    for bad in ("2026-13", "nonsense", "0000-01"):
        assert client.get(CALENDAR, {"month": bad}).status_code == 200
    assert "No promotion runs" in client.get(CALENDAR, {"month": "2030-05"}).content.decode()


def test_linked_from_the_list_and_the_first_page_and_needs_view_permission(client, org, month):
    staff_login(client, org)
    assert CALENDAR in client.get(reverse("admin:promotions_promotion_changelist")).content.decode()
    assert CALENDAR in client.get(reverse("admin:index")).content.decode()
    staff_login(client, org, codenames=["view_customer"])
    assert client.get(CALENDAR).status_code == 403
