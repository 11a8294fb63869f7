"""The marketer's lists: each column header in a marketer's words, with the API field it shows as its help
(`list_columns` on the ModelAdmin, rendered by templates/admin/change_list_results.html)."""

from __future__ import annotations

import re
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.sites import site

from promotions_site.admin_console import MARKETER_MODELS
from tests.admin_support import admin_url, staff_login
from tests.factories import (
    CustomerFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
)
from wallets.models import Issual, LoyaltyEarnedPromotion

# The marketer's models, and the loyalty issuals and their earned promotions (wallet rows a marketer
# is asked about).
LISTED = sorted(
    [model for model in site._registry if model._meta.label_lower in MARKETER_MODELS]
    + [Issual, LoyaltyEarnedPromotion],
    key=lambda model: model._meta.label_lower,
)


def test_every_marketer_list_declares_each_column():
    assert {model._meta.label_lower for model in LISTED} >= MARKETER_MODELS
    for model in LISTED:
        model_admin: admin.ModelAdmin = site._registry[model]
        columns = getattr(model_admin, "list_columns", None)
        assert columns is not None, f"{model._meta.label} has no list_columns"
        assert set(columns) == set(model_admin.list_display), model._meta.label
        for name, spec in columns.items():
            label, api_name = spec if isinstance(spec, tuple) else (None, spec)
            assert label is None or (isinstance(label, str) and label), (model._meta.label, name)
            assert api_name is None or (isinstance(api_name, str) and api_name), (model._meta.label, name)


def header(html: str, column: str) -> str:
    """The `<th>` of a list's column, as rendered."""
    match = re.search(rf'<th scope="col" class="[^"]*column-{column}[^"]*"[^>]*>.*?</th>', html, re.S)
    assert match, f"no header for {column}"
    return match[0]


def test_a_promotion_list_header_is_in_marketer_words_with_its_api_name(client, org):
    # given
    PromotionFactory(org=org)
    staff_login(client, org)

    # when
    html = client.get(admin_url(PromotionFactory._meta.model)).content.decode()

    # then: the marketer's word shown, the API's name as the header's help
    starts = header(html, "start_date")
    assert 'title="API field: startDate"' in starts and 'data-api-name="startDate"' in starts
    assert ">Starts</a>" in starts
    limit = header(html, "max_issuance_per_customer")
    assert "Issues per customer" in limit and 'title="API field: maxIssuancePerCustomer"' in limit


def test_a_redemption_list_header_names_the_api_fields_of_a_computed_column(client, org):
    # given
    redemption = RedemptionFactory(org=org, customer=CustomerFactory(org=org))
    RedemptionLineFactory(redemption=redemption, promotion=PromotionFactory(org=org), discount=Decimal(5))
    staff_login(client, org)

    # when
    html = client.get(admin_url(redemption._meta.model)).content.decode()

    # then
    transaction = header(html, "transaction_list_display")
    assert 'title="API field: transactionIdentifier, transactionNumber"' in transaction
    assert 'title="API field:' not in header(html, "reversed_flag")  # not an API field: no help claimed
