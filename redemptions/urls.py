from django.urls import path

from redemptions import apis

urlpatterns = [
    path("redemptions", apis.RedemptionsApi.as_view(), name="redemption-collection"),
    path("evaluate", apis.EvaluationCreateApi.as_view(), name="evaluation-create"),
    path("redemptions/reverse", apis.RedemptionReverseApi.as_view(), name="redemption-reverse"),
]
