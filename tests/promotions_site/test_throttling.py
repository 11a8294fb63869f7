"""Rate limits per API client (429 with Retry-After) and sign-in throttles against password guessing:
HTTP Basic, the token endpoint and the admin login, on local memory and on Redis."""

from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.test import APIClient

from promotions_site import throttling
from promotions_site.throttling import Rate, SlidingWindow
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, PromotionFactory, UserFactory

TOKEN_URL = "/v3/oauth/token/generate"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):  # a multiple of 60 and of 300: a window start
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(throttling, "time", fake)
    return fake


def assert_429(response, message_start: str) -> int:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["code"] == 429 and error["message"].startswith(message_start), error
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    return retry_after


# --- Rates and the sliding window --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("6000/m", Rate(6000, 60)),
        ("10/5m", Rate(10, 300)),
        ("100/hour", Rate(100, 3600)),
        ("off", None),
        ("", None),
    ],
)
def test_rates_parse(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["10", "10/fortnight", "0/m", "ten/m", "10/0m"])
def test_bad_rates_are_refused(text):
    with pytest.raises(ImproperlyConfigured):
        Rate.parse(text)


def test_sliding_window_allows_the_limit_then_says_how_long_to_wait(clock, db):
    # given: 10 per minute, all 10 taken at the start of a window
    window = SlidingWindow(f"test-{uuid.uuid4().hex}", Rate(10, 60))
    assert all(window.take("a") is None for _ in range(10))
    # when: the 11th
    wait = window.take("a")
    # then: it must wait until the previous minute's share has slid below 9 (66 s), and a refusal
    # counts nothing
    assert wait == 66
    clock.now += 65
    assert window.take("a") is not None
    clock.now += 1
    assert window.take("a") is None
    # and another identity is counted apart
    assert window.take("b") is None


def test_sliding_window_never_allows_more_than_the_limit_over_any_period(clock, db):
    # given: a client sending one request a second for five minutes against 30 per minute
    window = SlidingWindow(f"test-{uuid.uuid4().hex}", Rate(30, 60))
    allowed_at = []
    for second in range(300):
        clock.now = 1_800_000_000.0 + second
        if window.take("a") is None:
            allowed_at.append(second)
    # then: no 60-second span holds more than 30, and the client gets about its rate
    assert max(sum(1 for t in allowed_at if start <= t < start + 60) for start in range(241)) <= 30
    assert len(allowed_at) >= 140


# --- Rate limit per API client --------------------------------------------------------------------------


def test_an_api_client_over_its_rate_gets_429_with_retry_after(api, org, settings, clock):
    # given: 3 requests a minute
    settings.API_RATE_LIMIT = "3/m"
    promotion = PromotionFactory(org=org)
    url = f"/api_gateway/v1/promotions/{promotion.pk}"
    assert [api.get(url).status_code for _ in range(3)] == [200, 200, 200]
    # when
    response = api.get(url)
    # then
    retry_after = assert_429(response, "Request was throttled. Expected available in")
    assert retry_after == 60 + 20  # the minute's 3 must slide under 2 of 3
    # and another client of the same org is not affected
    other = APIClient()
    other_client = ApiClientFactory(org=org)
    other.credentials(HTTP_AUTHORIZATION=basic_auth(other_client.username, other_client.plain_secret))
    assert other.get(url).status_code == 200
    # and a token of the throttled client is the same client
    token = APIClient().post(
        TOKEN_URL, {"key": api.api_client.username, "secret": api.api_client.plain_secret}, format="json"
    )
    assert token.status_code == 200  # the token endpoint has no API client yet: not counted
    response = APIClient().get(url, HTTP_X_CAP_API_OAUTH_TOKEN=token.json()["data"]["accessToken"])
    assert response.status_code == 429
    # and after waiting, it is served again
    clock.now += retry_after
    assert api.get(url).status_code == 200


