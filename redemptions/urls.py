from django.urls import path, register_converter

from redemptions import apis


class CustomerIdConverter:
    """A customerId in a path: digits (a long), else the path does not match (a JSON 404)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(CustomerIdConverter, "customer_id")

urlpatterns = [
    path("redemptions", apis.RedemptionsApi.as_view(), name="redemption-collection"),
    path("evaluate", apis.EvaluationCreateApi.as_view(), name="evaluation-create"),
    path("redemptions/reverse", apis.RedemptionReverseApi.as_view(), name="redemption-reverse"),
    path(
        "customer/<customer_id:customer_id>/evaluations/pending_carts",
        apis.PendingCartListApi.as_view(),
        name="pending-cart-list",
    ),
    path(
        "customer/<customer_id:customer_id>/evaluations/<str:evaluation_id>/cancel",
        apis.CartCancelApi.as_view(),
        name="cart-cancel",
    ),
    # One Capillary index spells it in the singular.
    path(
        "customer/<customer_id:customer_id>/evaluation/<str:evaluation_id>/cancel",
        apis.CartCancelSingularApi.as_view(),
        name="cart-cancel-singular",
    ),
]
