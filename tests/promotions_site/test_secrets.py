"""Secrets: a keyed hash checked with the same work whether or not the username exists, comparisons in
constant time, secrets of the older (slow) form rewritten on success and their checks capped, signed
and expiring tokens that carry no secret, and `check --deploy` clean in production."""

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
from django.contrib.auth.hashers import make_password
from django.core import signing
from rest_framework.test import APIClient

from promotions import services
from promotions.models import ApiClient
from promotions.services import api_client_authenticate, oauth_token_verify
from promotions_site import client_secrets
from promotions_site.client_secrets import SecretCheckBusy
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, PromotionFactory
from tests.promotions_site.hashers import CountingKeyedDigest, CountingPBKDF2PasswordHasher

ROOT = Path(__file__).resolve().parents[2]
TOKEN_URL = "/v3/oauth/token/generate"


def md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


@pytest.fixture
def hash_runs(settings, monkeypatch):
    """`hash_runs(call)`: the runs of each hash function during `call()`: `slow` (the password hasher)
    and `keyed` (the keyed hash of API client secrets)."""
    settings.PASSWORD_HASHERS = ["tests.promotions_site.hashers.CountingPBKDF2PasswordHasher"]
    keyed = CountingKeyedDigest(client_secrets._keyed_digest)
    monkeypatch.setattr(client_secrets, "_keyed_digest", keyed)

    def runs(call) -> dict[str, int]:
        before = CountingPBKDF2PasswordHasher.runs, keyed.runs
        call()
        return {"slow": CountingPBKDF2PasswordHasher.runs - before[0], "keyed": keyed.runs - before[1]}

    return runs


@pytest.mark.parametrize("secret", ["wrong-secret", md5("wrong-secret")], ids=["plain", "md5 digest"])
def test_an_unknown_username_costs_the_same_hashing_as_a_wrong_secret(org, hash_runs, secret):
    # given: a client
    client = ApiClientFactory(org=org, secret="right-secret")
    # when
    known = hash_runs(lambda: api_client_authenticate(username=client.username, secret=secret))
    unknown = hash_runs(lambda: api_client_authenticate(username="no.such.till", secret=secret))
    # then: a digest-shaped secret is checked in both forms, for a known client or not, by the keyed
    # hash alone: a failed sign-in never runs the slow hasher
    assert known == unknown == {"slow": 0, "keyed": 2 if secret == md5("wrong-secret") else 1}


def test_with_a_fallback_key_an_unknown_username_still_costs_what_a_wrong_secret_does(
    org, hash_runs, settings
):
    # given: a client, and an earlier key still accepted
    settings.API_CLIENT_SECRET_KEY_FALLBACKS = ["an-earlier-key"]
    client = ApiClientFactory(org=org, secret="right-secret")
    # when
    known = hash_runs(lambda: api_client_authenticate(username=client.username, secret="wrong-secret"))
    unknown = hash_runs(lambda: api_client_authenticate(username="no.such.till", secret="wrong-secret"))
    # then: each key is tried, for a known client or not
    assert known == unknown == {"slow": 0, "keyed": 2}


def legacy_client(org, secret: str):
    """A client whose secret was stored before the keyed hash: the password hasher's hash of its digest."""
    client = ApiClientFactory(org=org)
    client.secret_hash = make_password(md5(secret))
    client.save()
    return client


def test_a_secret_in_the_older_form_is_rewritten_on_its_next_successful_sign_in(org, hash_runs):
    # given: a client whose secret is stored in the older (slow) form
    client = legacy_client(org, "right-secret")
    old_hash = client.secret_hash
    # when: a wrong secret, then the right one
    wrong = hash_runs(lambda: api_client_authenticate(username=client.username, secret="wrong-secret"))
    client.refresh_from_db()
    assert client.secret_hash == old_hash
    right = hash_runs(lambda: api_client_authenticate(username=client.username, secret="right-secret"))
    # then: both checked by the slow hasher, the success rewrote the stored form as a keyed hash
    assert wrong["slow"] == right["slow"] == 1
    client.refresh_from_db()
    assert client.secret_hash.startswith("hmac_sha256$")
    # and from then on a check, right or wrong, never runs the slow hasher
    for secret in ("right-secret", md5("right-secret"), "wrong-secret"):
        assert (
            hash_runs(lambda s=secret: api_client_authenticate(username=client.username, secret=s))["slow"]
            == 0
        )
    assert api_client_authenticate(username=client.username, secret=md5("right-secret")) == client


