from django.urls import path

from wallets.apis import activation, codes, customers, earn, issue, revoke, wallet

urlpatterns = [
    # Before any `<str:promotion_id>` route (promotions.urls is included after these).
    path("customers", customers.CustomersApi.as_view(), name="customers"),
    path("earn/bulk", earn.EarnBulkApi.as_view(), name="promotion-earn-bulk"),
    # Literal routes before `<str:promotion_id>`, here and in promotions.urls (included after).
    path("code", codes.PromoCodeLookupApi.as_view(), name="promo-code-lookup"),
    path("code/link", codes.PromoCodeLinkApi.as_view(), name="promo-code-link"),
    path("revokeEarn", revoke.RevokeEarnApi.as_view(), name="promotion-revoke-earn"),
    path("customer/<int:customer_id>", wallet.CustomerWalletApi.as_view(), name="customer-wallet"),
    path("<str:promotion_id>/earn", earn.EarnApi.as_view(), name="promotion-earn"),
    path("<str:promotion_id>/issueBulk", issue.IssueBulkApi.as_view(), name="promotion-issue-bulk"),
    # PUT: the org-level activation (promotions.apis); POST ?customerId=: the customer's opt-in.
    path(
        "<str:promotion_id>/activate", activation.PromotionActivationApi.as_view(), name="promotion-activate"
    ),
    path(
        "<str:promotion_id>/deactivate",
        activation.PromotionDeactivationApi.as_view(),
        name="promotion-deactivate",
    ),
]
