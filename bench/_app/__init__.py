"""The server side of the HTTP benches: the app's settings and URLs plus the app-stack write endpoint
(settings.py, urls.py), the reference write outside the app's stack (reference_settings.py,
reference_urls.py) and the bare evaluate endpoint (bare_settings.py, bare_urls.py).

gunicorn runs with `DJANGO_SETTINGS_MODULE=bench._app.<settings>`; the app's own URLs never contain them.
"""
