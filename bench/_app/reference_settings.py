"""The reference the HTTP benches compare the app with: Django and DRF with nothing of the app's stack
(no middleware, no authentication, permission or throttle, the JSON renderer and parser alone: the
settings of bench/_app/bare_settings.py), serving the one view of bench/_app/reference_urls.py. The
database settings are the app's (persistent connections included), and the benches run it under the
same gunicorn settings as the app."""

from bench._app.bare_settings import *  # noqa: F403

ROOT_URLCONF = "bench._app.reference_urls"
