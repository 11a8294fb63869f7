from django.urls import path

from promotions import apis

urlpatterns = [
    path("", apis.PromotionCollectionWithSlashApi.as_view(), name="promotion-collection"),
    path("<str:promotion_id>", apis.PromotionDetailApi.as_view(), name="promotion-detail"),
    path("<str:promotion_id>/activate", apis.PromotionActivateApi.as_view(), name="promotion-activate"),
    path("<str:promotion_id>/deactivate", apis.PromotionDeactivateApi.as_view(), name="promotion-deactivate"),
]
