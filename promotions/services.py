"""Writes for organizations, API clients, cart promotions and idempotency keys (the audit trail they
all append to: `promotions.audit`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.engine import UnsupportedRule
from promotions.models import (
    EXTERNAL_ID_MAX,
    TILL_CODE_MAX_LENGTH,
    TILL_CODE_PATTERN,
    ApiClient,
    Concept,
    IdempotencyKey,
    Organization,
    Promotion,
    PromotionRestriction,
    PromotionType,
    Store,
    Till,
    Zone,
)
from promotions.restrictions import RestrictionSpec
from promotions.rules import promotion_compile, unsupported_text
from promotions.signals import promotion_dates_changed
from promotions.windows import WindowRuleError, restriction_window_columns, window_rule_of
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
    default_till: Till | None = None,
    actor: Actor | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client and return it with its secret (shown once, stored only as a keyed hash).

    The hash is taken over the secret's MD5 hex digest, so a till sending the digest (Capillary's
    Basic-auth convention) and a client sending the secret itself both verify. `default_till` (of
    the same org, else ValidationError) is where its evaluations run when a request names no till.
    """
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        org=org,
        username=username,
        access=access,
        secret_hash=secret_hash_make(_md5_hex(secret)),
        token_ttl_seconds=token_ttl_seconds or settings.OAUTH_TOKEN_DEFAULT_TTL_SECONDS,
        default_till=default_till,
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


def organization_rules_version_bump(*, org: Organization | int) -> None:
    """Mark the org's promotions as changed: `rules_version` + 1 in one UPDATE (no lost bump under
    concurrency). Every write to a promotion or its limits calls it inside its transaction, so a reader
    that sees the new version sees the new rows; the evaluate endpoint caches compiled rules per
    (org, rules_version)."""
    org_id = org.pk if isinstance(org, Organization) else org
    Organization.objects.filter(pk=org_id).update(rules_version=F("rules_version") + 1)


def _org_row_lock(org_id: int) -> None:
    """Lock the org row before a promotion row, as activate and create do: the bump that ends every
    promotion write updates the org row, and taking the two locks in one order everywhere keeps two
    writes to one promotion from deadlocking. FOR NO KEY UPDATE: rows inserted meanwhile that refer
    to the org (redemptions, earned promotions) are not held up."""
    Organization.objects.select_for_update(no_key=True).filter(pk=org_id).values_list("pk").get()


def _active_promotion_count(org: Organization) -> int:
    return Promotion.objects.for_org(org).filter(active=True, end_date__gt=timezone.now()).count()


def promotion_activate(*, promotion: Promotion, actor: Actor) -> Promotion:
    """Activate a promotion org-wide.

    Errors: 706 when it has already ended; 705 when the org already has its maximum of active,
    unexpired promotions. The org row is locked so two concurrent activations cannot both take
    the last slot. Bumps the org's rules_version.
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
        organization_rules_version_bump(org=org)
        audit_event_record(
            org=org, actor=actor, action="promotion.activate", object_type="Promotion", object_id=promotion.pk
        )
    return promotion


def promotion_deactivate(*, promotion: Promotion, actor: Actor) -> Promotion:
    """Deactivate a promotion org-wide; already inactive is a no-op. Bumps the org's rules_version."""
    with transaction.atomic():
        _org_row_lock(promotion.org_id)
        promotion = Promotion.objects.select_for_update().get(pk=promotion.pk)
        if not promotion.active:
            return promotion
        promotion.active = False
        promotion.last_updated_by = actor.name
        promotion.save(update_fields=["active", "last_updated_by", "last_updated_on"])
        organization_rules_version_bump(org=promotion.org_id)
        audit_event_record(
            org=promotion.org_id,
            actor=actor,
            action="promotion.deactivate",
            object_type="Promotion",
            object_id=promotion.pk,
        )
    return promotion


