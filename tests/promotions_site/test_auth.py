"""HTTP Basic (secret or its MD5 digest) and OAuth tokens: issue, use, expiry, revocation, and two
credentials in one request (they must name the same client)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from promotions import services
from promotions.services import api_client_authenticate
from promotions_site import auth
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, PromotionFactory, UserFactory

TOKEN_URL = "/v3/oauth/token/generate"


def promotion_url(promotion) -> str:
    return f"/api_gateway/v1/promotions/{promotion.pk}"


def md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


@pytest.fixture
def client_and_promotion(org):
    return ApiClientFactory(org=org, secret="server123"), PromotionFactory(org=org)


def get_with(header: dict, promotion):
    return APIClient().get(promotion_url(promotion), **header)


# --- HTTP Basic -----------------------------------------------------------------------------------


def test_basic_with_plain_secret(client_and_promotion):
    client, promotion = client_and_promotion
    response = get_with({"HTTP_AUTHORIZATION": basic_auth(client.username, "server123")}, promotion)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == promotion.pk


@pytest.mark.parametrize("digest", [md5("server123"), md5("server123").upper()])
def test_basic_with_md5_digest_of_secret(client_and_promotion, digest):
    # given: Capillary tills send md5(password) in place of the password
    client, promotion = client_and_promotion
    # when
    response = get_with({"HTTP_AUTHORIZATION": basic_auth(client.username, digest)}, promotion)
    # then
    assert response.status_code == 200


def test_capillary_documented_example_header(org):
    # given: the developer docs' example, store.server / server123
    client = ApiClientFactory(org=org, username="store.server", secret="server123")
    promotion = PromotionFactory(org=org)
    # when
    response = get_with(
        {"HTTP_AUTHORIZATION": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"},
        promotion,
    )
    # then
    assert client.username == "store.server"
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        basic_auth("till.unknown", "server123"),
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic !!!not-base64!!!",
        "Basic",
        "Basic a b",
    ],
)
def test_basic_rejects_bad_credentials_with_401_json(client_and_promotion, header):
    _, promotion = client_and_promotion
    response = get_with({"HTTP_AUTHORIZATION": header}, promotion)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response.json()["errors"][0]["code"] == 401


def test_basic_wrong_secret_and_wrong_digest(client_and_promotion):
    client, promotion = client_and_promotion
    for secret in ("server124", md5("server124"), ""):
        response = get_with({"HTTP_AUTHORIZATION": basic_auth(client.username, secret)}, promotion)
        assert response.status_code == 401, secret


def test_inactive_client_is_refused(client_and_promotion):
    client, promotion = client_and_promotion
    client.is_active = False
    client.save()
    response = get_with({"HTTP_AUTHORIZATION": basic_auth(client.username, "server123")}, promotion)
    assert response.status_code == 401


def test_missing_credentials_is_401(client_and_promotion):
    _, promotion = client_and_promotion
    response = APIClient().get(promotion_url(promotion))
    assert response.status_code == 401
    assert response.json() == {
        "errors": [{"code": 401, "message": "Authentication credentials were not provided."}]
    }


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_production_settings_store_only_a_keyed_hash_and_verify_both_forms(org):
    # given: the production password hasher, which stays the admin users' (people's passwords)
    client = ApiClientFactory(org=org, secret="s3cret-value")
    # then: an API client's machine secret is kept as a keyed hash; neither it nor its digest is stored
    assert client.secret_hash.startswith("hmac_sha256$")
    assert "s3cret-value" not in client.secret_hash and md5("s3cret-value") not in client.secret_hash
    assert api_client_authenticate(username=client.username, secret="s3cret-value") == client
    assert api_client_authenticate(username=client.username, secret=md5("s3cret-value")) == client
    assert api_client_authenticate(username=client.username, secret="wrong") is None
    assert UserFactory(org=org).password.startswith("pbkdf2_sha256$")


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_a_secret_stored_by_the_production_password_hasher_verifies_both_forms_once(org):
    # given: clients whose secrets were stored before the keyed hash (the real, slow hasher)
    from django.contrib.auth.hashers import make_password

    plain, digest = ApiClientFactory(org=org), ApiClientFactory(org=org)
    for client in (plain, digest):
        client.secret_hash = make_password(md5("s3cret-value"))
        client.save()
    # when: each signs in, one with the secret, one with its digest
    assert api_client_authenticate(username=plain.username, secret="s3cret-value") == plain
    assert api_client_authenticate(username=digest.username, secret=md5("s3cret-value")) == digest
    # then: both now hold the keyed hash, and go on verifying
    for client in (plain, digest):
        client.refresh_from_db()
        assert client.secret_hash.startswith("hmac_sha256$")
        assert api_client_authenticate(username=client.username, secret="s3cret-value") == client
        assert api_client_authenticate(username=client.username, secret=md5("s3cret-value")) == client


def test_rotated_secret_stops_the_old_one_even_when_remembered(org):
    # given: a verified (and so remembered) secret
    client = ApiClientFactory(org=org, secret="old-secret")
    assert api_client_authenticate(username=client.username, secret="old-secret") == client
    # when: the secret is rotated
    from django.contrib.auth.hashers import make_password

    client.secret_hash = make_password(md5("new-secret"))
    client.save()
    # then
    assert api_client_authenticate(username=client.username, secret="old-secret") is None
    assert api_client_authenticate(username=client.username, secret="new-secret") == client


# --- OAuth tokens ---------------------------------------------------------------------------------


def generate(key: str, secret: str):
    return APIClient().post(TOKEN_URL, {"key": key, "secret": secret}, format="json")


def test_token_generate_and_use_in_both_headers(client_and_promotion):
    client, promotion = client_and_promotion
    # when
    response = generate(client.username, "server123")
    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "errors"} and body["errors"] is None
    assert body["data"]["ttlSeconds"] == 300
    token = body["data"]["accessToken"]
    assert get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": token}, promotion).status_code == 200
    assert get_with({"HTTP_AUTHORIZATION": f"Bearer {token}"}, promotion).status_code == 200


def test_token_generate_accepts_md5_secret_and_client_ttl(org):
    client = ApiClientFactory(org=org, secret="server123", token_ttl_seconds=1200)
    response = generate(client.username, md5("server123"))
    assert response.status_code == 200
    assert response.json()["data"]["ttlSeconds"] == 1200


@pytest.mark.parametrize(
    "body", [{"key": "till.x"}, {"secret": "x"}, {}, {"key": "", "secret": ""}, {"key": ["a"], "secret": 1}]
)
def test_token_generate_validates_body(db, body):
    response = APIClient().post(TOKEN_URL, body, format="json")
    assert response.status_code == 400
    assert all(error["code"] == 400 for error in response.json()["errors"])


def test_token_generate_wrong_secret_is_401(client_and_promotion):
    client, _ = client_and_promotion
    response = generate(client.username, "nope")
    assert response.status_code == 401
    assert response.json() == {"errors": [{"code": 401, "message": "Invalid key or secret."}]}


def test_token_expires(client_and_promotion, monkeypatch):
    # given: a token with a 300 s lifetime
    client, promotion = client_and_promotion
    token = generate(client.username, "server123").json()["data"]["accessToken"]
    real_time = services.time.time
    # when: 299 s later it works; 301 s later it does not
    monkeypatch.setattr(services.time, "time", lambda: real_time() + 299)
    assert get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": token}, promotion).status_code == 200
    monkeypatch.setattr(services.time, "time", lambda: real_time() + 301)
    response = get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": token}, promotion)
    # then
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Invalid or expired access token."


def test_tampered_or_foreign_token_is_refused(client_and_promotion):
    client, promotion = client_and_promotion
    token = generate(client.username, "server123").json()["data"]["accessToken"]
    value, _, signature = token.rpartition(":")
    tampered = value + ":" + ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (tampered, "not-a-token", token + "x"):
        response = get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": bad}, promotion)
        assert response.status_code == 401, bad


def test_token_dies_with_its_client(client_and_promotion):
    client, promotion = client_and_promotion
    token = generate(client.username, "server123").json()["data"]["accessToken"]
    client.is_active = False
    client.save()
    assert get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": token}, promotion).status_code == 401


def test_token_dies_when_secret_rotates(client_and_promotion):
    from django.contrib.auth.hashers import make_password

    client, promotion = client_and_promotion
    token = generate(client.username, "server123").json()["data"]["accessToken"]
    client.secret_hash = make_password(md5("rotated"))
    client.save()
    assert get_with({"HTTP_X_CAP_API_OAUTH_TOKEN": token}, promotion).status_code == 401


def test_token_endpoint_only_posts(db):
    response = APIClient().get(TOKEN_URL)
    assert response.status_code == 405
    assert response.json()["errors"][0]["code"] == 405


# --- Two credentials in one request ---------------------------------------------------------------


def token_for(client, secret: str = "server123") -> str:
    return generate(client.username, secret).json()["data"]["accessToken"]


def assert_refused(response, message: str) -> None:
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response.json() == {"errors": [{"code": 401, "message": message}]}


@pytest.fixture
def other_client(org):
    return ApiClientFactory(org=org, secret="other456")


@pytest.mark.parametrize(
    "junk", ["junk", "eyJjaWQiOjF9:1tX-not-signed", "Basic c3RvcmUuc2VydmVyOnNlcnZlcjEyMw=="]
)
def test_valid_basic_with_a_junk_token_header_is_refused(client_and_promotion, junk):
    # given: valid Basic credentials and a token header that is not a token
    client, promotion = client_and_promotion
    # when
    response = get_with(
        {"HTTP_AUTHORIZATION": basic_auth(client.username, "server123"), "HTTP_X_CAP_API_OAUTH_TOKEN": junk},
        promotion,
    )
    # then: never served as the Basic client
    assert_refused(response, "Invalid or expired access token.")


def test_valid_basic_with_another_clients_token_is_refused(client_and_promotion, other_client):
    client, promotion = client_and_promotion
    response = get_with(
        {
            "HTTP_AUTHORIZATION": basic_auth(client.username, "server123"),
            "HTTP_X_CAP_API_OAUTH_TOKEN": token_for(other_client, "other456"),
        },
        promotion,
    )
    assert_refused(response, auth.CREDENTIALS_DISAGREE)


def test_valid_basic_with_a_deactivated_clients_token_is_refused(client_and_promotion, other_client):
    # given: a token whose client has since been deactivated
    client, promotion = client_and_promotion
    token = token_for(other_client, "other456")
    other_client.is_active = False
    other_client.save()
    # when
    response = get_with(
        {"HTTP_AUTHORIZATION": basic_auth(client.username, "server123"), "HTTP_X_CAP_API_OAUTH_TOKEN": token},
        promotion,
    )
    # then
    assert_refused(response, "Invalid or expired access token.")


def test_bearer_and_token_header_of_different_clients_are_refused(client_and_promotion, other_client):
    client, promotion = client_and_promotion
    mine, theirs = token_for(client), token_for(other_client, "other456")
    for header, bearer in ((mine, theirs), (theirs, mine)):
        response = get_with(
            {"HTTP_AUTHORIZATION": f"Bearer {bearer}", "HTTP_X_CAP_API_OAUTH_TOKEN": header}, promotion
        )
        assert_refused(response, auth.CREDENTIALS_DISAGREE)


@pytest.mark.parametrize("bearer", ["junk", "two parts"])
def test_valid_token_header_with_a_junk_bearer_is_refused(client_and_promotion, bearer):
    client, promotion = client_and_promotion
    response = get_with(
        {"HTTP_AUTHORIZATION": f"Bearer {bearer}", "HTTP_X_CAP_API_OAUTH_TOKEN": token_for(client)}, promotion
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_credentials_of_the_same_client_are_accepted(client_and_promotion):
    # given: a client sending both its Basic credentials and its own token (or one token twice)
    client, promotion = client_and_promotion
    token, second_token = token_for(client), token_for(client)
    for headers in (
        {
            "HTTP_AUTHORIZATION": basic_auth(client.username, md5("server123")),
            "HTTP_X_CAP_API_OAUTH_TOKEN": token,
        },
        {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_CAP_API_OAUTH_TOKEN": second_token},
    ):
        # when
        response = get_with(headers, promotion)
        # then
        assert response.status_code == 200, headers
        assert response.json()["data"]["id"] == promotion.pk


def test_blank_token_header_reads_as_not_sent(client_and_promotion):
    client, promotion = client_and_promotion
    response = get_with(
        {"HTTP_AUTHORIZATION": basic_auth(client.username, "server123"), "HTTP_X_CAP_API_OAUTH_TOKEN": "  "},
        promotion,
    )
    assert response.status_code == 200


def test_admin_session_is_not_an_api_credential(org, client):
    # given: a signed-in admin user of the org
    promotion = PromotionFactory(org=org)
    client.force_login(UserFactory(org=org))
    # when: calling the API with the session alone, then with the session and another org's client
    alone = client.get(promotion_url(promotion))
    foreign = ApiClientFactory(secret="server123")
    with_basic = client.get(
        promotion_url(promotion), HTTP_AUTHORIZATION=basic_auth(foreign.username, "server123")
    )
    # then: the session never authenticates an API call; the API credentials alone decide (another org: 404)
    assert alone.status_code == 401
    assert with_basic.status_code == 404
