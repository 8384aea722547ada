"""The docs: the API reference builds (ci/docs.py, pdoc) and names everything in
`mummy.__all__`; every relative link in docs/*.md points to a file that exists."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mummy
from mummy.core.compression import negotiate

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
GIL_PYTHON = REPO / ".venv-gil/bin/python"

# [text](target) and ![alt](target); a target may be followed by a "title".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def pdoc_python() -> str:
    """pdoc is installed in .venv-gil only (ci/requirements-lint.txt); use this interpreter
    when it has pdoc itself."""
    if importlib.util.find_spec("pdoc") is not None:
        return sys.executable
    return str(GIL_PYTHON)


def test_api_reference_names_every_public_name(tmp_path: Path) -> None:
    python = pdoc_python()
    assert Path(python).exists(), f"{python} is missing: run ./ci/test to provision .venv-gil"
    # ci/test sets PYTHON_GIL=0 for the free-threaded run; the GIL build refuses to start
    # with it, and it says nothing about the docs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    done = subprocess.run(
        [python, str(REPO / "ci/docs.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "mummy.html").read_text()
    assert (tmp_path / "index.html").exists()
    missing = []
    for name in mummy.__all__:
        if isinstance(getattr(mummy, name), type(mummy)):
            if not (tmp_path / "mummy" / f"{name}.html").exists():
                missing.append(f"module {name} (mummy/{name}.html)")
        elif f'id="{name}"' not in page:
            missing.append(name)
    assert not missing, f"not in the API reference: {missing}"
    assert not (tmp_path / "mummy" / "core.html").exists(), "mummy.core is not public"


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
