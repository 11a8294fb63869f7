"""The app's settings, with the URLs of bench/_app/urls.py (the app's plus the app-stack write endpoint)."""

from promotions_site.settings import *  # noqa: F403

ROOT_URLCONF = "bench._app.urls"
