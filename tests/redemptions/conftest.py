"""Shared setup for the redemption tests: a customer holding an issued CUSTOMER promotion, and a POS one."""

from __future__ import annotations

import pytest

from tests.factories import CustomerFactory, EarnedPromotionFactory, PromotionFactory


@pytest.fixture
def customer(org):
    return CustomerFactory(org=org, mobile="919800000001")


@pytest.fixture
def wallet_promotion(org):
    return PromotionFactory(org=org, type="CUSTOMER")


@pytest.fixture
def pos_promotion(org):
    return PromotionFactory(org=org, type="POS")


@pytest.fixture
def instance(org, customer, wallet_promotion):
    return EarnedPromotionFactory(org=org, customer=customer, promotion=wallet_promotion)
