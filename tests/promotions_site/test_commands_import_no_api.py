"""Management commands sit beside the API layer, not on top of it: loading every command of the apps
imports no `apis` module (a parsing helper a command needs lives in a low module, e.g.
`wallets.identifiers.parse_long_id`)."""

from __future__ import annotations

import os
import subprocess
import sys

APPS = ("promotions", "wallets", "redemptions", "promotions_site")

# A fresh interpreter: the test process has long imported every view through the URL configuration.
PROBE = f"""
import sys
import django
from django.core.management import get_commands, load_command_class

django.setup()
for name, app in get_commands().items():
    if app in {APPS!r}:
        load_command_class(app, name)
print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0] in {APPS!r} and "apis" in m.split("."))))
"""


def test_loading_every_command_imports_no_api_module():
    # when
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "promotions_site.settings"},
        check=True,
    )
    # then
    assert result.stdout.split() == []
