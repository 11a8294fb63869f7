"""Writes for organizations, API clients, cart promotions and idempotency keys (the audit trail they
all append to: `promotions.audit`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import (
    ApiClient,
    IdempotencyKey,
    Organization,
    Promotion,
    PromotionRestriction,
    PromotionType,
)
from promotions.signals import promotion_dates_changed
from promotions_site.client_secrets import secret_hash_check, secret_hash_make
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.idempotency import retention

_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
_TOKEN_SALT = "promotions.oauth.access-token"


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
    """Create an API client and return it with its secret (shown once, stored only as a keyed hash).

    The hash is taken over the secret's MD5 hex digest, so a till sending the digest (Capillary's
    Basic-auth convention) and a client sending the secret itself both verify.
    """
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        org=org,
        username=username,
        access=access,
        secret_hash=secret_hash_make(_md5_hex(secret)),
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

    `secret` may be the secret or its MD5 hex digest. The stored keyed hash makes a check cost
    microseconds, and an unknown username costs the same work as a wrong secret. A secret stored in an
    older form (a PBKDF2 hash, or under a fallback key) is rewritten in the current form on success,
    unless the secret was rotated meanwhile. Raises `SecretCheckBusy` when an older form's slow check
    is refused by the global cap on them (`LEGACY_SECRET_CHECK_LIMIT`).
    """
    candidates = [_md5_hex(secret)]
    if _MD5_HEX.match(secret):
        candidates.append(secret.lower())
    try:
        # get(), not first(): no ORDER BY to build on every request (username is unique).
        client = ApiClient.objects.select_related("org").get(username=username, is_active=True)
    except ApiClient.DoesNotExist:
        client = None
    check = secret_hash_check(candidates=candidates, encoded=client.secret_hash if client else None)
    if client is None or check.matched is None:
        return None
    if check.outdated:
        current = secret_hash_make(check.matched)
        # Conditional on the hash read: a rotation that happened meanwhile is kept.
        if ApiClient.objects.filter(pk=client.pk, secret_hash=client.secret_hash).update(secret_hash=current):
            client.secret_hash = current
    return client


def _secret_fingerprint(client: ApiClient) -> str:
    return hashlib.sha256(client.secret_hash.encode()).hexdigest()[:16]


def oauth_token_generate(*, key: str, secret: str) -> tuple[str, int]:
    """A signed access token for the client (key = username) and its lifetime in seconds."""
    client = api_client_authenticate(username=key, secret=secret)
    if client is None:
        raise PromotionError(ErrorCode.UNAUTHORIZED, "Invalid key or secret.")
    return oauth_token_issue(client=client)


