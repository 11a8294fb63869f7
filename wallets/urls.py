from django.urls import path

from wallets import apis

urlpatterns = [
    path("<str:promotion_id>/issueBulk", apis.IssueBulkApi.as_view(), name="promotion-issue-bulk"),
]
