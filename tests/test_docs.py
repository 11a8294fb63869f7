"""The documentation: the MkDocs site builds strictly, the README stays short, and every link and every
repository path the README and docs/ name exists, so a renamed module or a moved page fails the suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
DOCUMENTS = [ROOT / "README.md", *PAGES]
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A repository path as the docs write it in code: `bench/redeem.py`, `tests/faults/`, `Makefile`.
REPO_PATH = re.compile(
    r"^(?:(?:promotions_site|promotions|wallets|redemptions|tests|bench|templates|docs|\.ci)/[\w./-]*"
    r"|Makefile|pyproject\.toml|mkdocs\.yml|README\.md|manage\.py)$"
)
# Paths the docs describe that the refactoring under way is creating. Empty this once they exist.
PENDING_PATHS: set[str] = set()


def _prose(document: Path) -> str:
    """The document without its fenced blocks (shell examples and diagrams are not links)."""
    return FENCE.sub("", document.read_text(encoding="utf-8"))


def _name(document: Path) -> str:
    return str(document.relative_to(ROOT))


def test_readme_stays_a_screen_or_two():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move the detail into docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_relative_links_point_at_existing_files(document):
    # given the links of a document that stay inside the repository
    targets = [t for t in LINK.findall(_prose(document)) if not re.match(r"^(?:[a-z]+:|#)", t)]

    # then each names a file that exists
    missing = [t for t in targets if not (document.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{_name(document)} links to missing files: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_repository_paths_named_in_code_exist(document):
    named = {span for span in CODE_SPAN.findall(_prose(document)) if REPO_PATH.match(span)}
    missing = sorted(path for path in named - PENDING_PATHS if not (ROOT / path).exists())
    assert not missing, f"{_name(document)} names paths that do not exist: {missing}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built as `make docs` builds it: strict, so a broken link, anchor or page fails."""
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    return out, result


def test_site_builds_strictly(site):
    out, result = site
    assert result.returncode == 0, result.stdout + result.stderr
    for page in PAGES:
        built = page.relative_to(ROOT / "docs").with_suffix("")
        index = out / ("index.html" if built.name == "index" else built / "index.html")
        assert index.exists(), f"{page.name} was not built"


def test_mermaid_diagrams_reach_the_page_as_the_theme_renders_them(site):
    # given the architecture page's diagrams (Material loads Mermaid when the page is viewed and draws
    # every <pre class="mermaid"> block; a diagram left as a highlighted code block shows as text)
    diagrams = re.findall(
        r"^```mermaid\n(.*?)^```", (ROOT / "docs" / "architecture.md").read_text(), re.M | re.S
    )
    # A `;` ends a Mermaid statement: inside a message or note it breaks the diagram in the browser.
    assert not [line for diagram in diagrams for line in diagram.splitlines() if ";" in line]
    out, result = site
    assert result.returncode == 0, result.stdout + result.stderr

    # then each is a mermaid block in the built page
    html = (out / "architecture" / "index.html").read_text()
    assert len(diagrams) >= 4
    assert html.count('<pre class="mermaid"><code>') == len(diagrams)
