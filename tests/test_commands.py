"""create_api_client and seed_demo."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from promotions.models import ApiClient, Organization, Promotion, PromotionType, User
from redemptions.models import Redemption
from wallets.models import Customer, EarnedPromotion


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


def test_seed_demo_loads_every_kind_of_data_once(db):
    # when
    output = run("seed_demo", "--customers", "60")
    run("seed_demo", "--customers", "60")
    # then
    org = Organization.objects.get(pk=100737)
    assert Customer.objects.for_org(org).count() == 60
    assert set(Promotion.objects.for_org(org).values_list("type", flat=True)) == set(PromotionType.values)
    assert EarnedPromotion.objects.for_org(org).count() == 40
    assert Redemption.objects.for_org(org).count() == 40
    assert User.objects.get(username="admin").org == org
    assert "curl -u demo.till:demo-secret" in output
    response = APIClient().get(
        f"/api_gateway/v1/promotions/{Promotion.objects.for_org(org).first().pk}",
        HTTP_AUTHORIZATION="Basic ZGVtby50aWxsOmRlbW8tc2VjcmV0",
    )
    assert response.status_code == 200
    # the customer id of the documented examples exists
    assert Customer.objects.filter(pk=564332013, org=org).exists()
    # new customers continue after the seeded ids
    assert Customer.objects.create(org=org).pk > 564332013 + 59
