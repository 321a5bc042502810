"""The README's promise: CI runs the very test command the README prints."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert len(block) == 2, "the quick start is exactly two commands"
    test_command = block[1].strip()
    assert test_command.startswith("uv run pytest")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci


def test_the_readme_lists_every_docs_page_and_each_exists():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`docs/pages/([\w-]+\.md)`", readme))
    pages = {p.name for p in (ROOT / "docs" / "pages").glob("*.md")} - {"index.md"}
    assert named == pages, named ^ pages
    nav = (ROOT / "docs" / "mkdocs.yml").read_text()
    assert all(f": {page}" in nav for page in pages | {"index.md"})
    assert "mkdocs build --strict -f docs/mkdocs.yml" in (ROOT / ".ci" / "run").read_text()
