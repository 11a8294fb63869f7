from django.urls import path

from redemptions import apis

urlpatterns = [
    path("redemptions", apis.RedemptionListApi.as_view(), name="redemption-list"),
]
