"""Secrets: checks that take the same work whether or not the username exists, comparisons in constant
time, signed and expiring tokens that carry no secret, and `check --deploy` clean in production."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import signing
from rest_framework.test import APIClient

from promotions import services
from promotions.services import api_client_authenticate, oauth_token_verify
from tests.factories import ApiClientFactory, PromotionFactory
from tests.promotions_site.hashers import CountingPBKDF2PasswordHasher

ROOT = Path(__file__).resolve().parents[2]
TOKEN_URL = "/v3/oauth/token/generate"


def md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def hash_runs(call) -> int:
    before = CountingPBKDF2PasswordHasher.runs
    call()
    return CountingPBKDF2PasswordHasher.runs - before


@pytest.mark.parametrize("secret", ["wrong-secret", md5("wrong-secret")], ids=["plain", "md5 digest"])
def test_an_unknown_username_costs_the_same_hashing_as_a_wrong_secret(org, settings, secret):
    # given: a client, and a hasher that counts its runs
    settings.PASSWORD_HASHERS = ["tests.promotions_site.hashers.CountingPBKDF2PasswordHasher"]
    client = ApiClientFactory(org=org, secret="right-secret")
    # when
    known = hash_runs(lambda: api_client_authenticate(username=client.username, secret=secret))
    unknown = hash_runs(lambda: api_client_authenticate(username="no.such.till", secret=secret))
    # then: a digest-shaped secret is checked in both forms, for a known client or not
    assert known == unknown == (2 if secret == md5("wrong-secret") else 1)


def test_secret_and_token_comparisons_are_constant_time(org, monkeypatch):
    # given: spies on the constant-time comparisons
    import hmac

    from django.contrib.auth import hashers

    calls: list[str] = []

    def spy(name, real):
        def compare(a, b):
            calls.append(name)
            return real(a, b)

        return compare

    monkeypatch.setattr(hashers, "constant_time_compare", spy("hasher", hashers.constant_time_compare))
    monkeypatch.setattr(signing, "constant_time_compare", spy("signature", signing.constant_time_compare))
    monkeypatch.setattr(hmac, "compare_digest", spy("fingerprint", hmac.compare_digest))
    client = ApiClientFactory(org=org, secret="right-secret")
    # when: a secret is checked, then a token issued and verified
    assert api_client_authenticate(username=client.username, secret="wrong-secret") is None
    token, _ = services.oauth_token_issue(client=client)
    assert oauth_token_verify(token=token) == client
    # then
    assert calls.count("hasher") == 1
    assert "signature" in calls and "fingerprint" in calls


def token_payload(token: str) -> dict:
    value = token.split(":")[0]  # payload:timestamp:signature
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def test_a_token_carries_no_secret_and_expires_after_its_ttl(org):
    # given
    client = ApiClientFactory(org=org, secret="right-secret", token_ttl_seconds=900)
    # when
    token, ttl = services.oauth_token_issue(client=client)
    # then: the client, its org, a fingerprint of the stored hash and the expiry; nothing to reverse
    payload = token_payload(token)
    assert set(payload) == {"cid", "org", "sv", "exp"}
    assert ttl == 900 and abs(payload["exp"] - time.time() - 900) <= 2
    assert (
        payload["sv"] not in client.secret_hash
        and "right-secret" not in token
        and md5("right-secret") not in token
    )


def test_the_token_lifetime_never_exceeds_the_maximum(org, settings):
    settings.OAUTH_TOKEN_MAX_TTL_SECONDS = 600
    client = ApiClientFactory(org=org, token_ttl_seconds=3600)
    assert services.oauth_token_issue(client=client)[1] == 600


def test_a_token_with_a_changed_payload_or_another_key_is_refused(org, settings):
    # given: a genuine token
    client = ApiClientFactory(org=org)
    other = ApiClientFactory(org=org)
    promotion = PromotionFactory(org=org)
    token, _ = services.oauth_token_issue(client=client)
    _, stamp_and_signature = token.split(":", 1)
    # when: its expiry is pushed back, or it names another client, under the original signature
    forged = []
    for change in ({"exp": token_payload(token)["exp"] + 86400}, {"cid": other.pk}):
        payload = {**token_payload(token), **change}
        encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
        forged.append(encoded.rstrip("=") + ":" + stamp_and_signature)
    # and one is signed with another SECRET_KEY
    forged.append(
        signing.dumps(
            token_payload(token), key="another-secret-key", salt=services._TOKEN_SALT, compress=False
        )
    )
    # then: none is accepted, over the API either
    for bad in forged:
        assert oauth_token_verify(token=bad) is None
        response = APIClient().get(
            f"/api_gateway/v1/promotions/{promotion.pk}", HTTP_X_CAP_API_OAUTH_TOKEN=bad
        )
        assert response.status_code == 401
    assert oauth_token_verify(token=token) == client


def test_check_deploy_is_clean_under_production_settings():
    # given: a production-like environment: DEBUG off, a strong SECRET_KEY, ALLOWED_HOSTS set, and
    # nothing else from the test run
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "promotions.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:///unused.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "promotions_site.settings",
    }
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
