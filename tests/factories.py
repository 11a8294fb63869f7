"""factory_boy factories for every model. API clients go through the real service."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import factory
from django.utils import timezone

from promotions.models import (
    ApiClient,
    AuditEvent,
    Concept,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    PromoCode,
    PromoCodeBatch,
    Promotion,
    PromotionRestriction,
    PromotionType,
    Store,
    Till,
    User,
    Zone,
)
from promotions.services import api_client_create
from promotions.windows import restriction_window_columns
from redemptions.models import (
    CartLock,
    Evaluation,
    Redemption,
    RedemptionCounter,
    RedemptionDay,
    RedemptionLine,
    RedemptionPromotion,
    RedemptionReversal,
)
from wallets.models import (
    BulkJob,
    BulkJobItem,
    Customer,
    EarnedPromotion,
    Issual,
    LoyaltyEarnedPromotion,
    PromotionActivation,
    PromotionTally,
)

_org_ids = itertools.count(200001)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    id = factory.LazyFunction(lambda: next(_org_ids))
    name = factory.Sequence(lambda n: f"Org {n}")
    timezone = "Asia/Kolkata"


class ApiClientFactory:
    """Creates a client through `api_client_create` and keeps its secret as `plain_secret`."""

    _seq = itertools.count(1)

    def __new__(cls, org=None, access="WRITE", username=None, secret=None, **kwargs):
        org = org or OrganizationFactory()
        client, plain = api_client_create(
            org=org, username=username or f"till.{next(cls._seq)}", access=access, secret=secret, **kwargs
        )
        client.plain_secret = plain
        return client


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    org = factory.SubFactory(OrganizationFactory)
    password = factory.django.Password("pass-word-123")


_external_ids = itertools.count(75175598)


class ZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Zone

    org = factory.SubFactory(OrganizationFactory)
    external_id = factory.LazyFunction(lambda: next(_external_ids))
    name = factory.Sequence(lambda n: f"Zone {n}")


class ConceptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Concept

    org = factory.SubFactory(OrganizationFactory)
    external_id = factory.LazyFunction(lambda: next(_external_ids))
    name = factory.Sequence(lambda n: f"Concept {n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    org = factory.SubFactory(OrganizationFactory)
    external_id = factory.LazyFunction(lambda: next(_external_ids))
    name = factory.Sequence(lambda n: f"Store {n}")


class TillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Till

    org = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"till.{n:03d}")
    name = factory.Sequence(lambda n: f"Till {n}")
    store = factory.SubFactory(StoreFactory, org=factory.SelfAttribute("..org"))


class PromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Promotion

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Promotion {n}")
    type = PromotionType.CUSTOMER
    start_date = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    end_date = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    condition = factory.LazyFunction(
        lambda: {
            "type": "CART",
            "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 100},
        }
    )
    action = factory.LazyFunction(
        lambda: {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 10}}
    )


class PromotionRestrictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromotionRestriction

    promotion = factory.SubFactory(PromotionFactory)
    level = PromotionRestriction.Level.PROMOTION
    kpi = PromotionRestriction.Kpi.REDEMPTION
    limit = Decimal(10)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # The resolved window, as the service writes it with the four window fields.
        row = model_class(*args, **kwargs)
        if "window_kind" not in kwargs:
            for name, value in restriction_window_columns(row).items():
                setattr(row, name, value)
        row.save()
        return row


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    org = factory.SubFactory(OrganizationFactory)
    mobile = factory.Sequence(lambda n: f"9190{n:08d}")
    email = factory.Sequence(lambda n: f"c{n}@example.com")
    external_id = factory.Sequence(lambda n: f"EXT{n}")
    first_name = "Asha"
    last_name = "Rao"


class EarnedPromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EarnedPromotion

    org = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory, org=factory.SelfAttribute("..org"))
    promotion = factory.SubFactory(PromotionFactory, org=factory.SelfAttribute("..org"))
    kind = EarnedPromotion.Kind.ISSUED
    earned_from_type = EarnedPromotion.EarnedFromType.BULK_ISSUE
    earned_from_id = factory.Sequence(lambda n: f"context-{n}")
    event_time = factory.LazyFunction(timezone.now)
    valid_till = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))
    # As issueBulk writes it: an issued EARNING instance is LOCKED until earned.
    locked = factory.LazyAttribute(
        lambda o: o.kind == EarnedPromotion.Kind.ISSUED and o.promotion.type == PromotionType.EARNING
    )


class PromotionActivationFactory(factory.django.DjangoModelFactory):
    """A customer's activation of a promotion requiring it (per customer; pass earned_promotion for one
    instance)."""

    class Meta:
        model = PromotionActivation

    org = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory, org=factory.SelfAttribute("..org"))
    promotion = factory.SubFactory(
        PromotionFactory, org=factory.SelfAttribute("..org"), customer_activation_required=True
    )


class RedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Redemption

    org = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory, org=factory.SelfAttribute("..org"))
    transaction_identifier = factory.Sequence(lambda n: f"TXN-{n}")
    transaction_number = factory.Sequence(lambda n: f"BILL-{n}")
    transaction_date = factory.LazyFunction(timezone.now)
    amount = Decimal("1000")
    request_fingerprint = "0" * 64


class RedemptionLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedemptionLine
        skip_postgeneration_save = True

    redemption = factory.SubFactory(RedemptionFactory)
    level = RedemptionLine.Level.LINE_ITEM
    position = factory.Sequence(lambda n: n)
    promotion = factory.SubFactory(PromotionFactory, org=factory.SelfAttribute("..redemption.org"))
    redemption_count = 1
    discount = Decimal("10")
    discount_applied_on_quantity = Decimal(1)
    promotion_applied_on_quantity = Decimal(1)

    @factory.post_generation
    def promotion_redeemed(line, create, extracted, **kwargs):
        """The row `redemption_record` writes with the lines: the promotion, once per transaction."""
        if create:
            RedemptionPromotion.objects.get_or_create(
                redemption=line.redemption,
                promotion=line.promotion,
                defaults={"transaction_date": line.redemption.transaction_date},
            )


class RedemptionReversalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedemptionReversal

    redemption = factory.SubFactory(RedemptionFactory)
    org = factory.SelfAttribute("redemption.org")


class EvaluationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Evaluation

    org = factory.SubFactory(OrganizationFactory)
    request = factory.LazyFunction(
        lambda: {"amount": "100", "cartItems": [{"sku": "A", "amount": "100", "qty": "1"}]}
    )
    amount = Decimal(100)


class CartLockFactory(factory.django.DjangoModelFactory):
    """An open cart (cart locks) of a customer, reserving nothing, for the next hour."""

    class Meta:
        model = CartLock

    org = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory, org=factory.SelfAttribute("..org"))
    evaluation = factory.SubFactory(
        EvaluationFactory, org=factory.SelfAttribute("..org"), customer=factory.SelfAttribute("..customer")
    )
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda lock: lock.created_at + dt.timedelta(hours=1))


class RedemptionCounterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedemptionCounter

    restriction = factory.SubFactory(PromotionRestrictionFactory)
    org = factory.SelfAttribute("restriction.promotion.org")
    limit = factory.SelfAttribute("restriction.limit")


class LoyaltyProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoyaltyProgram

    org = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Program {n}")


class LoyaltyPromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoyaltyPromotion

    org = factory.SubFactory(OrganizationFactory)
    program = factory.SubFactory(LoyaltyProgramFactory, org=factory.SelfAttribute("..org"))
    name = factory.Sequence(lambda n: f"Loyalty promotion {n}")
    start_date = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    end_date = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))


class IssualFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issual

    org = factory.SubFactory(OrganizationFactory)
    customer = factory.SubFactory(CustomerFactory, org=factory.SelfAttribute("..org"))
    loyalty_promotion = factory.SubFactory(LoyaltyPromotionFactory, org=factory.SelfAttribute("..org"))
    program = factory.SelfAttribute("loyalty_promotion.program")
    source = "INSTORE"


class LoyaltyEarnedPromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoyaltyEarnedPromotion

    org = factory.SubFactory(OrganizationFactory)
    issual = factory.SubFactory(IssualFactory, org=factory.SelfAttribute("..org"))
    customer = factory.SelfAttribute("issual.customer")
    loyalty_promotion = factory.SelfAttribute("issual.loyalty_promotion")


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    org = factory.SubFactory(OrganizationFactory)
    actor_type = AuditEvent.ActorType.SYSTEM
    action = "test.event"
    object_type = "Test"


class BulkJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BulkJob

    org = factory.SubFactory(OrganizationFactory)
    kind = BulkJob.Kind.ISSUE
    promotion = factory.SubFactory(PromotionFactory, org=factory.SelfAttribute("..org"))
    params = factory.LazyFunction(lambda: {"contextId": "job"})


class BulkJobItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BulkJobItem

    job = factory.SubFactory(BulkJobFactory)
    line = factory.Sequence(lambda n: n + 1)
    identifier = "1"


_code_seq = itertools.count(1)


def make_in_org(model, org):
    """One row of `model` belonging to `org` (for the tests that cover every model)."""
    makers = {
        Organization: lambda: org,
        User: lambda: UserFactory(org=org),
        ApiClient: lambda: ApiClientFactory(org=org),
        Promotion: lambda: PromotionFactory(org=org),
        LoyaltyProgram: lambda: LoyaltyProgramFactory(org=org),
        LoyaltyPromotion: lambda: LoyaltyPromotionFactory(org=org),
        AuditEvent: lambda: AuditEventFactory(org=org),
        Customer: lambda: CustomerFactory(org=org),
        EarnedPromotion: lambda: EarnedPromotionFactory(org=org),
        Issual: lambda: IssualFactory(org=org),
        LoyaltyEarnedPromotion: lambda: LoyaltyEarnedPromotionFactory(org=org),
        Redemption: lambda: RedemptionFactory(org=org),
        RedemptionLine: lambda: RedemptionLineFactory(redemption__org=org),
        RedemptionReversal: lambda: RedemptionReversalFactory(redemption__org=org),
        RedemptionCounter: lambda: RedemptionCounterFactory(restriction__promotion__org=org),
        Evaluation: lambda: EvaluationFactory(org=org),
        CartLock: lambda: CartLockFactory(org=org),
        BulkJob: lambda: BulkJobFactory(org=org),
        PromotionTally: lambda: PromotionTally.objects.create(org=org, promotion=PromotionFactory(org=org)),
        RedemptionDay: lambda: RedemptionDay.objects.create(org=org, day=dt.date(2025, 1, 1)),
        BulkJobItem: lambda: BulkJobItemFactory(job__org=org),
        Zone: lambda: ZoneFactory(org=org),
        Concept: lambda: ConceptFactory(org=org),
        Store: lambda: StoreFactory(org=org),
        Till: lambda: TillFactory(org=org),
        PromotionActivation: lambda: PromotionActivationFactory(org=org),
        PromoCode: lambda: PromoCode.objects.create(
            org=org, promotion=PromotionFactory(org=org, type="CODE"), code=f"ORG{org.pk}X{next(_code_seq)}"
        ),
        PromoCodeBatch: lambda: PromoCodeBatch.objects.create(
            org=org,
            promotion=PromotionFactory(org=org, type="CODE"),
            kind="UPLOAD",
            request_id=f"req-{next(_code_seq)}",
        ),
    }
    if model not in makers:
        raise LookupError(f"no factory for {model._meta.label}: add one to tests/factories.py::make_in_org")
    return makers[model]()
