#!/usr/bin/env python3
"""Build the API reference from mummy's docstrings with pdoc, into docs/api/ (git-ignored).

    .venv-gil/bin/python ci/docs.py                 # then open docs/api/index.html
    .venv-gil/bin/python ci/docs.py --out /tmp/api

Documents the public API only: `mummy` (what `import mummy` gives, by its `__all__`) and
its public modules; `mummy.core` (the engine) and `mummy.__main__` (the CLI) are left out.
pdoc is pure Python, pinned in ci/requirements-lint.txt (.venv-gil gets it; .venv-ft only
when no GIL build is given).
pdoc's warnings (an annotation it cannot evaluate, say) are printed, and do not fail the build.
"""

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXCLUDED = ("!mummy.core", "!mummy.__main__")


def build(out: Path) -> list[str]:
    """Write the HTML into `out`; returns pdoc's warnings."""
    sys.path.insert(0, str(REPO))  # the work tree's mummy, whatever is installed
    import pdoc
    import pdoc.render

    pdoc.render.configure(
        docformat="restructuredtext",
        footer_text="mummy: a multi-threaded HTTP/1.1 server for free-threaded Python",
        search=True,
        show_source=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc("mummy", *EXCLUDED, output_directory=out)
    return list(dict.fromkeys(str(w.message) for w in caught))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs/api", help="(docs/api)")
    args = parser.parse_args()
    try:
        notes = build(args.out)
    except ImportError as exc:
        sys.exit(f"{exc}: install pdoc from ci/requirements-lint.txt (./ci/provision does)")
    for note in notes:
        print(f"pdoc warning: {note}", file=sys.stderr)
    print(f"wrote {args.out / 'index.html'}")


if __name__ == "__main__":
    main()
