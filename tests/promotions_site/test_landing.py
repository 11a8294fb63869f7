"""`/` is a landing page (not Django's 404), the admin's "View site" leads to it, and the site has a favicon."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.factories import UserFactory

FAVICON_LINK = re.compile(
    r'<link rel="icon" href="(/static/promotions_site/favicon\.svg)" type="image/svg\+xml">'
)


def test_the_landing_page_links_to_the_admin_the_api_docs_the_schema_and_health(client):
    # when
    response = client.get("/")

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Promotions service API</title>" in html
    for href in ("/admin/", "/api/docs/", "/api/schema/", "/health/ready"):
        assert f'href="{href}"' in html, href
    assert FAVICON_LINK.search(html)
    # nothing loaded from elsewhere: every src and href is on this site
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_the_landing_page_answers_head_and_refuses_post(client):
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


@pytest.mark.django_db
def test_the_admins_view_site_leads_to_the_landing_page_and_it_has_the_favicon(client):
    # given
    user = UserFactory()
    user.user_permissions.set(Permission.objects.all())
    client.force_login(user)

    # when
    html = client.get(reverse("admin:index")).content.decode()

    # then
    assert '<a href="/">View site</a>' in html
    assert FAVICON_LINK.search(html)


def test_favicon_ico_answers_the_svg(client):
    # when
    response = client.get("/favicon.ico")

    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "max-age=86400" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"<svg") and b"</svg>" in body


def test_the_linked_favicon_is_a_static_file(client):
    # given
    from django.contrib.staticfiles import finders

    # then: the path the pages link is one the static files app finds (collectstatic copies it)
    assert finders.find("promotions_site/favicon.svg")
