"""What the catalogue announces to the apps built on it. It never imports them: they listen.

Receivers are connected in their app's `AppConfig.ready`, run inside the sender's transaction, and
an exception from one rolls the sender's write back with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# `promotion_update` sends it, with the promotion row locked, when the end date or the earned-validity
# days changed: instances that took their validTill from them must follow. Keyword `promotion` (the
# updated row); each receiver returns how many of its rows it re-dated, for the audit event.
promotion_dates_changed = Signal()
