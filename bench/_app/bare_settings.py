"""The floor bench/evaluate.py compares the evaluate API with: Django and DRF with nothing of the app's
stack (no middleware, no authentication, no throttling, no database work), serving one view that does
the evaluate endpoint's JSON work alone (bench/_app/bare_urls.py)."""

from promotions_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench._app.bare_urls"
MIDDLEWARE: list[str] = []
API_MIDDLEWARE: list[str] = []
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