def oauth_token_issue(*, client: ApiClient) -> tuple[str, int]:
    """A signed access token for an authenticated client, and its lifetime in seconds.

    The token carries the client, its org, a fingerprint of its stored secret hash and the expiry
    time; `oauth_token_verify` checks the signature (HMAC with `SECRET_KEY`) before reading them.
    """
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
    try:
        client = ApiClient.objects.select_related("org").get(pk=payload.get("cid"), is_active=True)
    except (ApiClient.DoesNotExist, TypeError, ValueError):
        client = None
    if (
        client is None
        or client.org_id != payload.get("org")
        or not hmac.compare_digest(_secret_fingerprint(client), str(payload.get("sv", "")))
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


@dataclass(frozen=True)
class RestrictionSpec:
    """One limit of a promotion (`promotionRestrictions.<level>[]`), before it is stored."""

    level: str
    kpi: str
    limit: Decimal
    frequency: str = ""
    window_type: str = ""
    min_time_between_repeat: int | None = None
    fixed_window_config: dict | None = None

    @classmethod
    def of(cls, row: PromotionRestriction) -> RestrictionSpec:
        """The spec of a stored limit (the field names are the model's)."""
        return cls(**{spec_field.name: getattr(row, spec_field.name) for spec_field in dataclass_fields(cls)})

    def as_data(self) -> dict:
        """As the API echoes it: the limit as a string with six decimals (`"5000.000000"`)."""
        data = {"kpi": self.kpi, "limit": f"{self.limit:.6f}"}
        for key, value in (
            ("frequency", self.frequency),
            ("windowType", self.window_type),
            ("minTimeBetweenRepeat", self.min_time_between_repeat),
            ("fixedWindowConfig", self.fixed_window_config),
        ):
            if value not in ("", None):
                data[key] = value
        return data


def restrictions_data(specs) -> dict:
    """`promotionRestrictions` as the API returns it: levels in a fixed order, only those present."""
    data: dict[str, list] = {}
    for level in PromotionRestriction.Level.values:
        items = [spec.as_data() for spec in specs if spec.level == level]
        if items:
            data[level] = items
    return data


# The model fields the create and update APIs (and the admin) set. `type` and `active` are set on
# create only: update refuses to change them (activate/deactivate have their own endpoints).
PROMOTION_FIELDS = (
    "name", "type", "active", "priority", "is_stackable", "start_date", "end_date", "mode", "message_label",
    "campaign_id", "condition", "action", "max_issuance_per_customer", "max_earning_per_customer",
    "earned_validity_days", "customer_activation_required", "earn_limited_to_specific_audience",
    "earning_criteria", "custom_field_values", "store_criteria", "is_loyalty_only",
)  # fmt: skip
# Frozen once the promotion has started: its limits, and opt-in (Capillary: "cannot change after start").
FROZEN_WHEN_LIVE = ("max_issuance_per_customer", "max_earning_per_customer", "customer_activation_required")
ROLLING_WINDOWS = {"MOVING"}
FIXED_WINDOWS = {"FIXED", "CLASSIC"}


def _bad(message: str) -> PromotionError:
    return PromotionError(ErrorCode.BAD_REQUEST, message)


def promotion_validate(
    *, fields: dict, restrictions: list[RestrictionSpec], existing: Promotion | None = None, now=None
) -> None:
    """The rules a promotion's configuration must follow, for create (`existing` None) and update.

    Raises PromotionError: 400 for an inconsistent configuration (dates, type-specific parts,
    restriction levels and windows), 706 when a new promotion has already ended, 1011 when an
    update switches a limit between CLASSIC and OVERALL/MOVING windows, and 400 when an update
    changes `type` or `active`, or the limits of a promotion that has started.
    """
    now = now or timezone.now()
    promotion_type = fields["type"]
    if fields["end_date"] <= fields["start_date"]:
        raise _bad("endDate must be after startDate.")
    if existing is None and fields["end_date"] <= now:
        raise PromotionError(ErrorCode.PROMOTION_EXPIRED, "Promotion has expired: endDate is in the past.")
    if fields.get("customer_activation_required") and promotion_type not in PromotionType.WALLET_TYPES:
        raise _bad("customerActivationRequired is supported for CUSTOMER, EARNING and REWARD promotions.")
    condition_type = (fields.get("condition") or {}).get("type")
    action_type = (fields.get("action") or {}).get("type")
    if (condition_type == "TENDER") != (action_type == "TENDER"):
        raise _bad("A TENDER condition goes with a TENDER action, and only with it.")
    _validate_restrictions(promotion_type, restrictions)
    _compilable_check(fields, restrictions, existing)

    if existing is None:
        return
    if promotion_type != existing.type:
        raise _bad("type cannot be updated.")
    if fields["active"] != existing.active:
        raise _bad("active cannot be updated; use the activate and deactivate endpoints.")
    current = {(r.level, r.kpi): r for r in existing.restrictions.all()}
    for spec in restrictions:
        old = current.get((spec.level, spec.kpi))
        if old is not None and (old.window_type == "CLASSIC") != (spec.window_type == "CLASSIC"):
            raise PromotionError(ErrorCode.RESTRICTION_SCHEMA_CHANGE)
    if existing.start_date <= now:
        if not _same_restrictions(restrictions, [RestrictionSpec.of(r) for r in current.values()]):
            raise _bad("promotionRestrictions cannot be changed once the promotion is live.")
        for name in FROZEN_WHEN_LIVE:
            if fields[name] != getattr(existing, name):
                raise _bad(f"{_api_name(name)} cannot be changed once the promotion is live.")


def _compilable_check(fields: dict, restrictions: list[RestrictionSpec], existing: Promotion | None) -> None:
    """The engine must be able to evaluate what would be stored: the promotion as the API would echo
    it goes through `compile_rule`; what it cannot evaluate is 400 naming the part (`path: message`),
    never stored to be silently ignored."""
    from promotions.engine import UnsupportedRule
    from promotions.rules import promotion_compile, unsupported_text

    candidate = Promotion(
        id=existing.pk if existing is not None else "0" * 24,
        org_id=existing.org_id if existing is not None else None,
        **{name: value for name, value in fields.items() if name in PROMOTION_FIELDS},
    )
    try:
        promotion_compile(candidate, restrictions)
    except UnsupportedRule as error:
        raise _bad(f"Not supported by the promotion engine: {unsupported_text(error)}") from error


def _same_restrictions(left: list[RestrictionSpec], right: list[RestrictionSpec]) -> bool:
    def key(spec):
        return (spec.level, spec.kpi)

    return sorted(left, key=key) == sorted(right, key=key)


def _api_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _validate_restrictions(promotion_type: str, restrictions: list[RestrictionSpec]) -> None:
    Level = PromotionRestriction.Level
    levels = {spec.level for spec in restrictions}
    keys = [(spec.level, spec.kpi) for spec in restrictions]
    if len(keys) != len(set(keys)):
        raise _bad("promotionRestrictions: each kpi may appear once per level.")
    if promotion_type == PromotionType.CODE and Level.CODE not in levels:
        raise _bad("promotionRestrictions.Code is required for CODE promotions.")
    if promotion_type != PromotionType.CODE and Level.CODE in levels:
        raise _bad("promotionRestrictions.Code is only for CODE promotions.")
    if promotion_type not in PromotionType.EARNABLE_TYPES and Level.EARN in levels:
        raise _bad("promotionRestrictions.Earn is only for EARNING and REWARD promotions.")
    windows = {spec.window_type for spec in restrictions}
    if windows & ROLLING_WINDOWS and windows & FIXED_WINDOWS:
        raise _bad("promotionRestrictions: fixed and rolling windows cannot be mixed.")
    for spec in restrictions:
        if spec.level == Level.CART and (
            spec.frequency not in ("", "DOES_NOT_REPEAT") or spec.window_type not in ("", "OVERALL")
        ):
            raise _bad("promotionRestrictions.Cart limits are per transaction and cannot reset.")


def _active_promotion_slot_take(org: Organization) -> Organization:
    """Lock the org row and refuse (705) when it already has its maximum of active promotions."""
    org = Organization.objects.select_for_update().get(pk=org.pk)
    if _active_promotion_count(org) >= org.max_active_promotions:
        raise PromotionError(ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED)
    return org


def _restrictions_store(promotion: Promotion, restrictions: list[RestrictionSpec]) -> None:
    PromotionRestriction.objects.bulk_create(
        PromotionRestriction(promotion=promotion, **asdict(spec)) for spec in restrictions
    )


def _name_taken(error: IntegrityError) -> bool:
    return "promotion_name_unique_per_org" in str(error) or "promotions_promotion.org_id" in str(error)


def promotion_create(
    *, org: Organization, fields: dict, restrictions: list[RestrictionSpec], actor: Actor
) -> Promotion:
    """Create a cart promotion with its limits, in one transaction.

    Errors: those of `promotion_validate`; 705 when it is created active and the org already has
    its maximum of active promotions (the org row is locked, so concurrent creates cannot both take
    the last slot); 716 when the org already has a promotion of that name.
    """
    fields = {name: fields[name] for name in PROMOTION_FIELDS if name in fields}
    fields.setdefault("active", True)
    promotion_validate(fields=fields, restrictions=restrictions)
    with transaction.atomic():
        if fields["active"]:
            org = _active_promotion_slot_take(org)
        try:
            with transaction.atomic():
                promotion = Promotion.objects.create(
                    org=org,
                    **fields,
                    created_by=actor.name,
                    last_updated_by=actor.name,
                )
        except IntegrityError as error:
            if _name_taken(error):
                raise PromotionError(ErrorCode.PROMOTION_NAME_NOT_UNIQUE) from error
            raise
        _restrictions_store(promotion, restrictions)
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.create",
            object_type="Promotion",
            object_id=promotion.pk,
            data={"name": promotion.name, "type": promotion.type},
        )
    return promotion


