"""Fuzz target: the path check of mummy.StaticFiles (`StaticFiles.resolve`).

A temporary tree is made once: a secret file and a directory of secrets beside the
root, and in the root a file, a dotfile, a dot-directory, a subdirectory, and
symlinks (out to the secret, out to its directory, to the root's parent, to a
dotfile, and one back to the root). Names are one or two letters, so that the
fuzzer finds them.

Input: the bytes read as latin-1, after "/static/", are the raw request-target;
it is decoded as the server decodes it (mummy.core.target.split_target; what that
refuses, the server answers 400, and is skipped here). A failure is any exception,
or a path resolved (by StaticFiles with dotfiles off, and with them on) whose real
path is outside the root or is the secret, or (dotfiles off) has a dot segment.

Run through ci/fuzz.py, or:
    .venv-gil/bin/python fuzz/static_paths.py fuzz/corpus/static_paths
"""

import atexit
import os
import shutil
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from mummy.core.target import TargetError, split_target
    from mummy.static import StaticFiles


def build_tree() -> tuple[str, str, str]:
    """(root, secret, outside), real paths, removed when the process exits."""
    base = os.path.realpath(tempfile.mkdtemp(prefix="fuzz-static-"))
    atexit.register(shutil.rmtree, base, True)
    secret = os.path.join(base, "s")
    outside = os.path.join(base, "o")
    root = os.path.join(base, "r")
    os.mkdir(outside)
    os.makedirs(os.path.join(root, "d"))
    os.mkdir(os.path.join(root, ".g"))
    for path in (secret, os.path.join(outside, "s"), os.path.join(base, "rs")):
        with open(path, "wb") as file:
            file.write(b"secret")
    for name in ("a", "index.html", ".e", os.path.join("d", "b"), os.path.join(".g", "c")):
        with open(os.path.join(root, name), "wb") as file:
            file.write(b"inside")
    links = {
        "l": "../s",  # out, to the secret
        "m": secret,  # out, absolute
        "n": "../o",  # out, a directory
        "p": "..",  # the root's parent
        "q": ".e",  # a dotfile under another name
        "t": ".g",  # a dot-directory under another name
        os.path.join("d", "u"): "..",  # back to the root: inside
        os.path.join("d", "v"): "../../rs",  # "r" + "s": a name the root's is a prefix of
    }
    for name, points_to in links.items():
        os.symlink(points_to, os.path.join(root, name))
    return root, secret, outside


ROOT, SECRET, OUTSIDE = build_tree()
SERVERS = [
    StaticFiles(ROOT, prefix="/static/"),
    StaticFiles(ROOT, prefix="/static/", dotfiles=True),
]


def check(files: StaticFiles, target: str, path: str) -> None:
    resolved = files.resolve(target, path)
    if resolved is None:
        return
    real = os.path.realpath(resolved)
    if real != ROOT and not real.startswith(ROOT + os.sep):
        raise AssertionError(f"{target!r} resolved outside the root: {real!r}")
    if real == SECRET or real.startswith(OUTSIDE + os.sep):
        raise AssertionError(f"{target!r} resolved to a secret: {real!r}")
    if not files.dotfiles:
        parts = os.path.relpath(real, ROOT).split(os.sep)
        if any(part.startswith(".") and part != "." for part in parts):
            raise AssertionError(f"{target!r} resolved to a dotfile: {real!r}")


def test_one_input(data: bytes) -> None:
    target = "/static/" + data.decode("latin-1")
    try:
        path, _ = split_target(target)
    except TargetError:
        return  # the server answers 400 before any handler
    for files in SERVERS:
        check(files, target, path)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
