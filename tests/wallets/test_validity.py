"""validTill of issued and earned instances, checked against Capillary's own examples."""

from __future__ import annotations

import datetime as dt

from promotions.models import Organization, Promotion
from promotions_site.timefmt import from_epoch_ms, to_epoch_ms
from wallets.validity import earned_valid_till, end_of_day, issued_valid_till

IST = Organization(id=1, name="India", timezone="Asia/Kolkata")


def promotion(end_ms: int, days: int | None = None) -> Promotion:
    return Promotion(end_date=from_epoch_ms(end_ms), earned_validity_days=days)


def test_issued_instance_lives_until_the_promotion_ends():
    # the issueBulk example: issued 2025-05-13, valid till 2025-05-31 23:59:59.999 IST
    assert to_epoch_ms(issued_valid_till(promotion(1748716199999))) == 1748716199999


def test_earned_without_validity_days_lives_until_the_promotion_ends():
    # the earn/bulk example: earned 2025-10-29, valid till 2025-12-31 23:59:59.999 IST
    end = promotion(1767205799999)
    assert to_epoch_ms(earned_valid_till(end, IST, from_epoch_ms(1761750000000))) == 1767205799999


def test_earned_with_validity_days_ends_at_end_of_day_in_org_zone():
    # given: earned at 2025-10-29T15:00Z (20:30 IST), valid 7 days
    event = from_epoch_ms(1761750000000)
    # when
    till = earned_valid_till(promotion(1767205799999, days=7), IST, event)
    # then: 2025-11-05 23:59:59.999 IST
    assert till == dt.datetime(2025, 11, 5, 23, 59, 59, 999000, tzinfo=IST.tz)


def test_earned_validity_is_capped_by_the_promotion_end():
    event = from_epoch_ms(1767000000000)  # 2025-12-29
    assert to_epoch_ms(earned_valid_till(promotion(1767205799999, days=30), IST, event)) == 1767205799999


def test_end_of_day_crosses_the_utc_date_line():
    # 2025-10-29T20:00Z is already 2025-10-30 01:30 in India
    moment = dt.datetime(2025, 10, 29, 20, 0, tzinfo=dt.UTC)
    assert end_of_day(moment, IST).date() == dt.date(2025, 10, 30)
