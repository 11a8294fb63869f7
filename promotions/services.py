"""Writes for organizations, API clients, cart promotions and the audit trail."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from promotions.models import ApiClient, AuditEvent, Organization, Promotion
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.middleware import current_request_id

_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
_TOKEN_SALT = "promotions.oauth.access-token"
_VERIFIED_TTL_SECONDS = 300


@dataclass(frozen=True)
class Actor:
    """Who performs a write: an API client, an admin user, or the system (jobs, commands)."""

    type: str
    id: str = ""
    name: str = ""

    @classmethod
    def for_api_client(cls, client: ApiClient) -> Actor:
        return cls(AuditEvent.ActorType.API_CLIENT, str(client.pk), client.username)

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(AuditEvent.ActorType.ADMIN_USER, str(user.pk), user.get_username())

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", name)


def audit_event_record(
    *, org: Organization | int, actor: Actor, action: str, object_type: str, object_id: Any = "", data=None
) -> AuditEvent:
    """Append one audit event, tagged with the current request id. Call inside the write's transaction."""
    return AuditEvent.objects.create(
        org_id=org if isinstance(org, int) else org.pk,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        request_id=current_request_id(),
        data=data or {},
    )


# --- Organizations and API clients ---------------------------------------------------------------


def organization_create(*, name: str, org_id: int | None = None, timezone_name: str = "UTC") -> Organization:
    """Create an org; without `org_id` the next free id is taken."""
    with transaction.atomic():
        if org_id is None:
            last = Organization.objects.select_for_update().order_by("-id").first()
            org_id = (last.id + 1) if last else 100000
        org = Organization(id=org_id, name=name, timezone=timezone_name)
        org.full_clean()
        org.save(force_insert=True)
        audit_event_record(
            org=org,
            actor=Actor.system(),
            action="organization.create",
            object_type="Organization",
            object_id=org.pk,
        )
    return org


def _md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()


def api_client_create(
    *,
    org: Organization,
    username: str,
    access: str = ApiClient.Access.WRITE,
    secret: str | None = None,
    token_ttl_seconds: int | None = None,
    actor: Actor | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client and return it with its secret (shown once, stored only as a salted hash).

    The hash is taken over the secret's MD5 hex digest, so a till sending the digest (Capillary's
    Basic-auth convention) and a client sending the secret itself both verify.
    """
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        org=org,
        username=username,
        access=access,
        secret_hash=make_password(_md5_hex(secret)),
        token_ttl_seconds=token_ttl_seconds or settings.OAUTH_TOKEN_DEFAULT_TTL_SECONDS,
    )
    client.full_clean()
    with transaction.atomic():
        client.save()
        audit_event_record(
            org=org,
            actor=actor or Actor.system(),
            action="api_client.create",
            object_type="ApiClient",
            object_id=client.pk,
            data={"username": username, "access": access},
        )
    return client, secret


def api_client_authenticate(*, username: str, secret: str) -> ApiClient | None:
    """The active client these credentials belong to, or None.

    `secret` may be the secret or its MD5 hex digest. A successful check is remembered for a few
    minutes (keyed by a keyed hash of the credentials and the stored hash), so the slow password
    hash runs once per client per process, not once per request; rotating the secret changes the
    stored hash and so forgets it.
    """
    client = ApiClient.objects.select_related("org").filter(username=username, is_active=True).first()
    if client is None:
        # Same work as a real check, so timing does not tell which usernames exist.
        check_password(_md5_hex(secret), make_password(None))
        return None
    cache_key = (
        "api-client-verified:"
        + hmac.new(
            settings.SECRET_KEY.encode(),
            f"{username}\0{secret}\0{client.secret_hash}".encode(),
            hashlib.sha256,
        ).hexdigest()
    )
    if cache.get(cache_key) == client.pk:
        return client
    candidates = [_md5_hex(secret)]
    if _MD5_HEX.match(secret):
        candidates.append(secret.lower())
    if any(check_password(candidate, client.secret_hash) for candidate in candidates):
        cache.set(cache_key, client.pk, _VERIFIED_TTL_SECONDS)
        return client
    return None


def _secret_fingerprint(client: ApiClient) -> str:
    return hashlib.sha256(client.secret_hash.encode()).hexdigest()[:16]


def oauth_token_generate(*, key: str, secret: str) -> tuple[str, int]:
    """A signed access token for the client (key = username) and its lifetime in seconds."""
    client = api_client_authenticate(username=key, secret=secret)
    if client is None:
        raise PromotionError(ErrorCode.UNAUTHORIZED, "Invalid key or secret.")
    ttl = min(client.token_ttl_seconds, settings.OAUTH_TOKEN_MAX_TTL_SECONDS)
    token = signing.dumps(
        {
            "cid": client.pk,
            "org": client.org_id,
            "sv": _secret_fingerprint(client),
            "exp": int(time.time()) + ttl,
        },
        salt=_TOKEN_SALT,
        compress=False,
    )
    return token, ttl


def oauth_token_verify(*, token: str) -> ApiClient | None:
    """The client a token was issued to, if the token is genuine, unexpired, and its secret unchanged."""
    try:
        payload = signing.loads(token, salt=_TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) <= time.time():
        return None
    client = ApiClient.objects.select_related("org").filter(pk=payload.get("cid"), is_active=True).first()
    if (
        client is None
        or client.org_id != payload.get("org")
        or _secret_fingerprint(client) != payload.get("sv")
    ):
        return None
    return client


# --- Promotions -------------------------------------------------------------------------------------


def _active_promotion_count(org: Organization) -> int:
    return Promotion.objects.for_org(org).filter(active=True, end_date__gt=timezone.now()).count()


def promotion_activate(*, promotion: Promotion, actor: Actor) -> Promotion:
    """Activate a promotion org-wide.

    Errors: 706 when it has already ended; 705 when the org already has its maximum of active,
    unexpired promotions. The org row is locked so two concurrent activations cannot both take
    the last slot.
    """
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=promotion.org_id)
        promotion = Promotion.objects.select_for_update().get(pk=promotion.pk)
        if promotion.end_date <= timezone.now():
            raise PromotionError(ErrorCode.PROMOTION_EXPIRED)
        if promotion.active:
            return promotion
        if _active_promotion_count(org) >= org.max_active_promotions:
            raise PromotionError(ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED)
        promotion.active = True
        promotion.last_updated_by = actor.name
        promotion.save(update_fields=["active", "last_updated_by", "last_updated_on"])
        audit_event_record(
            org=org, actor=actor, action="promotion.activate", object_type="Promotion", object_id=promotion.pk
        )
    return promotion


def promotion_deactivate(*, promotion: Promotion, actor: Actor) -> Promotion:
    """Deactivate a promotion org-wide; already inactive is a no-op."""
    with transaction.atomic():
        promotion = Promotion.objects.select_for_update().get(pk=promotion.pk)
        if not promotion.active:
            return promotion
        promotion.active = False
        promotion.last_updated_by = actor.name
        promotion.save(update_fields=["active", "last_updated_by", "last_updated_on"])
        audit_event_record(
            org=promotion.org_id,
            actor=actor,
            action="promotion.deactivate",
            object_type="Promotion",
            object_id=promotion.pk,
        )
    return promotion