# The model fields the create and update APIs (and the admin) set. `type` and `active` are set on
# create only: update refuses to change them (activate/deactivate have their own endpoints).
PROMOTION_FIELDS = (
    "name", "type", "active", "priority", "is_stackable", "start_date", "end_date", "mode", "message_label",
    "campaign_id", "condition", "action", "max_issuance_per_customer", "max_earning_per_customer",
    "earned_validity_days", "customer_activation_required", "earn_limited_to_specific_audience",
    "earning_criteria", "custom_field_values", "store_criteria", "time_criteria", "is_loyalty_only",
)  # fmt: skip
# Frozen once the promotion has started: its limits, and opt-in (Capillary: "cannot change after start").
FROZEN_WHEN_LIVE = ("max_issuance_per_customer", "max_earning_per_customer", "customer_activation_required")


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
    if action_type == "TENDER" and condition_type != "TENDER":
        # It discounts what is paid with the tenders the condition names (docs/engine.md); a TENDER
        # condition may go with any action.
        raise _bad("A TENDER action needs a TENDER condition (the tenders it discounts).")
    _validate_restrictions(promotion_type, restrictions)
    _compilable_check(fields, restrictions, existing)

    if existing is None:
        return
    if promotion_type != existing.type:
        raise _bad("type cannot be updated.")
    if fields["active"] != existing.active:
        raise _bad("active cannot be updated; use the activate and deactivate endpoints.")
    current = [RestrictionSpec.of(r) for r in existing.restrictions.all()]
    _window_schema_check(current, restrictions, live=existing.start_date <= now)
    if existing.start_date <= now:
        if not _same_restrictions(restrictions, current):
            raise _bad("promotionRestrictions cannot be changed once the promotion is live.")
        for name in FROZEN_WHEN_LIVE:
            if fields[name] != getattr(existing, name):
                raise _bad(f"{_api_name(name)} cannot be changed once the promotion is live.")


def _compilable_check(fields: dict, restrictions: list[RestrictionSpec], existing: Promotion | None) -> None:
    """The engine must be able to evaluate what would be stored: the promotion as the API would echo
    it goes through `compile_rule`; what it cannot evaluate is 400 naming the part (`path: message`),
    never stored to be silently ignored."""
    candidate = Promotion(
        id=existing.pk if existing is not None else "0" * 24,
        org_id=existing.org_id if existing is not None else None,
        **{name: value for name, value in fields.items() if name in PROMOTION_FIELDS},
    )
    try:
        promotion_compile(candidate, restrictions)
    except UnsupportedRule as error:
        raise _bad(f"Not supported by the promotion engine: {unsupported_text(error)}") from error


def _window_schema(spec: RestrictionSpec) -> tuple:
    """A limit's window fields (all but its level, kpi and amount), comparable and sortable."""
    config = json.dumps(spec.fixed_window_config, sort_keys=True)
    return (spec.window_type, spec.frequency, spec.min_time_between_repeat or -1, config)


def _restriction_key(spec: RestrictionSpec) -> tuple:
    return (spec.level, spec.kpi, *_window_schema(spec))


def _same_restrictions(left: list[RestrictionSpec], right: list[RestrictionSpec]) -> bool:
    return sorted(left, key=_restriction_key) == sorted(right, key=_restriction_key)


def _by_level_kpi(specs: list[RestrictionSpec]) -> dict[tuple[str, str], list[RestrictionSpec]]:
    grouped: dict[tuple[str, str], list[RestrictionSpec]] = defaultdict(list)
    for spec in specs:
        grouped[spec.level, spec.kpi].append(spec)
    return grouped


def _window_schema_check(current: list[RestrictionSpec], new: list[RestrictionSpec], *, live: bool) -> None:
    """1011 for a change of the window schema of a limit that exists: a CLASSIC limit becoming any
    other window (or back), a second limit (lifetime next to a window) added to a level and kpi that
    had one (Capillary allows the pair at create only), and, once the promotion is live, any change of
    a limit's windowType, frequency, minTimeBetweenRepeat or fixedWindowConfig."""
    before = _by_level_kpi(current)
    for key, specs in _by_level_kpi(new).items():
        old = before.get(key)
        if not old:
            continue
        classic_before = any(spec.window_type == "CLASSIC" for spec in old)
        if classic_before != any(spec.window_type == "CLASSIC" for spec in specs) or len(specs) > len(old):
            raise PromotionError(ErrorCode.RESTRICTION_SCHEMA_CHANGE)
        if live and sorted(map(_window_schema, old)) != sorted(map(_window_schema, specs)):
            raise PromotionError(ErrorCode.RESTRICTION_SCHEMA_CHANGE)


