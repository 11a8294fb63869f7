"""The server side of bench/redeem.py: the app's settings and URLs plus one bare reference endpoint.

gunicorn runs with `DJANGO_SETTINGS_MODULE=bench._app.settings`; the app's own URLs never contain it.
"""
