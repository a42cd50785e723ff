"""The README's links reach a file, and a heading of it, on GitHub and on the docs site alike;
the configuration page's generated table has every setting.

Links between the docs pages are checked by ``make docs`` (``mkdocs build --strict``); the
README is outside the site, so its links into ``docs/`` are checked here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from etl4all.settings import Settings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
HOOK = REPO / "docs" / "hooks" / "settings_table.py"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def site_slug(heading: str) -> str:
    """The anchor the docs site (Python-Markdown's toc, as MkDocs uses it) gives a heading."""
    return slugify(heading.replace("`", ""), "-")


def headings(markdown: str) -> list[str]:
    """The headings of a Markdown text, code blocks left out."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.append(match[1])
    return found


def readme_links() -> list[str]:
    return [link for link in LINK.findall(README.read_text()) if not re.match(r"\w+:", link)]


def test_the_readme_links_into_the_docs() -> None:
    assert any(link.startswith("docs/") for link in readme_links())


@pytest.mark.parametrize("link", readme_links())
def test_a_readme_link_reaches_a_file_and_its_heading(link: str) -> None:
    path, _, anchor = link.partition("#")
    target = REPO / path if path else README
    assert target.is_file(), f"README.md links to {path}, which does not exist"
    if not anchor:
        return
    titles = headings(target.read_text())
    assert anchor in {github_slug(title) for title in titles}, f"no heading #{anchor} on GitHub"
    if target != README:
        assert anchor in {site_slug(title) for title in titles}, f"no #{anchor} on the site"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("`etl4all check`: are the backends ready?", "etl4all-check-are-the-backends-ready"),
        ("Operators' tour", "operators-tour"),
        ("Input: data_points files", "input-data_points-files"),
    ],
)
def test_both_slugs_follow_their_renderer(heading: str, anchor: str) -> None:
    assert github_slug(heading) == site_slug(heading) == anchor


def settings_table() -> str:
    """The configuration page's table, as the docs hook renders it."""
    spec = importlib.util.spec_from_file_location("settings_table", HOOK)
    assert spec and spec.loader
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return str(hook.settings_table())


def test_the_configuration_page_has_a_row_for_every_setting() -> None:
    rows = {row.split(" | ")[0].strip("| `"): row for row in settings_table().splitlines()[2:]}
    assert set(rows) == {field.name for field in dataclasses.fields(Settings)}
    assert "`GOOGLE_MAPS_API_KEY` | `--google-key`" in rows["google_key"]
    assert (
        "`ETL4ALL_WAREHOUSE_URL` | `--warehouse` | `duckdb:///etl4all.duckdb`"
        in rows["warehouse_url"]
    )
    assert "a flag only" in rows["accept_shrink"]
    assert "street_address|route" in rows["result_type"]  # a pipe inside code stays one cell
    assert all(row.count(" | ") == 4 for row in rows.values())
