"""The docs: every relative link in docs/*.md points to a file that exists, and
docs/compression.md's table says what negotiate() answers. (That the API reference
builds: tests/system/test_api_reference.py.)"""

import re
from pathlib import Path

import pytest

from mummy.core.compression import negotiate

DOCS = Path(__file__).resolve().parents[2] / "docs"

# [text](target) and ![alt](target); a target may be followed by a "title".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def relative_links(text: str) -> list[str]:
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor in the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_there_are_docs_to_check() -> None:
    names = {p.name for p in markdown_files()}
    assert {"getting-started.md", "threading-model.md", "deployment.md"} <= names


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: p.name)
def test_relative_links_point_to_files(page: Path) -> None:
    broken = [t for t in relative_links(page.read_text()) if not (page.parent / t).exists()]
    assert not broken, f"{page.name} links to missing files: {broken}"


def test_link_finder() -> None:
    text = '[a](x.md) ![b](img/c.png "t") [u](https://e.org) [s](#top) `[n](no.md)`\n'
    text += "```\n[f](fenced.md)\n```\n[d](y.md#part)"
    assert relative_links(text) == ["x.md", "img/c.png", "y.md"]


def test_client_encoding_table_matches_negotiate() -> None:
    """docs/compression.md says which coding each client gets: check every row."""
    text = (DOCS / "compression.md").read_text()
    section = text.split("## Which encoding each client gets", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert len(rows) >= 8
    for row in rows:
        client, sent, answer = (cell.strip() for cell in row.strip("|").split("|"))
        header = None if sent == "(none)" else INLINE_CODE.findall(sent)[0].strip("`")
        expected = answer.strip("`")
        assert negotiate(header) == expected, f"{client}: {header!r} gets {negotiate(header)}"