def promotion_update(
    *, promotion: Promotion, fields: dict, restrictions: list[RestrictionSpec], actor: Actor
) -> Promotion:
    """Replace a promotion's configuration (Capillary's PUT is a full replacement).

    `type` and `active` cannot change (400); limits and opt-in are frozen once the promotion has
    started (400, or 1011 for a window schema change). When the end date or the earned-validity
    days change, `promotion_dates_changed` is sent in the same transaction: the wallets app recomputes
    the validTill of the promotion's ACTIVE instances (Capillary runs an expiry-date job for this).
    Errors: 716 on a name clash.
    """
    with transaction.atomic():
        existing = Promotion.objects.select_for_update().get(pk=promotion.pk)
        fields = {name: fields.get(name, getattr(existing, name)) for name in PROMOTION_FIELDS}
        promotion_validate(fields=fields, restrictions=restrictions, existing=existing)
        redate = (fields["end_date"], fields["earned_validity_days"]) != (
            existing.end_date,
            existing.earned_validity_days,
        )
        changed = sorted(name for name in PROMOTION_FIELDS if fields[name] != getattr(existing, name))
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.last_updated_by = actor.name
        try:
            with transaction.atomic():
                existing.save()
        except IntegrityError as error:
            if _name_taken(error):
                raise PromotionError(ErrorCode.PROMOTION_NAME_NOT_UNIQUE) from error
            raise
        if not _same_restrictions(restrictions, [RestrictionSpec.of(r) for r in existing.restrictions.all()]):
            existing.restrictions.all().delete()
            _restrictions_store(existing, restrictions)
        redated = 0
        if redate:
            responses = promotion_dates_changed.send(sender=Promotion, promotion=existing)
            redated = sum(count for _, count in responses)
        audit_event_record(
            org=existing.org_id,
            actor=actor,
            action="promotion.update",
            object_type="Promotion",
            object_id=existing.pk,
            data={"changed": changed, "redated_instances": redated},
        )
    return existing


