from django.urls import path

from promotions import apis
from promotions.codegen import apis as code_apis

urlpatterns = [
    path("", apis.PromotionCollectionWithSlashApi.as_view(), name="promotion-collection"),
    # Literal routes before `<str:promotion_id>`: "config" and "till" are not promotion ids.
    path("config", apis.PromotionConfigApi.as_view(), name="promotion-config"),
    path("till/<str:till_id>", apis.PromotionTillApi.as_view(), name="promotion-till"),
    path("<str:promotion_id>", apis.PromotionDetailApi.as_view(), name="promotion-detail"),
    path(
        "<str:promotion_id>/codes/generate",
        code_apis.PromoCodeGenerateApi.as_view(),
        name="promo-code-generate",
    ),
    path(
        "<str:promotion_id>/codes/batches/<str:batch_id>",
        code_apis.PromoCodeBatchApi.as_view(),
        name="promo-code-batch",
    ),
    path(
        "<str:promotion_id>/codes/batches/<str:batch_id>/cancel",
        code_apis.PromoCodeBatchCancelApi.as_view(),
        name="promo-code-batch-cancel",
    ),
    # `<str:promotion_id>/activate` and `/deactivate` are routed by wallets.urls (included first): the
    # same address answers PUT (org level, PromotionActivateApi here) and POST ?customerId= (a
    # customer's opt-in, which the wallets app owns).
]
