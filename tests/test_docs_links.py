"""The documentation's links hold: README/docs links reach real files and headings, and code cites real docs.

Anchors follow GitHub's heading slugs: lower case, punctuation removed, spaces turned into ``-``,
repeated headings numbered ``-1``, ``-2``, ...
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.markdown import FENCE, anchors, github_slug

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
CODE_FILES = sorted((ROOT / "kds").rglob("*.py"))

INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
CODE_DOC_REF = re.compile(r"docs/[\w./-]+\.md(?:#[\w-]+)?")

# The docs pages the code cites; each must exist (they are the code's contract with its users).
CITED_BY_CODE = [
    "api.md",
    "security.md",
    "operations.md",
    "cli.md",
    "configuration.md",
    "audit.md",
    "validate-infra.md",
    "deployment.md",
    "development.md",
    "scaling.md",
]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(INLINE_CODE.sub("", line))
    return lines


def relative_links(path: Path) -> list[str]:
    return [
        target
        for line in prose_lines(path.read_text(encoding="utf-8"))
        for target in LINK.findall(line)
        if not EXTERNAL.match(target)
    ]


def broken(base: Path, target: str) -> str | None:
    """Why ``target`` (relative to ``base``'s folder, or to ``base`` itself for ``#anchor``) is broken."""
    file_part, _, anchor = target.partition("#")
    destination = (base.parent / file_part).resolve() if file_part else base
    if not destination.exists():
        shown = destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination
        return f"{target}: no such file {shown}"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"{target}: no heading #{anchor} in {destination.relative_to(ROOT)}"
    return None


def test_the_docs_folder_holds_the_reference() -> None:
    assert {p.name for p in (ROOT / "docs").glob("*.md")} >= {"index.md", "benchmarks.md", *CITED_BY_CODE}


@pytest.mark.parametrize("page", [*CITED_BY_CODE, "benchmarks.md"])
def test_the_docs_index_and_the_readme_link_every_page(page: str) -> None:
    assert page in relative_links(ROOT / "docs" / "index.md")
    assert f"docs/{page}" in relative_links(ROOT / "README.md")


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(path: Path) -> None:
    links = relative_links(path)
    assert links, f"{path.name} links nowhere"
    assert [reason for target in links if (reason := broken(path, target))] == []


def test_every_docs_page_the_code_cites_exists() -> None:
    cited = {
        (code.relative_to(ROOT).as_posix(), ref)
        for code in CODE_FILES
        for ref in CODE_DOC_REF.findall(code.read_text(encoding="utf-8"))
    }
    problems = [f"{where}: {reason}" for where, ref in sorted(cited) if (reason := broken(ROOT / "README.md", ref))]
    assert problems == []


def test_the_docs_name_no_outside_contract() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in DOC_FILES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bSPEC\b", line)
    ]
    assert offenders == []


def test_the_readme_stays_a_front_door() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("`kds incidents`", "kds-incidents"),
        ("What happens on SIGTERM (or SIGINT)", "what-happens-on-sigterm-or-sigint"),
        ("Where the bars are missed, and what would close them", "where-the-bars-are-missed-and-what-would-close-them"),
        ("Rotation, bad files, secrecy", "rotation-bad-files-secrecy"),
        ("snake_case and dash-case", "snake_case-and-dash-case"),
    ],
)
def test_github_slug(text: str, slug: str) -> None:
    assert github_slug(text) == slug
