"""Adding an API client in the admin: its secret is shown once, on the page answering the add form, and
nowhere else (no cookie, no message, no session, no log)."""

from __future__ import annotations

import logging
import re

from django.contrib.messages.storage.cookie import CookieStorage
from django.urls import reverse
from rest_framework.test import APIClient

from promotions.models import ApiClient
from tests.admin_support import staff_login
from tests.conftest import basic_auth


def test_the_secret_is_shown_once_in_the_add_response_and_nowhere_else(client, org, caplog):
    # given
    staff_login(client, org)
    caplog.set_level(logging.DEBUG)
    # when
    response = client.post(
        reverse("admin:promotions_apiclient_add"),
        {"username": "till.secret", "access": "WRITE", "is_active": "on", "token_ttl_seconds": 300},
    )
    # then: the answer is the page showing it
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [secret] = re.findall(r'<code id="api-client-secret">([^<]+)</code>', response.content.decode())
    created = ApiClient.objects.get(username="till.secret")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(created.username, secret))
    assert api.get("/api_gateway/v1/promotions/").status_code == 200
    # and it is in no cookie, no message, no session and no log line
    for cookie in response.cookies.values():
        assert secret not in cookie.value
    stored_messages = client.cookies.get("messages")
    if stored_messages is not None:
        decoded = CookieStorage(response.wsgi_request)._decode(stored_messages.value) or []
        assert all(secret not in str(message) for message in decoded)
    assert secret not in str(dict(client.session))
    assert all(
        secret not in record.getMessage() and secret not in str(record.__dict__) for record in caplog.records
    )
    # and the next pages do not show it
    for url in (
        reverse("admin:promotions_apiclient_change", args=[created.pk]),
        reverse("admin:promotions_apiclient_changelist"),
    ):
        assert secret not in client.get(url).content.decode()
