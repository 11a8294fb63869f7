"""create_api_client."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from promotions.models import ApiClient, Organization


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_api_client_creates_org_and_prints_working_credentials(db):
    # when
    output = run("create_api_client", "--org-id", "4000004", "--org-name", "Acme", "--username", "acme.till")
    # then
    assert Organization.objects.get(pk=4000004).name == "Acme"
    header = re.search(r"Authorization: (Basic \S+)", output).group(1)
    md5 = re.search(r"secret MD5: ([0-9a-f]{32})", output).group(1)
    secret = re.search(r"secret:\s+(\S+)", output).group(1)
    assert ApiClient.objects.get(username="acme.till").secret_hash.find(secret) == -1
    assert APIClient().get("/api_gateway/v1/promotions/x", HTTP_AUTHORIZATION=header).status_code == 404
    token = APIClient().post("/v3/oauth/token/generate", {"key": "acme.till", "secret": md5}, format="json")
    assert token.status_code == 200


def test_create_api_client_for_existing_org_with_read_access(org):
    run(
        "create_api_client",
        "--org-id",
        str(org.pk),
        "--username",
        "reader",
        "--access",
        "READ",
        "--secret",
        "s",
    )
    client = ApiClient.objects.get(username="reader")
    assert client.org == org and client.access == "READ"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org-id", "999", "--username", "x"], "pass --org-name"),
        (["--org-name", "Bad", "--timezone", "Mars/Base", "--username", "x"], "Unknown time zone"),
    ],
)
def test_create_api_client_errors_are_clear(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_client", *args)
    assert not ApiClient.objects.exists()


def test_create_api_client_duplicate_username(org):
    run("create_api_client", "--org-id", str(org.pk), "--username", "dup")
    with pytest.raises(CommandError, match="username"):
        run("create_api_client", "--org-id", str(org.pk), "--username", "dup")
