"""v2 loyalty routes, under `/v2/promotion/`."""

from django.urls import path

from wallets.apis import loyalty

urlpatterns = [
    path("issue", loyalty.LoyaltyPromotionIssueApi.as_view(), name="loyalty-promotion-issue"),
]
