"""Writes to customers and their wallets (being split by concern in the next commit)."""

from wallets.services.customer_import import *  # noqa: F403
