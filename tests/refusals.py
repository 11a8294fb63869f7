"""Asks the database itself: is a write refused by a constraint?"""

from __future__ import annotations

from django.db import IntegrityError, transaction


def refused(make) -> bool:
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False