# --- Importing promotions from a file (the import_promotions command) -------------------------------


@dataclass
class PromotionImportEntry:
    """One promotion of an import file: where it is (`label`, e.g. "line 4"), the name it gives,
    and either its validated fields and limits (as the create API passes them to `promotion_create`)
    or the create API's validation messages for it."""

    label: str
    name: str
    fields: dict | None = None
    restrictions: list[RestrictionSpec] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class PromotionImportResult:
    """What became of one entry: CREATED, EXISTS (an identical promotion of that name was already
    there: skipped) or FAILED (`code` and `messages` as the create API would answer)."""

    CREATED = "CREATED"
    EXISTS = "EXISTS"
    FAILED = "FAILED"

    entry: PromotionImportEntry
    status: str
    promotion_id: str = ""
    code: int | None = None
    messages: list[str] = field(default_factory=list)


@dataclass
class PromotionImportOutcome:
    results: list[PromotionImportResult] = field(default_factory=list)
    committed: bool = True

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)


def promotions_import(
    *, org: Organization, entries: Iterable[PromotionImportEntry], partial: bool, actor: Actor
) -> PromotionImportOutcome:
    """Create the promotions of an import file, in file order, each through `promotion_create`.

    All or nothing unless `partial`: every entry runs inside one transaction (each in its own
    savepoint, so one failure does not hide the next entry's) and the transaction is rolled back
    when any entry failed; every failure is reported, and `committed` is False. With `partial`,
    each promotion is committed on its own and the failures are reported next to the successes.

    Per entry: 400 the validation messages it came with; 716 a name given by an earlier entry of
    the same file, or the name of an existing promotion of the org whose configuration differs
    (the message names the differing fields); then the errors of `promotion_create` (400, 705
    when the org's cap of active promotions is reached, counting the promotions created before it
    in this file, 706, 716). An entry whose name is taken by a promotion with the same
    configuration is EXISTS and skipped, so importing a file again changes nothing.
    """
    outcome = PromotionImportOutcome()
    first_of_name: dict[str, str] = {}

    def run() -> None:
        for entry in entries:
            outcome.results.append(_promotion_import_one(org, entry, first_of_name, actor))

    if partial:
        run()
        return outcome
    with transaction.atomic():
        run()
        if outcome.count(PromotionImportResult.FAILED):
            transaction.set_rollback(True)
            outcome.committed = False
    return outcome


