from django.urls import path  # noqa: F401  (routes are added by the redemption APIs)

urlpatterns: list = []
