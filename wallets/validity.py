"""When an issued or earned promotion stops being redeemable (its "validTill")."""

from __future__ import annotations

import datetime as dt

from promotions.models import Organization, Promotion


def end_of_day(moment: dt.datetime, org: Organization) -> dt.datetime:
    """23:59:59.999 of `moment`'s day in the org's time zone."""
    local = moment.astimezone(org.tz)
    return local.replace(hour=23, minute=59, second=59, microsecond=999000)


def issued_valid_till(promotion: Promotion) -> dt.datetime:
    """An issued instance is valid until the promotion ends."""
    return promotion.end_date


def earned_valid_till(promotion: Promotion, org: Organization, event_time: dt.datetime) -> dt.datetime:
    """An earned instance: `min(endDate, end of day (org zone) of eventTime + N days)` when the
    promotion has earned-validity days, else the promotion's end."""
    if not promotion.earned_validity_days:
        return promotion.end_date
    return min(
        promotion.end_date, end_of_day(event_time + dt.timedelta(days=promotion.earned_validity_days), org)
    )
