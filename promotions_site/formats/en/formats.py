"""The site's English date formats (FORMAT_MODULE_PATH): a moment is written year first, to the
minute, with its zone's abbreviation (`2026-12-03 19:45 CET`): admin pages run in the org's zone
(promotions_site/admin_format.py), and a time without its zone is ambiguous. Other formats are
Django's own for English."""

DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
