"""API-client authentication (HTTP Basic and OAuth token) and read/write access."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission

from promotions.models import ApiClient
from promotions.services import api_client_authenticate, oauth_token_verify
from promotions_site.throttling import SignInLocked, client_ip, sign_in_check, sign_in_failure_record

TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"


# A request may carry two credentials at once (Basic or Bearer in `Authorization`, and the token
# header); each one sent is verified and they must name the same API client, else 401. Serving one of
# them silently would let a junk or foreign credential ride along unnoticed, and which one wins would
# depend on the order of DRF's authentication classes.
CREDENTIALS_DISAGREE = "The request's credentials name different API clients: send one credential."


# Clients verified by this process, by the exact `Authorization` header that verified them: served
# without SQL to the views that verify their client inside their own write (`client_verified_by_view`,
# the methods that do:
# the redeem and evaluate APIs pass `client_check` to their statement, which answers "stale" when the
# client was deactivated, its secret, access or default till changed, or its org's settings changed; the
# view then forgets the entry and authenticates afresh). Every other view verifies every request.
_VERIFIED: dict[bytes, ApiClient] = {}
_VERIFIED_MAX = 1024


class ClientStale(Exception):
    """The API client (or its org's settings) a cached request relied on changed: verify it afresh."""


@dataclass(frozen=True)
class CachedClient:
    """`request.auth` of a request served from the cache: what its write must verify."""

    check: str


# What a write verifies of a cached client, in SQL over `promotions_apiclient AS c JOIN
# promotions_organization AS o`: its secret hash, access and default till, and every setting of its org
# the cached views read (time zone, strategy, the engine's settings, the rules' version). `client_check`
# builds the same text in Python. A redeem or evaluate served from the cache sends it along; its write
# answers "stale" when the row no longer matches.
CLIENT_STATE_SQL = (
    "concat_ws('|', c.secret_hash, c.access, coalesce(c.default_till_id::text, ''), o.timezone,"
    " o.redemption_strategy, o.evaluation_mechanism, o.percentage_base, o.rounding_mode,"
    " o.rounding_precision::text, o.several_line_promotions_per_unit::text, o.rules_version::text)"
)


# True when the client (`%s`: its id) of the org (`{org}`: an SQL expression) is active and still in the
# state `%s` (`client_check`): the condition a cached view's own statement verifies.
CLIENT_STILL_AS_CACHED_SQL = (
    "EXISTS (SELECT 1 FROM promotions_apiclient AS c JOIN promotions_organization AS o ON o.id = c.org_id"
    f" WHERE c.id = %s AND c.org_id = {{org}} AND c.is_active AND {CLIENT_STATE_SQL} = %s)"
)


def client_check(client: ApiClient) -> str:
    """`CLIENT_STATE_SQL` of a client and its org as read (PostgreSQL spells booleans true/false)."""
    org = client.org
    return "|".join(
        (
            client.secret_hash,
            client.access,
            "" if client.default_till_id is None else str(client.default_till_id),
            org.timezone,
            org.redemption_strategy,
            org.evaluation_mechanism,
            org.percentage_base,
            org.rounding_mode,
            str(org.rounding_precision),
            "true" if org.several_line_promotions_per_unit else "false",
            str(org.rules_version),
        )
    )


def client_cache_forget(request) -> None:
    """Drop the request's client from the cache: the next authentication verifies it in SQL."""
    _VERIFIED.pop(get_authorization_header(request), None)


def client_verify_afresh(view, request) -> None:
    """For a view whose statement found its cached client stale: forget it, authenticate the request
    again in SQL and check the view's permissions again (401 or 403 now, if the client may no longer
    do this), so the view can run again with `request.user` as it is now."""
    client_cache_forget(request)
    request._authenticate()
    view.check_permissions(request)


def _cacheable(request) -> bool:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    return (
        request.method in getattr(view, "client_verified_by_view", ())
        and not _token_header(request)
        and connection.vendor == "postgresql"  # the writes that verify a cached client are PostgreSQL's
    )


class ApiClientBasicAuthentication(BaseAuthentication):
    """`Authorization: Basic base64(username:secret)`, where secret may be its MD5 hex digest.

    A token sent alongside (`X-CAP-API-OAUTH-TOKEN`) must be valid and belong to the same client.
    """

    def authenticate(self, request):
        cacheable = _cacheable(request)
        if cacheable:
            client = _VERIFIED.get(get_authorization_header(request))
            if client is not None:
                return client, CachedClient(client_check(client))
        client, token = self._authenticate(request)
        if client is not None and cacheable:
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[get_authorization_header(request)] = client
        return (client, token) if client is not None else None

    def _authenticate(self, request) -> tuple[ApiClient | None, str | None]:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"basic":
            return None, None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid basic header.")
        try:
            decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise exceptions.AuthenticationFailed(
                "Invalid basic header: credentials not base64 encoded."
            ) from exc
        username, separator, secret = decoded.partition(":")
        if not separator or not username:
            raise exceptions.AuthenticationFailed("Invalid basic header: expected username:password.")
        client = api_client_sign_in(request, username=username, secret=secret)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        token = _token_header(request)
        if token:
            _same_client(client, _token_client(token))
        return client, token

    def authenticate_header(self, request):
        return 'Basic realm="api"'


def api_client_sign_in(request, *, username: str, secret: str) -> ApiClient | None:
    """`api_client_authenticate` behind the sign-in throttle (HTTP Basic and the token endpoint).

    While the username or the caller's address has used up its failed sign-ins, or the slow checks of
    secrets stored in the older form are over their global cap, answers 429 (`Throttled`, with
    `Retry-After`) without checking the secret; a failed check counts.
    """
    ip = client_ip(request)
    try:
        sign_in_check(realm="api", username=username, ip=ip)
        # No username holds a NUL (PostgreSQL text cannot): an unknown client, not a database error.
        client = None if "\x00" in username else api_client_authenticate(username=username, secret=secret)
    except SignInLocked as locked:  # SecretCheckBusy included
        raise exceptions.Throttled(wait=locked.wait, detail=locked.message) from None
    if client is None:
        sign_in_failure_record(realm="api", username=username, ip=ip)
    return client


class ApiClientTokenAuthentication(BaseAuthentication):
    """An OAuth access token in `X-CAP-API-OAUTH-TOKEN` or `Authorization: Bearer`; when both are
    sent, both must be valid and belong to the same client."""

    def authenticate(self, request):
        tokens = [token for token in (_token_header(request), _bearer_token(request)) if token]
        if not tokens:
            return None
        client = _token_client(tokens[0])
        for token in tokens[1:]:
            _same_client(client, _token_client(token))
        return client, tokens[0]


def _token_header(request) -> str:
    # Sent blank, the header reads as not sent (as a blank optional query parameter does).
    return request.headers.get(TOKEN_HEADER, "").strip()


def _bearer_token(request) -> str:
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != b"bearer":
        return ""
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed("Invalid bearer header.")
    return parts[1].decode("latin-1")


def _token_client(token: str) -> ApiClient:
    client = oauth_token_verify(token=token)
    if client is None:
        raise exceptions.AuthenticationFailed("Invalid or expired access token.")
    return client


def _same_client(client: ApiClient, other: ApiClient) -> None:
    if other.pk != client.pk:
        raise exceptions.AuthenticationFailed(CREDENTIALS_DISAGREE)


class AdminLoginForm(AdminAuthenticationForm):
    """The admin login behind the sign-in throttle (realm `admin`): while the username or the address
    has used up its failed logins, the form answers a clear error before checking the password."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": (
            "Too many failed login attempts for this username or from this address. "
            "Try again in %(minutes)s minute(s)."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request) if self.request is not None else ""
        try:
            sign_in_check(realm="admin", username=username, ip=ip)
        except SignInLocked as locked:
            raise ValidationError(
                self.error_messages["locked"], code="locked", params={"minutes": math.ceil(locked.wait / 60)}
            ) from None
        try:
            return super().clean()
        except ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                sign_in_failure_record(realm="admin", username=username, ip=ip)
            raise


class HasApiAccess(BasePermission):
    """Any active API client may read; writes need a client with write access (else 403)."""

    message = "This API client has read access only; writes need write access."

    def has_permission(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return False
        return request.method in SAFE_METHODS or client.can_write


class HasApiReadAccess(BasePermission):
    """Any active API client, whatever the method: for a POST that only reads (evaluate: the record
    it keeps of the evaluation is a log, not a change a read-only client could not make)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiClient)


def request_org(request):
    """The organization the request's credentials belong to."""
    return request.user.org


class BasicAuthScheme(OpenApiAuthenticationExtension):
    target_class = ApiClientBasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": "API client username and password (or the MD5 hex digest of the password).",
        }


class TokenAuthScheme(OpenApiAuthenticationExtension):
    target_class = ApiClientTokenAuthentication
    name = "oauthToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": TOKEN_HEADER,
            "description": (
                "Token from POST /v3/oauth/token/generate (also accepted as Authorization: Bearer). "
                "Credentials sent together must belong to the same API client, else 401."
            ),
        }