def _api_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _validate_restrictions(promotion_type: str, restrictions: list[RestrictionSpec]) -> None:
    Level = PromotionRestriction.Level
    levels = {spec.level for spec in restrictions}
    # Mixing first: it is about the promotion, whatever each limit's own fields say.
    kinds = {_window_kind(spec) for spec in restrictions}
    if "MOVING" in kinds and "FIXED" in kinds:
        raise _bad("promotionRestrictions: fixed and rolling windows cannot be mixed.")
    rules = {}
    for spec in restrictions:
        try:
            rules[id(spec)] = window_rule_of(spec, strict=True)
        except WindowRuleError as error:
            raise _bad(f"promotionRestrictions.{spec.level} ({spec.kpi}): {error}") from error
    for specs in _by_level_kpi(restrictions).values():
        lifetime = sum(not rules[id(spec)].resets for spec in specs)
        if len(specs) > 2 or (len(specs) == 2 and lifetime != 1):
            raise _bad(
                "promotionRestrictions: each kpi may appear once per level, or twice when one limit is "
                "lifetime and the other has a window that resets."
            )
    if promotion_type == PromotionType.CODE and Level.CODE not in levels:
        raise _bad("promotionRestrictions.Code is required for CODE promotions.")
    if promotion_type != PromotionType.CODE and Level.CODE in levels:
        raise _bad("promotionRestrictions.Code is only for CODE promotions.")
    if promotion_type not in PromotionType.EARNABLE_TYPES and Level.EARN in levels:
        raise _bad("promotionRestrictions.Earn is only for EARNING and REWARD promotions.")
    for spec in restrictions:
        if spec.level == Level.CART and (
            spec.frequency not in ("", "DOES_NOT_REPEAT") or spec.window_type not in ("", "OVERALL")
        ):
            raise _bad("promotionRestrictions.Cart limits are per transaction and cannot reset.")
        # Code and Earn limits are counted per code / per earned instance in windows like the other
        # levels (docs/code-redemption.md); a lifetime Earn limit stays on the instance's own counters.


def _window_kind(spec: RestrictionSpec) -> str:
    """FIXED or MOVING as far as mixing goes (CLASSIC cycles are fixed), from the fields as sent."""
    repeating = spec.frequency in ("DAYS", "WEEKS")
    if spec.window_type in ("FIXED", "MOVING"):
        return spec.window_type
    if spec.window_type == "CLASSIC":
        return "FIXED" if repeating else "OVERALL"
    if spec.window_type == "OVERALL":
        return "OVERALL"
    return "MOVING" if repeating else "OVERALL"


def _active_promotion_slot_take(org: Organization) -> Organization:
    """Lock the org row and refuse (705) when it already has its maximum of active promotions."""
    org = Organization.objects.select_for_update().get(pk=org.pk)
    if _active_promotion_count(org) >= org.max_active_promotions:
        raise PromotionError(ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED)
    return org


def _restrictions_store(promotion: Promotion, restrictions: list[RestrictionSpec]) -> None:
    PromotionRestriction.objects.bulk_create(
        PromotionRestriction(promotion=promotion, **asdict(spec), **restriction_window_columns(spec))
        for spec in restrictions
    )


def _name_taken(error: IntegrityError) -> bool:
    return "promotion_name_unique_per_org" in str(error) or "promotions_promotion.org_id" in str(error)


def promotion_create(
    *, org: Organization, fields: dict, restrictions: list[RestrictionSpec], actor: Actor
) -> Promotion:
    """Create a cart promotion with its limits, in one transaction.

    Errors: those of `promotion_validate`; 705 when it is created active and the org already has
    its maximum of active promotions (the org row is locked, so concurrent creates cannot both take
    the last slot); 716 when the org already has a promotion of that name. Bumps the org's
    rules_version.
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
        organization_rules_version_bump(org=org)
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
    Errors: 716 on a name clash. Bumps the org's rules_version (the org row is locked first, as
    activate does).
    """
    with transaction.atomic():
        _org_row_lock(promotion.org_id)
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
        organization_rules_version_bump(org=existing.org_id)
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


