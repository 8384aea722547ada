"""`StaticFiles`: a handler that serves a directory, and never anything outside it.

>>> router.get("/static/**", mummy.StaticFiles("public", prefix="/static/"))

What it refuses, with a 404 (the same answer as a missing file, so nothing about the
tree outside leaks): encoded slashes and backslashes (`%2f`, `%5c`) and NUL in the
raw target, backslashes, empty, `.` and `..` segments, dotfiles and dot-directories
(unless `dotfiles=True`), and any path whose real path (symlinks resolved) is not
inside the root. Invalid percent-encoding and UTF-8 (overlong forms included) are
answered 400 before any handler runs.
"""

from __future__ import annotations

import os

from mummy.errors import MummyError
from mummy.request import Request

__all__ = ["StaticFiles"]

_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_FORBIDDEN_ESCAPES = ("%2f", "%5c", "%00")


class StaticFiles:
    """Serve `request.path` minus `prefix` from `directory`, with `respond_file`
    (validators, Range, precompressed `.zst`/`.gz` siblings). GET and HEAD only
    (others: 405 with `Allow`); a directory serves its `index` when it has one,
    else 404 (no listings). Read-only after `__init__`: one instance serves every
    worker."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "/",
        index: str | None = "index.html",
        dotfiles: bool = False,
    ) -> None:
        root = os.path.realpath(os.fspath(directory))
        if not os.path.isdir(root):
            raise MummyError(f"StaticFiles: {os.fspath(directory)!r} is not a directory")
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise MummyError(f"StaticFiles: prefix must start and end with '/', got {prefix!r}")
        if index is not None and (not index or "/" in index or index in (".", "..")):
            raise MummyError(f"StaticFiles: index must be a file name (or None), got {index!r}")
        self.directory = root
        self.prefix = prefix
        self.index = index
        self.dotfiles = bool(dotfiles)

    def __call__(self, request: Request) -> None:
        if request.method not in ("GET", "HEAD"):
            request.respond(405, {**_TEXT, "Allow": "GET, HEAD"}, "Method Not Allowed\n")
            return
        path = self.resolve(request.uri, request.path)
        if path is None:
            request.respond(404, _TEXT, "Not Found\n")
            return
        request._send_file(path, None, self.servable)

    def inside(self, path: str) -> bool:
        """Whether the real path of `path` is the root or under it."""
        real = os.path.realpath(path)
        return real == self.directory or real.startswith(self.directory + os.sep)

    def servable(self, path: str) -> bool:
        """Inside the root, and (unless `dotfiles`) no dot segment in its real path,
        the test for the path served and for each precompressed sibling (a symlink
        inside the root may still name a dotfile: link -> .env)."""
        if not self.inside(path):
            return False
        if self.dotfiles:
            return True
        relative = os.path.relpath(os.path.realpath(path), self.directory)
        return relative == "." or not any(p.startswith(".") for p in relative.split(os.sep))

    def resolve(self, uri: str, path: str) -> str | None:
        """The real path to serve for a request (`uri` raw, `path` decoded), or None."""
        raw = uri.partition("?")[0].lower()
        if any(escape in raw for escape in _FORBIDDEN_ESCAPES):
            return None  # an encoded separator: a name no file in the tree has
        if "\\" in path or "\0" in path or not path.startswith(self.prefix):
            return None
        segments = path[len(self.prefix) :].split("/")
        directory = segments[-1] == ""
        if directory:
            segments.pop()  # "dir/": the directory itself
        for segment in segments:
            if segment in ("", ".", "..") or (segment.startswith(".") and not self.dotfiles):
                return None
        real = os.path.realpath(os.path.join(self.directory, *segments))
        if not self.servable(real):
            return None  # a symlink out of the root, or to a dotfile
        if os.path.isdir(real):
            if self.index is None:
                return None
            real = os.path.realpath(os.path.join(real, self.index))
            if not self.servable(real):
                return None
        elif directory:
            return None  # "file/" names no directory (open() would refuse it too)
        return real

    def __repr__(self) -> str:
        return f"StaticFiles({self.directory!r}, prefix={self.prefix!r})"
