from django.contrib import admin
from django.urls import include, path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from promotions.apis import OAuthTokenGenerateApi, PromotionCollectionWithoutSlashApi
from promotions_site.auth import AdminLoginForm
from promotions_site.health import health_live, health_ready
from promotions_site.metrics import metrics_view
from promotions_site.views import favicon, landing
from redemptions.admin import cart_trial_view, dashboard_view
from redemptions.performance import promotion_performance_view

urlpatterns = [
    path("", landing, name="landing"),
    path("favicon.ico", favicon, name="favicon"),
    # The marketer dashboard, inside the admin (its login, its look); before the admin's own routes.
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    # A promotion tried on a cart (its page's "Try it on a cart"): the redemptions app evaluates, so the
    # view is theirs; its address sits under the promotion's, before the admin's catch-all routes.
    path(
        "admin/promotions/promotion/<str:promotion_id>/try/",
        admin.site.admin_view(cart_trial_view),
        name="admin-promotion-try",
    ),
    # A promotion's performance (its page's "Performance"): the redemptions app's summaries, its view.
    path(
        "admin/promotions/promotion/<str:promotion_id>/performance/",
        admin.site.admin_view(promotion_performance_view),
        name="admin-promotion-performance",
    ),
    path("admin/", admin.site.urls),
    path("v3/oauth/token/generate", OAuthTokenGenerateApi.as_view(), name="oauth-token-generate"),
    # Capillary documents create as `/api_gateway/v1/promotions` and the list with a trailing slash.
    path(
        "api_gateway/v1/promotions",
        PromotionCollectionWithoutSlashApi.as_view(),
        name="promotion-collection-bare",
    ),
    path("api_gateway/v1/promotions/", include("redemptions.urls")),
    path("api_gateway/v1/promotions/", include("wallets.urls")),
    path("api_gateway/v1/promotions/", include("promotions.urls")),
    path("v2/promotion/", include("wallets.urls_v2")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # GET only: DRF's OPTIONS would render its metadata through the Swagger page's template (a 500).
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", http_method_names=["get", "head"]),
        name="api-docs",
    ),
    # Operations: probes and the Prometheus scrape (plain Django views: no API auth, no throttling).
    path("health/live", health_live, name="health-live"),
    path("health/ready", health_ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
]

admin.site.site_header = "Promotions"
admin.site.site_title = "Promotions admin"
admin.site.index_title = "Promotions, wallets and redemptions"
# "View site" in the admin's header leads to the landing page (links to the API docs and health).
admin.site.site_url = reverse_lazy("landing")
# Failed logins are throttled per username and per address (docs/api.md, "Limits and rate limiting").
admin.site.login_form = AdminLoginForm