def test_a_secret_under_a_fallback_key_verifies_and_is_rewritten_under_the_current_key(org, settings):
    # given: a secret stored under the key of the time
    settings.API_CLIENT_SECRET_KEY = "the-key-of-the-time"
    client = ApiClientFactory(org=org, secret="right-secret")
    # when: the key changes; without the old one among the fallbacks, the secret no longer verifies
    settings.API_CLIENT_SECRET_KEY = "a-new-key"
    assert api_client_authenticate(username=client.username, secret="right-secret") is None
    # and with it, it does, and is stored again under the new key
    settings.API_CLIENT_SECRET_KEY_FALLBACKS = ["the-key-of-the-time"]
    assert api_client_authenticate(username=client.username, secret="right-secret") == client
    settings.API_CLIENT_SECRET_KEY_FALLBACKS = []
    client.refresh_from_db()
    assert api_client_authenticate(username=client.username, secret="right-secret") == client


def test_a_rotation_during_a_rewrite_is_kept(org, monkeypatch):
    # given: a client in the older form, whose secret is rotated while its old secret is being checked
    client = legacy_client(org, "old-secret")
    rotated = client_secrets.secret_hash_make(md5("new-secret"))
    real_check = client_secrets.check_password

    def check_then_rotate(candidate, encoded):
        ApiClient.objects.filter(pk=client.pk).update(secret_hash=rotated)
        return real_check(candidate, encoded)

    monkeypatch.setattr(client_secrets, "check_password", check_then_rotate)
    # when
    api_client_authenticate(username=client.username, secret="old-secret")
    # then: the rotation stands; the old secret is not written back over it
    client.refresh_from_db()
    assert client.secret_hash == rotated


def test_the_token_fingerprint_changes_when_the_secret_changes(org):
    # given: a token of a client
    client = ApiClientFactory(org=org, secret="right-secret")
    token, _ = services.oauth_token_issue(client=client)
    # when: its secret is replaced
    client.secret_hash = client_secrets.secret_hash_make(md5("new-secret"))
    client.save()
    # then: the token dies; one issued now carries another fingerprint and works
    assert oauth_token_verify(token=token) is None
    new_token, _ = services.oauth_token_issue(client=client)
    assert token_payload(new_token)["sv"] != token_payload(token)["sv"]
    assert oauth_token_verify(token=new_token) == client


def test_slow_checks_are_capped_for_all_clients_together(org, settings, hash_runs):
    # given: two slow checks a minute, and two clients in the older form
    settings.LEGACY_SECRET_CHECK_LIMIT = "2/m"
    first, second = legacy_client(org, "first-secret"), legacy_client(org, "second-secret")
    # when: a success gives its unit back, and two failures, one per client, keep theirs
    assert api_client_authenticate(username=first.username, secret="first-secret") == first
    assert api_client_authenticate(username=second.username, secret="wrong") is None
    assert api_client_authenticate(username=first.username, secret="wrong") is None  # keyed by now
    assert api_client_authenticate(username=second.username, secret="wrong") is None

    # then: the next slow check is refused before it runs, the right secret too
    def refused():
        with pytest.raises(SecretCheckBusy):
            api_client_authenticate(username=second.username, secret="second-secret")

    runs = hash_runs(refused)
    assert runs["slow"] == 0
    # and over the API: 429 with Retry-After, unchecked; clients in the keyed form are not affected
    response = APIClient().get(
        f"/api_gateway/v1/promotions/{PromotionFactory(org=org).pk}",
        HTTP_AUTHORIZATION=basic_auth(second.username, "second-secret"),
    )
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response.json()["errors"][0]["message"].startswith("Too many sign-in attempts are being checked.")
    assert api_client_authenticate(username=first.username, secret="first-secret") == first


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
    monkeypatch.setattr(
        client_secrets, "constant_time_compare", spy("hasher", client_secrets.constant_time_compare)
    )
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
