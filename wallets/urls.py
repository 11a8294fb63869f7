from django.urls import path

from wallets import apis

urlpatterns = [
    # Before any `<str:promotion_id>` route (promotions.urls is included after these).
    path("customers", apis.CustomersApi.as_view(), name="customers"),
    path("earn/bulk", apis.EarnBulkApi.as_view(), name="promotion-earn-bulk"),
    # Literal routes before `<str:promotion_id>`, here and in promotions.urls (included after).
    path("revokeEarn", apis.RevokeEarnApi.as_view(), name="promotion-revoke-earn"),
    path("customer/<int:customer_id>", apis.CustomerWalletApi.as_view(), name="customer-wallet"),
    path("<str:promotion_id>/earn", apis.EarnApi.as_view(), name="promotion-earn"),
    path("<str:promotion_id>/issueBulk", apis.IssueBulkApi.as_view(), name="promotion-issue-bulk"),
]