def test_writes_are_throttled_in_the_envelope_of_v2(api, settings):
    settings.API_RATE_LIMIT = "1/m"
    url = "/v2/promotion/issue?identifierName=mobile&identifierValue=1&source=INSTORE"
    assert api.post(url, {"programId": 1, "promotionId": 1}, format="json").status_code != 429
    response = api.post(url, {"programId": 1, "promotionId": 1}, format="json")
    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == 429 and response.json()["warnings"] == []
    assert int(response["Retry-After"]) >= 1


@pytest.fixture
def redis_cache():
    """The default cache on Redis, under a key prefix of its own (no flush: the database may be shared)."""
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    location = REDIS_URL
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
                "KEY_PREFIX": prefix,
            }
        }
    ):
        yield redis.Redis.from_url(location), prefix
    client = redis.Redis.from_url(location)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_on_redis_concurrent_requests_take_exactly_the_limit(redis_cache):
    # given: 10 per minute, and 30 threads released together
    connection, prefix = redis_cache
    window = SlidingWindow("concurrency", Rate(10, 60))
    barrier = threading.Barrier(30)
    results: list = []
    lock = threading.Lock()

    def request():
        barrier.wait()
        outcome = window.take("client-1")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=request) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: exactly 10 allowed, and the counter in Redis says 10 (refusals were given back)
    assert sum(1 for outcome in results if outcome is None) == 10
    [key] = list(connection.scan_iter(f"{prefix}:*throttle:concurrency:client-1:*"))
    assert int(connection.get(key)) == 10
    assert 60 < connection.ttl(key) <= 121


def test_on_redis_the_api_throttle_is_shared(api, org, settings, redis_cache):
    # The count lives in Redis, so every web process sees the same one.
    connection, prefix = redis_cache
    settings.API_RATE_LIMIT = "2/m"
    promotion = PromotionFactory(org=org)
    url = f"/api_gateway/v1/promotions/{promotion.pk}"
    assert [api.get(url).status_code for _ in range(3)] == [200, 200, 429]
    assert list(connection.scan_iter(f"{prefix}:*throttle:api_client:{api.api_client.pk}:*"))


# --- Sign-in throttle: HTTP Basic and the token endpoint ----------------------------------------------


@pytest.fixture
def guarded(org, settings):
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = "3/5m"
    settings.LOGIN_FAILURE_LIMIT_PER_IP = "5/5m"
    client = ApiClientFactory(org=org, secret="right-secret")
    return client, PromotionFactory(org=org)


def basic_get(client, secret, promotion, **extra):
    return APIClient().get(
        f"/api_gateway/v1/promotions/{promotion.pk}",
        HTTP_AUTHORIZATION=basic_auth(client.username if hasattr(client, "username") else client, secret),
        **extra,
    )


def test_basic_auth_locks_a_username_after_its_failures(guarded, clock):
    # given: three wrong secrets for one username
    client, promotion = guarded
    assert [basic_get(client, "wrong", promotion).status_code for _ in range(3)] == [401, 401, 401]
    # when: the right secret comes next from that address
    response = basic_get(client, "right-secret", promotion)
    # then: refused unchecked, so guessing cannot go on behind the lock
    retry_after = assert_429(
        response, "Too many failed sign-in attempts for this username or from this address."
    )
    assert 1 <= retry_after <= 600
    # but the same client from another address (the store's tills) is not locked out by a stranger
    assert basic_get(client, "right-secret", promotion, REMOTE_ADDR="10.0.0.9").status_code == 200
    # and after the wait the right secret works again
    clock.now += retry_after
    assert basic_get(client, "right-secret", promotion).status_code == 200


def test_successful_sign_ins_never_count(guarded):
    client, promotion = guarded
    assert {basic_get(client, "right-secret", promotion).status_code for _ in range(10)} == {200}


def test_one_address_trying_many_usernames_is_locked(guarded, org):
    # given: five failures from one address, each for another username
    client, promotion = guarded
    for n in range(5):
        assert basic_get(f"nobody.{n}", "guess", promotion, REMOTE_ADDR="10.0.0.7").status_code == 401
    # then: that address is refused, even for a real client with the right secret
    assert_429(basic_get(client, "right-secret", promotion, REMOTE_ADDR="10.0.0.7"), "Too many failed")
    # and other addresses are not
    assert basic_get(client, "right-secret", promotion, REMOTE_ADDR="10.0.0.8").status_code == 200


