"""The customer's page in the admin shows their wallet: earned promotions with status and validTill."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from promotions.models import AuditEvent
from redemptions.models import Redemption
from tests.admin_support import admin_url, staff_login
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionReversalFactory,
)
from wallets.admin import WALLET_ROWS
from wallets.models import Customer, EarnedPromotion


def wallet_section(html: str) -> str:
    return html.split('id="customer-wallet"')[1].split("</table>")[0]


def test_the_customer_page_shows_the_wallet(client, org):
    # given a customer with an active, an expired-by-date and a redeemed instance, and redemptions
    staff_login(client, org)
    customer = CustomerFactory(org=org)
    summer = PromotionFactory(org=org, name="Summer sale")
    active = EarnedPromotionFactory(org=org, customer=customer, promotion=summer, kind="EARNED")
    lapsed = EarnedPromotionFactory(org=org, customer=customer, promotion=PromotionFactory(org=org, name="Old"),
                                    valid_till=timezone.now() - dt.timedelta(days=1))  # fmt: skip
    used = EarnedPromotionFactory(org=org, customer=customer, status="REDEEMED", redemption_count=1)
    RedemptionFactory(org=org, customer=customer)
    RedemptionReversalFactory(redemption=RedemptionFactory(org=org, customer=customer))
    # when
    response = client.get(admin_url(Customer, "change", customer.pk))
    # then
    assert response.status_code == 200
    section = wallet_section(response.content.decode())
    assert "Summer sale" in section and admin_url(summer, "change", summer.pk) in section
    assert admin_url(EarnedPromotion, "change", active.pk) in section
    assert "Earned" in section and "Issued" in section
    statuses = {entry.instance.pk: entry.status for entry in response.context["wallet"]}
    assert statuses == {
        active.pk: "ACTIVE",
        lapsed.pk: "EXPIRED",
        used.pk: "REDEEMED",
    }  # as the wallet API reads
    assert 'class="status-EXPIRED">EXPIRED' in section
    assert '<td class="numeric">1</td>' in section
    # and links to all of its earned promotions and its redemptions
    html = response.content.decode()
    assert f"{admin_url(EarnedPromotion)}?customer={customer.pk}" in html
    assert f"{admin_url(Redemption)}?customer={customer.pk}" in html
    assert "Redemptions: 2 (1 reversed)" in html


def test_a_long_wallet_shows_the_first_rows_and_links_to_all(client, org):
    staff_login(client, org)
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org)
    for _ in range(WALLET_ROWS + 1):
        EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    response = client.get(admin_url(Customer, "change", customer.pk))
    assert len(response.context["wallet"]) == WALLET_ROWS
    assert f"(the first {WALLET_ROWS})" in response.content.decode()


def test_an_empty_wallet(client, org):
    staff_login(client, org)
    customer = CustomerFactory(org=org)
    html = client.get(admin_url(Customer, "change", customer.pk)).content.decode()
    assert "No earned promotions." in html and "Redemptions: 0" in html


def test_the_earned_promotion_list_filters_by_customer(client, org, other_org):
    # given
    staff_login(client, org)
    mine, other = CustomerFactory(org=org), CustomerFactory(org=org)
    kept = EarnedPromotionFactory(org=org, customer=mine)
    EarnedPromotionFactory(org=org, customer=other)
    theirs = EarnedPromotionFactory(org=other_org)
    # when
    response = client.get(admin_url(EarnedPromotion), {"customer": mine.pk})
    # then
    assert [ep.pk for ep in response.context["cl"].result_list] == [kept.pk]
    assert str(mine) in response.content.decode()  # the sidebar names the chosen customer
    listing = client.get(admin_url(EarnedPromotion), {"customer": theirs.customer_id})
    assert list(listing.context["cl"].result_list) == []
    assert "(not found)" in listing.content.decode()  # another org's customer reads as unknown


def test_another_orgs_customer_page_is_not_shown(client, org, other_org):
    staff_login(client, org)
    theirs = EarnedPromotionFactory(org=other_org)
    response = client.get(admin_url(Customer, "change", theirs.customer_id))
    assert response.status_code in (302, 404)
    assert theirs.pk not in response.content.decode()


def _add_form(**changes) -> dict:
    return {"mobile": "+91 98111 11111".replace(" ", ""), "email": "Asha@Example.com", "external_id": "",
            "first_name": "Asha", "last_name": "Rao", "source": "INSTORE", **changes}  # fmt: skip


def test_adding_a_customer_goes_through_the_service(client, org):
    # given
    staff_login(client, org)
    # when
    response = client.post(admin_url(Customer, "add"), _add_form())
    # then: stored in the API's spelling, with the service's audit event (one)
    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(org=org)
    assert (customer.mobile, customer.email, customer.external_id) == (
        "919811111111",
        "asha@example.com",
        None,
    )
    assert AuditEvent.objects.filter(action="customer.create", object_id=str(customer.pk)).count() == 1


def test_a_customer_without_identifiers_is_refused(client, org):
    # given
    staff_login(client, org)
    # when
    response = client.post(admin_url(Customer, "add"), _add_form(mobile="", email=""))
    # then
    assert response.status_code == 200
    assert "At least one of mobile, email or externalId is required." in response.content.decode()
    assert not Customer.objects.exists()


def test_an_identifier_of_another_customer_is_a_form_error(client, org):
    # given: org-bound staff (the org is not on their form) and a customer with the mobile
    staff_login(client, org)
    CustomerFactory(org=org, mobile="919811111111")
    # when
    response = client.post(admin_url(Customer, "add"), _add_form(email=""))
    # then: the per-org uniqueness is checked by the form, not found by the database at save (a 500)
    assert response.status_code == 200
    assert "mobile 919811111111 is already used by another customer of this org." in response.content.decode()
    assert Customer.objects.filter(org=org).count() == 1


def test_an_unparsable_mobile_is_a_form_error(client, org):
    staff_login(client, org)
    response = client.post(admin_url(Customer, "add"), _add_form(mobile="call me"))
    assert response.status_code == 200
    assert "Enter 8 to 15 digits" in response.content.decode()
