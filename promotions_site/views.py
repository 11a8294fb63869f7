"""The site's own pages outside the admin and the API: the landing page at `/` and the favicon."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = "promotions_site/favicon.svg"


@require_safe
def landing(request):
    """Where `/` and the admin's "View site" lead: what this is and where to go (admin, API docs, health)."""
    return TemplateResponse(
        request, "landing.html", {"title": settings.SPECTACULAR_SETTINGS["TITLE"], "favicon": FAVICON}
    )


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """`/favicon.ico`, which browsers ask for on any page without a <link rel="icon">: the static SVG,
    read through the static finders so it answers whether or not a web server serves /static/."""
    path = finders.find(FAVICON)
    if path is None:  # only if the static file is removed from the tree
        raise Http404("No favicon.")
    return FileResponse(open(path, "rb"), content_type="image/svg+xml")
