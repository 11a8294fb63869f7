"""Promo codes of CODE promotions in bulk: generation (`spec` says what a code looks like and draws
codes; `services` writes them set-based, in chunks, resumable), CSV upload and CSV export.
docs/codes.md describes the rules."""
