from django.urls import path

from wallets import apis

urlpatterns = [
    # Before any `<str:promotion_id>` route (promotions.urls is included after these).
    path("customers", apis.CustomersApi.as_view(), name="customers"),
    path("earn/bulk", apis.EarnBulkApi.as_view(), name="promotion-earn-bulk"),
    path("<str:promotion_id>/earn", apis.EarnApi.as_view(), name="promotion-earn"),
    path("<str:promotion_id>/issueBulk", apis.IssueBulkApi.as_view(), name="promotion-issue-bulk"),
]