def _promotion_import_one(
    org: Organization, entry: PromotionImportEntry, first_of_name: dict[str, str], actor: Actor
) -> PromotionImportResult:
    def failed(code: ErrorCode, *messages: str) -> PromotionImportResult:
        return PromotionImportResult(
            entry, PromotionImportResult.FAILED, code=int(code), messages=list(messages) or [code.message]
        )

    if entry.fields is None:
        return failed(ErrorCode.BAD_REQUEST, *entry.errors)
    name = entry.fields["name"]
    if name in first_of_name:
        return failed(
            ErrorCode.PROMOTION_NAME_NOT_UNIQUE,
            f"{ErrorCode.PROMOTION_NAME_NOT_UNIQUE.message} {first_of_name[name]} of this file has the "
            f"name {name!r} too.",
        )
    first_of_name[name] = entry.label
    existing = Promotion.objects.for_org(org).filter(name=name).prefetch_related("restrictions").first()
    if existing is not None:
        differences = _promotion_differences(existing, entry.fields, entry.restrictions)
        if not differences:
            return PromotionImportResult(entry, PromotionImportResult.EXISTS, promotion_id=existing.pk)
        return failed(
            ErrorCode.PROMOTION_NAME_NOT_UNIQUE,
            f"{ErrorCode.PROMOTION_NAME_NOT_UNIQUE.message} Promotion {existing.pk} of the org is named "
            f"{name!r} and differs in {', '.join(differences)}.",
        )
    try:
        promotion = promotion_create(
            org=org, fields=entry.fields, restrictions=entry.restrictions, actor=actor
        )
    except PromotionError as error:
        return failed(error.code, error.message)
    return PromotionImportResult(entry, PromotionImportResult.CREATED, promotion_id=promotion.pk)


def _promotion_differences(
    promotion: Promotion, fields: dict, restrictions: list[RestrictionSpec]
) -> list[str]:
    """The API names of what `promotion` would differ in from a new one made of `fields` and
    `restrictions` (absent fields take the model's defaults). `active` is state, not configuration:
    a promotion deactivated since it was imported is still the same promotion."""
    differences = [
        _api_name(name)
        for name in PROMOTION_FIELDS
        if name != "active"
        and getattr(promotion, name)
        != (fields[name] if name in fields else Promotion._meta.get_field(name).get_default())
    ]
    if not _same_restrictions(restrictions, [RestrictionSpec.of(r) for r in promotion.restrictions.all()]):
        differences.append("promotionRestrictions")
    return differences


# --- Idempotency keys ----------------------------------------------------------------------------

IDEMPOTENCY_PURGE_BATCH = 5000


def idempotency_keys_purge(
    *, now: dt.datetime | None = None, batch_size: int = IDEMPOTENCY_PURGE_BATCH
) -> int:
    """Delete the `Idempotency-Key` rows older than the retention (72 hours); returns how many.

    After the retention a key may be used again: a request meeting a row past it replaces it (see
    promotions_site/idempotency.py), so the purge only keeps the table small. In batches, each its
    own transaction, with `FOR UPDATE SKIP LOCKED`: a row locked by a request reusing its key right
    now is left for the next run. Running it again deletes nothing. Not audited: keys are request
    bookkeeping, not data of an org.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or timezone.now()) - retention()
    due = (
        IdempotencyKey.objects.filter(created_at__lt=cutoff)
        .order_by()
        .select_for_update(skip_locked=True)
        .values_list("id", flat=True)
    )
    purged = 0
    while True:
        with transaction.atomic():
            batch = list(due[:batch_size])
            if batch:
                purged += IdempotencyKey.objects.filter(pk__in=batch).delete()[0]
        if len(batch) < batch_size:
            return purged
