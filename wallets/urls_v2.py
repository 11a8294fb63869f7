"""v2 loyalty routes, under `/v2/promotion/`."""

from django.urls import path

from wallets import apis

urlpatterns = [
    path("issue", apis.LoyaltyPromotionIssueApi.as_view(), name="loyalty-promotion-issue"),
]