# --- Importing the store hierarchy (the import_stores command) ------------------------------------

STORE_IMPORT_KINDS = ("ZONE", "CONCEPT", "STORE", "TILL")
STORE_IMPORT_COLUMNS = ("kind", "id", "code", "name", "parent", "zone", "concept", "store")
# The columns each kind may fill (besides kind and name, which every row has).
_STORE_IMPORT_ALLOWED = {
    "ZONE": {"id", "parent"},
    "CONCEPT": {"id", "parent"},
    "STORE": {"id", "code", "parent", "zone", "concept"},
    "TILL": {"code", "store"},
}
_STORE_IMPORT_MODELS = {"ZONE": Zone, "CONCEPT": Concept, "STORE": Store}
_TILL_CODE = re.compile(TILL_CODE_PATTERN)
_POSITIVE_ID = re.compile(r"[0-9]{1,19}")


@dataclass
class StoreImportRow:
    """One row of a store-hierarchy file: its line and its cells by column name (absent: "")."""

    line: int
    cells: dict[str, str]

    def cell(self, name: str) -> str:
        return self.cells.get(name, "").strip()


@dataclass
class StoreImportOutcome:
    """What an import did: per kind, how many rows were created, updated and left unchanged; the
    rejected rows as (line, reason) in line order; whether anything was written (`committed`)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            kind: {"created": 0, "updated": 0, "unchanged": 0} for kind in STORE_IMPORT_KINDS
        }
    )
    rejects: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = True


@dataclass
class _Parsed:
    row: StoreImportRow
    kind: str
    key: int | str  # the external id (ZONE, CONCEPT, STORE) or the till code
    name: str
    code: str = ""
    parent: int | None = None
    zone: int | None = None
    concept: int | None = None
    store: int | None = None


def _store_row_parse(row: StoreImportRow) -> _Parsed | str:
    """A row checked on its own (no database): the parsed row, or why it is refused."""
    if any("\x00" in value for value in row.cells.values()):
        return "a cell holds a NUL character"
    kind = row.cell("kind").upper()
    if kind not in STORE_IMPORT_KINDS:
        return f"kind must be one of {', '.join(STORE_IMPORT_KINDS)}, not {row.cell('kind')!r}"
    misplaced = [
        name
        for name in STORE_IMPORT_COLUMNS
        if name not in ("kind", "name") and row.cell(name) and name not in _STORE_IMPORT_ALLOWED[kind]
    ]
    if misplaced:
        return f"{', '.join(misplaced)}: not a column of {kind} rows"
    name = row.cell("name")
    if not name or len(name) > 200:
        return "name is required (at most 200 characters)"
    ids: dict[str, int | None] = {}
    for column in ("id", "parent", "zone", "concept", "store"):
        text = row.cell(column)
        if not text:
            ids[column] = None
        elif _POSITIVE_ID.fullmatch(text) and 1 <= int(text) <= EXTERNAL_ID_MAX:
            ids[column] = int(text)
        else:
            return f"{column} must be a positive integer id, not {text!r}"
    code = row.cell("code")
    if kind == "TILL":
        if not _TILL_CODE.fullmatch(code) or len(code) > TILL_CODE_MAX_LENGTH:
            return (
                f"code {code!r} is not a till code: a-z first, then a-z, 0-9, '.', '_' or '-'; "
                f"3 to {TILL_CODE_MAX_LENGTH} characters"
            )
        if ids["store"] is None:
            return "store is required for a TILL"
        return _Parsed(row, kind, code, name, code=code, store=ids["store"])
    if ids["id"] is None:
        return f"id is required for a {kind}"
    if len(code) > 100:
        return "code: at most 100 characters"
    if ids["parent"] == ids["id"]:
        return f"parent {ids['parent']}: a {kind.lower()} cannot be its own parent"
    return _Parsed(
        row, kind, ids["id"], name, code=code, parent=ids["parent"], zone=ids["zone"], concept=ids["concept"]
    )


def stores_import(
    *, org: Organization, rows: Iterable[StoreImportRow], partial: bool, actor: Actor
) -> StoreImportOutcome:
    """Insert or update an org's zones, concepts, stores and tills from the rows of a file.

    Zones and concepts are upserted first, then stores, then tills, whatever the file's order; a row
    is found by its kind's key (`id` for zones, concepts and stores, `code` for tills) and gets every
    value its row gives (an empty parent, zone or concept clears it). A row is rejected, with its line
    and the reason, when it is malformed, repeats a key an earlier row of its kind gave, names a
    parent, zone, concept or store that is neither in the org nor in an accepted row of the file,
    names a parent that would make a cycle, or gives a store a code another store of the org has.
    All or nothing unless `partial`: any rejected row rolls everything back (`committed` False).
    One audit event records what the import did.
    """
    outcome = StoreImportOutcome()
    rejected: dict[int, str] = {}
    accepted: dict[str, list[_Parsed]] = {kind: [] for kind in STORE_IMPORT_KINDS}
    first_line: dict[tuple[str, int | str], int] = {}
    for row in rows:
        parsed = _store_row_parse(row)
        if isinstance(parsed, str):
            rejected[row.line] = parsed
        elif (parsed.kind, parsed.key) in first_line:
            rejected[row.line] = (
                f"{parsed.kind} {parsed.key} is already on line {first_line[(parsed.kind, parsed.key)]}"
            )
        else:
            first_line[(parsed.kind, parsed.key)] = row.line
            accepted[parsed.kind].append(parsed)

    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=org.pk)  # one import of an org at a time
        _store_import_references(org, accepted, rejected)
        pks = {kind: _store_import_nodes(org, kind, accepted, outcome) for kind in ("ZONE", "CONCEPT")}
        pks["STORE"] = _store_import_nodes(org, "STORE", accepted, outcome, pks=pks)
        _store_import_tills(org, accepted["TILL"], pks["STORE"], outcome)
        outcome.rejects = sorted(rejected.items())
        if outcome.rejects and not partial:
            transaction.set_rollback(True)
            outcome.committed = False
            return outcome
        audit_event_record(
            org=org,
            actor=actor,
            action="store_hierarchy.import",
            object_type="Organization",
            object_id=org.pk,
            data={"counts": outcome.counts, "rejected": len(outcome.rejects)},
        )
    return outcome


def _store_import_references(org: Organization, accepted: dict, rejected: dict[int, str]) -> None:
    """Reject, until none is left, the rows naming what will not exist (neither in the org nor in
    an accepted row), the parents that would close a cycle, and the store codes taken by another
    store. A rejected row can orphan others, hence the loop."""
    existing = {
        kind: dict(model.objects.for_org(org).values_list("external_id", "parent__external_id"))
        for kind, model in _STORE_IMPORT_MODELS.items()
    }
    store_codes = dict(
        Store.objects.for_org(org).exclude(code="").values_list("code", "external_id")
    )  # code -> the store holding it

    def reject(kind: str, parsed: _Parsed, reason: str) -> None:
        rejected[parsed.row.line] = reason
        accepted[kind].remove(parsed)

    while True:
        before = sum(len(rows) for rows in accepted.values())
        known = {kind: set(existing[kind]) | {p.key for p in accepted[kind]} for kind in existing}
        for kind, column, target in (
            ("ZONE", "parent", "ZONE"),
            ("CONCEPT", "parent", "CONCEPT"),
            ("STORE", "parent", "STORE"),
            ("STORE", "zone", "ZONE"),
            ("STORE", "concept", "CONCEPT"),
            ("TILL", "store", "STORE"),
        ):
            for parsed in list(accepted[kind]):
                value = getattr(parsed, column)
                if value is not None and value not in known[target]:
                    reject(kind, parsed, f"{column} {value}: no {target.lower()} of the org has this id")
        for kind in ("ZONE", "CONCEPT", "STORE"):
            # The file's parents are added in file order, each refused when the tree as built so
            # far (the org's other rows as they stand, the file's earlier rows) leads from the new
            # parent back to the row: the row closing a cycle is the one rejected.
            in_file = {p.key for p in accepted[kind]}
            parents = {key: parent for key, parent in existing[kind].items() if key not in in_file}
            for parsed in list(accepted[kind]):
                seen, current = set(), parsed.parent
                while current is not None and current != parsed.key and current not in seen:
                    seen.add(current)
                    current = parents.get(current)
                if current is not None and current == parsed.key:
                    reject(kind, parsed, f"parent {parsed.parent}: would make a cycle of {kind.lower()}s")
                else:
                    parents[parsed.key] = parsed.parent
        # A store of the file gives up its old code: only the other stores' codes are taken.
        in_file = {p.key for p in accepted["STORE"]}
        codes = {code: holder for code, holder in store_codes.items() if holder not in in_file}
        for parsed in list(accepted["STORE"]):
            holder = codes.get(parsed.code) if parsed.code else None
            if holder is not None and holder != parsed.key:
                reject("STORE", parsed, f"code {parsed.code!r}: store {holder} of the org has it")
            elif parsed.code:
                codes[parsed.code] = parsed.key
        if sum(len(rows) for rows in accepted.values()) == before:
            return


def _store_import_nodes(
    org: Organization, kind: str, accepted: dict, outcome: StoreImportOutcome, pks: dict | None = None
) -> dict[int, int]:
    """Upsert the accepted rows of one kind, then set their parents (every row exists by then);
    returns external id -> pk of the org's rows of that kind."""
    model = _STORE_IMPORT_MODELS[kind]
    rows = {row.external_id: row for row in model.objects.for_org(org)}
    created: set[int] = set()
    changed: set[int] = set()
    if kind == "STORE":
        # Codes are unique per org: the stores giving theirs up free them before any is taken.
        giving_up = [
            rows[p.key].pk for p in accepted[kind] if p.key in rows and rows[p.key].code not in ("", p.code)
        ]
        model.objects.filter(pk__in=giving_up).update(code="")
    for parsed in accepted[kind]:
        values: dict = {"name": parsed.name}
        if kind == "STORE":
            values |= {
                "code": parsed.code,
                "zone_id": pks["ZONE"][parsed.zone] if parsed.zone is not None else None,
                "concept_id": pks["CONCEPT"][parsed.concept] if parsed.concept is not None else None,
            }
        row = rows.get(parsed.key)
        if row is None:
            rows[parsed.key] = model.objects.create(org=org, external_id=parsed.key, **values)
            created.add(parsed.key)
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.save(update_fields=[*values, "updated_at"])
            changed.add(parsed.key)
    pk_of = {external_id: row.pk for external_id, row in rows.items()}
    for parsed in accepted[kind]:
        row = rows[parsed.key]
        parent_pk = pk_of[parsed.parent] if parsed.parent is not None else None
        if row.parent_id != parent_pk:
            model.objects.filter(pk=row.pk).update(parent_id=parent_pk, updated_at=timezone.now())
            row.parent_id = parent_pk
            if parsed.key not in created:
                changed.add(parsed.key)
    counts = outcome.counts[kind]
    counts["created"] += len(created)
    counts["updated"] += len(changed)
    counts["unchanged"] += len(accepted[kind]) - len(created) - len(changed)
    return pk_of


def _store_import_tills(
    org: Organization, accepted: list[_Parsed], store_pks: dict[int, int], outcome: StoreImportOutcome
) -> None:
    tills = {till.code: till for till in Till.objects.for_org(org)}
    counts = outcome.counts["TILL"]
    for parsed in accepted:
        values = {"name": parsed.name, "store_id": store_pks[parsed.store]}
        till = tills.get(parsed.code)
        if till is None:
            Till.objects.create(org=org, code=parsed.code, **values)
            counts["created"] += 1
        elif any(getattr(till, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(till, name, value)
            till.save(update_fields=[*values, "updated_at"])
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
