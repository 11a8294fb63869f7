"""The marketer's console: the first page's tasks and sections, and how times, money and limits read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from promotions.models import PromotionRestriction, PromotionType
from promotions_site.admin_console import OPERATORS_GROUP
from promotions_site.admin_format import admin_datetime, limit_text, money, quantity, zone_label
from tests.admin_support import staff_login
from tests.factories import OrganizationFactory, PromotionFactory, UserFactory

TASKS = [
    "Create promotion",
    "Issue to customers",
    "Bulk earn",
    "Jobs",
    "Customers",
    "Dashboard",
    "Redemption audit",
]
TECHNICAL = [
    "admin:redemptions_redemptioncounter_changelist",
    "admin:wallets_bulkjobitem_changelist",
    "admin:wallets_issual_changelist",
    "admin:redemptions_redemptionline_changelist",
    "admin:promotions_apiclient_changelist",
]


def index(client) -> str:
    return client.get(reverse("admin:index")).content.decode()


@pytest.fixture
def marketer(client, org):
    """A staff member holding every permission, in no Operators group: a marketer."""
    return staff_login(client, org)


def test_a_marketer_sees_the_tasks_first_and_no_technical_model(client, marketer):
    html = index(client)

    # the task cards, in a marketer's order, before any list
    positions = [html.index(f"<strong>{title}</strong>") for title in TASKS]
    assert positions == sorted(positions)
    assert positions[0] < html.index('id="marketer-lists"')
    assert 'href="' + reverse("admin:promotions_promotion_add") + '"' in html
    assert "?type__in=CUSTOMER%2CEARNING" in html
    # the technical models are out of sight, on the page and in the sidebar of another page
    for name in TECHNICAL:
        assert reverse(name) not in html
    assert 'id="operators"' not in html
    sidebar = client.get(reverse("admin:promotions_promotion_changelist")).content.decode()
    assert reverse("admin:wallets_bulkjobitem_changelist") not in sidebar
    assert reverse("admin:wallets_customer_changelist") in sidebar
    # hidden, not refused: a direct link still answers to a holder of the permission
    assert client.get(reverse("admin:redemptions_redemptioncounter_changelist")).status_code == 200


@pytest.mark.parametrize("who", ["operator", "superuser"])
def test_operators_and_superusers_see_the_operators_section(client, org, who):
    if who == "operator":
        user = staff_login(client, org)
        user.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    else:
        client.force_login(UserFactory(org=None, is_superuser=True))

    html = index(client)

    assert 'id="operators"' in html and "<strong>Create promotion</strong>" in html
    operators = html[html.index('id="operators"') :]
    for name in TECHNICAL:
        assert reverse(name) in operators
    assert reverse("admin:wallets_customer_changelist") not in operators  # a marketer's list stays above


def test_a_task_is_offered_only_with_its_permission(client, org):
    staff_login(client, org, codenames=["view_redemption"])

    html = index(client)

    assert "<strong>Redemption audit</strong>" in html
    for title in ("Create promotion", "Issue to customers", "Bulk earn", "Dashboard", "Customers"):
        assert f"<strong>{title}</strong>" not in html


def test_codes_are_offered_once_their_admin_is_registered(client, marketer):
    from django.contrib import admin

    from promotions.models import PromoCodeBatch

    registered = admin.site.is_registered(PromoCodeBatch)
    html = index(client)

    assert ("<strong>Codes</strong>" in html) is registered
    if registered:
        assert reverse("admin:promotions_promocodebatch_changelist") in html


def test_the_issue_card_lists_only_the_promotions_that_can_be_issued(client, marketer, org):
    for kind in PromotionType.values:
        PromotionFactory(org=org, type=kind, name=f"A {kind} promotion")
    url = reverse("admin:promotions_promotion_changelist") + "?type__in=CUSTOMER,EARNING"

    html = client.get(url).content.decode()

    assert "A CUSTOMER promotion" in html and "A EARNING promotion" in html
    assert "A POS promotion" not in html and "A REWARD promotion" not in html


# --- times, money, limits ------------------------------------------------------------------------------


def test_admin_pages_run_in_the_orgs_zone_and_say_so(client, db):
    org = OrganizationFactory(timezone="Europe/Berlin")
    staff_login(client, org)
    promotion = PromotionFactory(org=org, start_date=dt.datetime(2026, 7, 1, 6, 30, tzinfo=dt.UTC))

    html = client.get(reverse("admin:promotions_promotion_changelist")).content.decode()
    page = client.get(reverse("admin:promotions_promotion_change", args=[promotion.pk])).content.decode()

    assert "Times in Europe/Berlin" in html
    assert "2026-07-01 08:30 CEST" in html  # 06:30 UTC, on Berlin's summer clock
    assert "In Europe/Berlin, the organization's time zone. API: startDate." in page


def test_the_zone_label_and_a_labelled_time():
    moment = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
    with timezone.override(ZoneInfo("Asia/Kolkata")):
        assert zone_label() == "Asia/Kolkata"
        assert admin_datetime(moment) == "2026-01-15 17:30 IST"
    with timezone.override(ZoneInfo("UTC")):
        assert (zone_label(), admin_datetime(moment)) == ("UTC", "2026-01-15 12:00 UTC")
    assert admin_datetime(None) == "-"


@pytest.mark.parametrize(
    ("value", "precision", "expected"),
    [
        (Decimal("4637.000000"), 2, "4,637.00"),
        (Decimal("4637.000000"), 0, "4,637"),
        (Decimal("12.345000"), 2, "12.35"),  # rounded half up
        (Decimal("0.125000"), 3, "0.125"),
        (Decimal("1234567.5"), 6, "1,234,567.500000"),
        (None, 2, "-"),
    ],
)
def test_money_with_the_orgs_precision(value, precision, expected):
    assert money(value, precision) == expected


def test_counts_read_as_integers_and_amounts_as_money():
    assert limit_text(Decimal("5.000000"), "REDEMPTION") == "5"
    assert limit_text(Decimal("1000.000000"), "TRANSACTION") == "1,000"
    assert limit_text(Decimal("250.000000"), "DISCOUNT", 2) == "250.00"
    assert (quantity(Decimal("2.000000")), quantity(Decimal("1.500000"))) == ("2", "1.5")
    restriction = PromotionRestriction(level="CUSTOMER", kpi="REDEMPTION", limit=Decimal("3.000000"))
    assert str(restriction) == "CUSTOMER REDEMPTION at most 3"


def test_the_redemption_counter_list_shows_counts_as_integers(client, org):
    from redemptions.models import RedemptionCounter

    promotion = PromotionFactory(org=org)
    restriction = PromotionRestriction.objects.create(
        promotion=promotion, level="CUSTOMER", kpi="REDEMPTION", limit=Decimal(4)
    )
    RedemptionCounter.objects.create(
        org=org, restriction=restriction, scope="42", used=Decimal(2), limit=Decimal(4)
    )
    user = staff_login(client, org)
    user.user_permissions.add(*Permission.objects.all())

    html = client.get(reverse("admin:redemptions_redemptioncounter_changelist")).content.decode()

    assert ">2<" in html and ">4<" in html and "4.000000" not in html


def test_the_redemption_page_is_titled_by_what_it_is_in_marketer_words(client, org):
    from redemptions.models import Redemption, RedemptionLine
    from tests.factories import RedemptionFactory

    org.rounding_precision = 3
    org.save()
    promotion = PromotionFactory(org=org)
    redemption = RedemptionFactory(org=org, transaction_identifier="POS-1-0042", amount=Decimal("4637"))
    RedemptionLine.objects.create(
        redemption=redemption, level="LINEITEM", position=0, sku="SKU-9", promotion=promotion,
        redemption_count=1, discount=Decimal("12.5"), discount_applied_on_quantity=Decimal(2),
        promotion_applied_on_quantity=Decimal(2),
    )  # fmt: skip
    staff_login(client, org)

    html = client.get(reverse("admin:redemptions_redemption_change", args=[redemption.pk])).content.decode()

    assert f"Redemption {redemption.pk}: transaction POS-1-0042" in html
    assert "4,637.000" in html and "4637.000000" not in html  # the org's precision: 3
    assert "12.500" in html and "2.000000" not in html
    assert "API: transactionIdentifier" in html and "API: amount" in html
    line = RedemptionLine.objects.get(redemption=redemption)
    assert str(line) == f"Redemption {redemption.pk}, line 1: SKU SKU-9"
    assert Redemption.objects.filter(pk=redemption.pk).exists()


def test_the_dashboard_shows_money_with_the_orgs_precision(client, org):
    org.rounding_precision = 0
    org.save()
    staff_login(client, org)
    PromotionFactory(org=org)

    html = client.get(reverse("admin-dashboard")).content.decode()

    assert '<td class="numeric">0</td>' in html and "0.00" not in html
