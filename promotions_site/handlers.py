"""The WSGI handler: the API's paths through a lean middleware stack, everything else through the whole one.

`settings.MIDDLEWARE` is what the admin and the pages need (sessions, CSRF, the logged-in user, the
staff's time zone, messages) on top of what every answer needs. The API authenticates every request by
its API client (`promotions_site.auth`), never by a session or a cookie, and its DRF views are exempt
from CSRF, so on its paths those middleware read and write nothing but cost a tenth of a redemption's
Python time. `ApiSplitWSGIHandler` serves `settings.API_MIDDLEWARE_PATH_PREFIXES` through
`settings.API_MIDDLEWARE` (the whole list without `settings.ADMIN_ONLY_MIDDLEWARE`) and every other
path through `settings.MIDDLEWARE`; the answers are the same, byte for byte
(tests/promotions_site/test_api_middleware.py).
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIHandler


class _ApiHandler(BaseHandler):
    """A request handler whose middleware chain is `settings.API_MIDDLEWARE`."""

    def load_middleware(self, is_async=False):
        # BaseHandler reads the list from settings.MIDDLEWARE: shown the API's list while it builds.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full


def served_by_api_stack(path_info: str) -> bool:
    """Whether a request path goes through the API's middleware (a run of leading slashes reads as one,
    as `LeadingSlashesMiddleware` serves it; the bare prefix `/api_gateway` too: a JSON 404)."""
    path = "/" + path_info.lstrip("/")
    prefixes = settings.API_MIDDLEWARE_PATH_PREFIXES
    return path.startswith(prefixes) or path + "/" in prefixes


class ApiSplitWSGIHandler(WSGIHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_handler = _ApiHandler()
        self.api_handler.load_middleware()

    def get_response(self, request):
        if served_by_api_stack(request.path_info):
            return self.api_handler.get_response(request)
        return super().get_response(request)