def test_the_address_is_the_one_the_trusted_proxy_saw(guarded, settings):
    # given: one proxy in front (NUM_PROXIES=1): the last X-Forwarded-For entry is the client's
    client, promotion = guarded
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for n in range(5):
        # the client varies what it claims; the proxy appends what it saw
        forwarded = f"198.51.100.{n}, 203.0.113.5"
        basic_get(f"nobody.{n}", "guess", promotion, HTTP_X_FORWARDED_FOR=forwarded)
    # then: 203.0.113.5 is locked whatever it claims, and another client behind the proxy is not
    locked = basic_get(client, "right-secret", promotion, HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.5")
    assert locked.status_code == 429
    other = basic_get(client, "right-secret", promotion, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other.status_code == 200


def test_by_default_a_rotated_x_forwarded_for_escapes_no_throttle(guarded, org, settings):
    # given: the default settings (BEHIND_TLS_PROXY on, no proxy named), and one address sending a new
    # X-Forwarded-For with each failure, one of them the address of a store's till
    client, promotion = guarded
    for n in range(5):
        forwarded = "10.0.0.9" if n == 0 else f"198.51.100.{n}"
        response = basic_get(
            f"nobody.{n}", "guess", promotion, REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR=forwarded
        )
        assert response.status_code == 401
    # when: that address comes again claiming yet another one
    response = basic_get(
        client, "right-secret", promotion, REMOTE_ADDR="10.0.0.7", HTTP_X_FORWARDED_FOR="192.0.2.1"
    )
    # then: it is the address the connection came from that is locked, and the till it named is not
    assert_429(response, "Too many failed")
    assert basic_get(client, "right-secret", promotion, REMOTE_ADDR="10.0.0.9").status_code == 200
    # and an API client rotating the header stays within its rate
    settings.API_RATE_LIMIT = "3/m"
    codes = [
        basic_get(
            client, "right-secret", promotion, REMOTE_ADDR="10.0.0.8", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}"
        )
        for n in range(4)
    ]
    assert [response.status_code for response in codes] == [200, 200, 429, 429]  # one 200 above: 10.0.0.9


def test_trusted_proxies_named_by_network_give_the_first_hop_outside_them(guarded, settings):
    # given: the proxies named by network (a load balancer and an ingress, both in 10.0.0.0/8)
    client, promotion = guarded
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for n in range(5):
        # the client claims anything; the two proxies append what each saw
        forwarded = f"198.51.100.{n}, 203.0.113.5, 10.0.0.3"
        response = basic_get(
            f"nobody.{n}", "guess", promotion, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded
        )
        assert response.status_code == 401
    # then: 203.0.113.5 is locked whatever it claims; another client behind the proxies is not
    locked = basic_get(
        client, "right-secret", promotion, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.5"
    )
    assert locked.status_code == 429
    other = basic_get(
        client,
        "right-secret",
        promotion,
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.6, 10.0.0.3",
    )
    assert other.status_code == 200
    # and a connection that does not come from a proxy is its own address, whatever it claims
    direct = basic_get(
        client, "right-secret", promotion, REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR="203.0.113.5"
    )
    assert direct.status_code == 200


def test_token_endpoint_is_throttled_with_basic(guarded, clock):
    # given: failures on the token endpoint and over Basic count together for the username
    client, promotion = guarded

    def generate(secret):
        return APIClient().post(TOKEN_URL, {"key": client.username, "secret": secret}, format="json")

    assert generate("wrong").status_code == 401
    assert basic_get(client, "wrong", promotion).status_code == 401
    assert generate("wrong").status_code == 401
    # when: the right secret
    response = generate("right-secret")
    # then
    retry_after = assert_429(response, "Too many failed sign-in attempts")
    clock.now += retry_after
    assert generate("right-secret").status_code == 200


# --- Sign-in throttle: the admin login ------------------------------------------------------------------


def admin_login(client, username, password, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, **extra)


def test_admin_login_locks_a_username_after_its_failures(client, org, settings, clock):
    # given: a staff user and three wrong passwords
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = "3/5m"
    user = UserFactory(org=org)
    for _ in range(3):
        response = admin_login(client, user.username, "wrong-password")
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    # when: the right password
    response = admin_login(client, user.username, "pass-word-123")
    # then: a clear form error, and no session
    assert response.status_code == 200
    minutes = re.search(
        r"Too many failed login attempts for this username or from this address\. Try again in (\d+) minute\(s\)\.",
        response.content.decode(),
    )
    assert minutes and int(minutes.group(1)) == 7  # the 3 failures must slide under 2 of 3 per 5 minutes
    assert "_auth_user_id" not in client.session
    # and another staff user signs in
    other = UserFactory(org=org)
    assert admin_login(client, other.username, "pass-word-123").status_code == 302
    client.logout()
    # and after those minutes the first one does too
    clock.now += 7 * 60
    assert admin_login(client, user.username, "pass-word-123").status_code == 302


def test_admin_and_api_failures_are_counted_apart(client, guarded, org):
    # An API username and an admin username may be the same string; neither locks the other.
    api_client, promotion = guarded
    UserFactory(org=org, username=api_client.username)
    for _ in range(3):
        admin_login(client, api_client.username, "wrong-password")
    assert basic_get(api_client, "right-secret", promotion).status_code == 200


# --- Sign-in throttle: per username and address, under a ceiling per username --------------------------


def test_admin_login_failures_from_one_address_lock_that_address_only(client, org, settings):
    # given: a staff user, and three wrong passwords for it from one address
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = "3/5m"
    user = UserFactory(org=org)
    for _ in range(3):
        admin_login(client, user.username, "wrong-password", REMOTE_ADDR="203.0.113.7")
    # when: the right password comes from that address, then from the user's own
    from_guesser = admin_login(client, user.username, "pass-word-123", REMOTE_ADDR="203.0.113.7")
    from_user = admin_login(client, user.username, "pass-word-123", REMOTE_ADDR="192.0.2.10")
    # then: the address that failed is refused unchecked; the user signs in from theirs
    assert (
        from_guesser.status_code == 200 and "Too many failed login attempts" in from_guesser.content.decode()
    )
    assert from_user.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize("realm", ["admin", "api"])
def test_past_the_ceiling_only_addresses_that_have_not_failed_are_checked(client, guarded, settings, realm):
    # given: 3 failures per username and address, a ceiling of 4 per username, and an admin user and an
    # API client under one name
    settings.LOGIN_FAILURE_LIMIT_PER_USERNAME = "3/5m"
    settings.LOGIN_FAILURE_LIMIT_PER_IP = "100/5m"
    settings.LOGIN_FAILURE_CEILING_PER_USERNAME = "4/h"
    api_client, promotion = guarded
    UserFactory(org=api_client.org, username=api_client.username, password="right-secret")

    def sign_in(secret: str, address: str) -> str:
        if realm == "api":
            code = basic_get(api_client, secret, promotion, REMOTE_ADDR=address).status_code
            return {200: "in", 401: "refused", 429: "locked"}[code]
        client.logout()
        response = admin_login(client, api_client.username, secret, REMOTE_ADDR=address)
        if response.status_code == 302:
            return "in"
        return "locked" if "Too many failed login attempts" in response.content.decode() else "refused"

    # when: two addresses fail twice each, each under its own limit of 3, together at the ceiling
    for address in ("198.51.100.1", "198.51.100.2"):
        assert [sign_in("wrong", address) for _ in range(2)] == ["refused", "refused"]
    # then: an address that failed is locked although under its own limit, right secret or not
    assert sign_in("right-secret", "198.51.100.1") == "locked"
    # and the right user from an address that has not failed still signs in
    assert sign_in("right-secret", "192.0.2.10") == "in"
    # and a new address gets one guess, then is locked like the others
    assert [sign_in("wrong", "198.51.100.3"), sign_in("right-secret", "198.51.100.3")] == [
        "refused",
        "locked",
    ]
