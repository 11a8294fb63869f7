"""What every marketer page is held to in the browser tests, at 1280 px: no horizontal overflow (the page
no wider than the window, no table wider than its box), no accessibility violation axe-core rates
"serious" or "critical", and a viewport screenshot: into test-output/, or with SCREENSHOTS=docs into the
marketer guide's docs/img/ (a plain test run leaves the checkout as it was).

axe-core comes from the `axe-playwright-python` dev dependency, which ships axe-core's own
`axe.min.js` (MPL-2.0, its licence header intact) inside the wheel: CI installs it with
`pip install -e '.[dev]'`, no npm step and nothing fetched at run time. Only that file is used, injected
with `page.add_script_tag`; the package's Python wrapper is not."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tests.browser.chromium import OUTPUT, _unavailable

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
WIDTH = 1280
IMPACTS_REFUSED = ("serious", "critical")

# The tables wider than the box holding them: [table id or class, table width, box width].
BOXES_OVERFLOWING = """() => Array.from(document.querySelectorAll('#content table')).filter(
    t => t.offsetParent !== null
).map(t => [t.id || t.className || t.parentElement.className, t.scrollWidth, t.parentElement.clientWidth]
).filter(([, table, box]) => table > box + 1)"""

# The serious and critical violations, each as "rule (impact): selector, selector, ...".
AXE_RUN = """async (impacts) => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations.filter(v => impacts.includes(v.impact)).map(
        v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`
    );
}"""


def axe_path() -> Path:
    """axe-core's `axe.min.js`, as the `axe-playwright-python` wheel ships it."""
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None or not spec.submodule_search_locations:
        _unavailable("axe-playwright-python (axe-core) is not installed (`make install` installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "axe.min.js"
    assert path.read_text()[:40].startswith("/*! axe v4"), f"{path} is not axe-core"
    return path


def overflow(page) -> dict:
    """What is too wide on the page shown: {"page": [scrollWidth, clientWidth]} and/or {"boxes": [...]}."""
    found = {}
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if widths[0] > widths[1]:
        found["page"] = widths
    boxes = page.evaluate(BOXES_OVERFLOWING)
    if boxes:
        found["boxes"] = boxes
    return found


def axe_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page shown."""
    page.add_script_tag(path=str(axe_path()))
    return page.evaluate(AXE_RUN, list(IMPACTS_REFUSED))


def page_problems(page, name: str | None = None, anchor: str | None = None) -> dict:
    """Overflow and axe's serious violations of the page shown ({} when none), saving its screenshot
    (the viewport, not the whole page: small files) as <name>.png when `name` is given, scrolled so that
    the element `anchor` (a selector) is at the top: in docs/img/ with SCREENSHOTS=docs, else in
    test-output/."""
    problems = overflow(page)
    violations = axe_violations(page)
    if violations:
        problems["axe"] = violations
    if name:
        if anchor:
            page.locator(anchor).evaluate("el => el.scrollIntoView({block: 'start'})")
        directory = IMAGES if os.environ.get("SCREENSHOTS") == "docs" else OUTPUT
        directory.mkdir(exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"))
    return problems


def login(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the admin's login form."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
