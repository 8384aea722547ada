"""Nothing outside a `mummy.StaticFiles` root is ever served: every trick of path
traversal, sent with raw sockets (no client normalizes a target), to StaticFiles
under "/static/" through a `mummy.Router`, at "/" as the server's handler, and
with dotfiles=True. A secret beside the root (and a directory of them) has unique
content that must appear in no response; each trick is answered 404, or 400 by
the server before any handler (bad percent-encoding or UTF-8, a malformed target).
"""

import gzip
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import h2.events
import pytest

import mummy
from tests.client import exchange, status_of
from tests.integration.test_http2 import RawH2, stream_ended
from tests.servers import HANG_S, serving

SECRET = f"outside-the-root-{uuid.uuid4()}".encode()
DOT_SECRET = f"a-dotfile-inside-{uuid.uuid4()}".encode()
PUBLIC = b"public content"


class Mount(NamedTuple):
    name: str
    port: int
    prefix: str
    dotfiles: bool


def build_tree(base: Path) -> Path:
    """base/secret.txt and base/outside/ hold SECRET; base/root is served."""
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(SECRET)
    (base / "outside" / "index.html").write_bytes(SECRET)
    (base / "root-sibling").mkdir()  # its name starts with the root's: root + "-sibling"
    (base / "root-sibling" / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "public.txt").write_bytes(PUBLIC)
    (root / "index.html").write_bytes(b"<h1>index</h1>")
    (root / "sub" / "page.txt").write_bytes(b"sub page")
    (root / ".env").write_bytes(DOT_SECRET)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(DOT_SECRET)
    os.symlink("public.txt", root / "inside_link")  # stays inside: served
    os.symlink("..", root / "sub" / "up")  # the root itself: inside
    os.symlink(".env", root / "dot_link")  # a dotfile under a name without a dot
    os.symlink(".git", root / "git_link")
    os.symlink("../secret.txt", root / "out_file")
    os.symlink(base / "secret.txt", root / "abs_link")
    os.symlink("../outside", root / "out_dir")
    os.symlink("../root-sibling", root / "sibling_dir")
    os.symlink("/", root / "sub" / "fs_root")
    # Precompressed siblings that are symlinks: one out of the root, one to a dotfile.
    (root / "page.txt").write_bytes(b"page, identity")
    os.symlink("../secret.txt", root / "page.txt.gz")
    (root / "note.txt").write_bytes(b"note, identity")
    os.symlink(".env", root / "note.txt.gz")
    (root / "zfile.txt").write_bytes(b"zfile, identity")
    os.symlink(base / "outside" / "secret.txt", root / "zfile.txt.zst")
    return root


@pytest.fixture(scope="module")
def mounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Mount]]:
    root = build_tree(tmp_path_factory.mktemp("traversal"))
    router = mummy.Router()
    router.get("/static/**", mummy.StaticFiles(root, prefix="/static/"))
    with_dotfiles = mummy.Router()
    with_dotfiles.get("/static/**", mummy.StaticFiles(root, prefix="/static/", dotfiles=True))
    handlers = {
        "router": (router, "/static/", False),
        "root": (mummy.StaticFiles(root), "/", False),
        "dotfiles": (with_dotfiles, "/static/", True),
    }
    with (
        serving(mummy.Server(handlers["router"][0], workers=4)) as a,
        serving(mummy.Server(handlers["root"][0], workers=4)) as b,
        serving(mummy.Server(handlers["dotfiles"][0], workers=4)) as c,
    ):
        ports = {"router": a.port, "root": b.port, "dotfiles": c.port}
        yield {
            name: Mount(name, ports[name], prefix, dotfiles)
            for name, (_, prefix, dotfiles) in handlers.items()
        }


def get(port: int, target: bytes, *fields: bytes) -> bytes:
    """The whole response to GET `target`, sent byte for byte."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    return exchange(port, head + b"".join(f + b"\r\n" for f in fields) + b"\r\n", HANG_S)


def refused(mount: Mount, response: bytes) -> None:
    assert response, "no response"
    assert SECRET not in response, response
    if not mount.dotfiles:
        assert DOT_SECRET not in response, response
    assert status_of(response) in (400, 404), response[:300]


# After the mount's prefix.
TRICKS = [
    "../secret.txt",
    "../../secret.txt",
    "../../../../../../../../etc/passwd",
    "sub/../../secret.txt",
    "./../secret.txt",
    "sub/./../../secret.txt",
    "..",
    "../",
    "..%2fsecret.txt",
    "..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2e%2e%2fsecret.txt",
    "%2E%2E/secret.txt",
    "%2E%2E%2Fsecret.txt",
    "%2e%2E/secret.txt",
    ".%2e/secret.txt",
    "%2e./secret.txt",
    "sub/%2e%2e/%2e%2e/secret.txt",
    "%252e%252e/secret.txt",  # double-encoded: decoded once, a name no file has
    "%252e%252e%252fsecret.txt",
    "%25%32%65%25%32%65/secret.txt",
    "..\\secret.txt",
    "..\\..\\secret.txt",
    "sub\\..\\..\\secret.txt",
    "..%5csecret.txt",
    "..%5Csecret.txt",
    "%2e%2e%5csecret.txt",
    "%2fetc%2fpasswd",
    "%2F..%2Fsecret.txt",
    "sub%2f..%2f..%2fsecret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "/../secret.txt",
    "%00",
    "%00../secret.txt",
    "public.txt%00",
    "public.txt%00.html",
    "..%00/secret.txt",
    "%c0%ae%c0%ae/secret.txt",  # overlong "." (2 bytes)
    "%e0%80%ae%e0%80%ae/secret.txt",  # overlong "." (3 bytes)
    "%c0%af",  # overlong "/"
    "..%c0%afsecret.txt",
    "..%c1%9csecret.txt",  # overlong "\"
    "%ff",
    "%fe%ff",
    "%c0%2e%c0%2e/secret.txt",
    "%ef%bc%8e%ef%bc%8e/secret.txt",  # fullwidth full stops: not dots
    "%ef%bc%8f..%ef%bc%8fsecret.txt",  # fullwidth solidus: not a separator
    "..%u2216secret.txt",  # IIS %u: invalid percent-encoding
    "%%32%65%%32%65/secret.txt",
    "%2",
    "%g0",
    "..;/secret.txt",
    "...",
    "..../secret.txt",
    "public.txt.",
    "public.txt..",
    "public.txt%20",
    "public.txt%2e",
    "public.txt/.",
    "..%20/secret.txt",
    "%20../secret.txt",
    "out_file",
    "abs_link",
    "out_dir/secret.txt",
    "out_dir/",
    "out_dir",
    "sibling_dir/secret.txt",
    "sub/fs_root/etc/passwd",
    "sub/up/../secret.txt",
    "sub/up/out_file",
    "../root/public.txt/../../secret.txt",
    "../root-sibling/secret.txt",
    ".env",
    "%2eenv",
    "sub/../.env",
    ".git/config",
    "%2egit/config",
    "git_link/config",
    "dot_link",
    "sub/up/.env",
    "sub/up/dot_link",
    "sub//page.txt",
    "sub/./page.txt",
    "./public.txt",
    "missing/../public.txt",
    "../" * 2000 + "secret.txt",
    "a" * 6000,
    "sub/" * 1000 + "../" * 1001 + "secret.txt",
    "x/" * 2500,
]


def dotfile_trick(trick: str) -> bool:
    """Tricks that name a dotfile inside the root without leaving it: served when
    dotfiles=True (the answer is then the dotfile, never the secret)."""
    return trick in (".env", "%2eenv", ".git/config", "%2egit/config", "git_link/config") or (
        trick in ("dot_link", "sub/up/.env", "sub/up/dot_link")
    )


@pytest.mark.parametrize("mount_name", ["router", "root", "dotfiles"])
@pytest.mark.parametrize("trick", TRICKS, ids=lambda t: t if len(t) < 40 else f"long-{len(t)}")
def test_a_traversal_trick_gets_404_or_400(
    mounts: dict[str, Mount], mount_name: str, trick: str
) -> None:
    mount = mounts[mount_name]
    response = get(mount.port, (mount.prefix + trick).encode())
    if mount.dotfiles and dotfile_trick(trick):
        assert SECRET not in response
        assert status_of(response) in (200, 400, 404), response[:300]
        return
    refused(mount, response)


@pytest.mark.parametrize("mount_name", ["router", "root", "dotfiles"])
@pytest.mark.parametrize(
    "trick",
    ["../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "out_file", "%2E%2E%2Fsecret.txt"],
)
def test_absolute_form_targets(mounts: dict[str, Mount], mount_name: str, trick: str) -> None:
    mount = mounts[mount_name]
    for authority in ("x", "127.0.0.1", "x:80"):
        target = f"http://{authority}{mount.prefix}{trick}"
        refused(mount, get(mount.port, target.encode()))
    refused(mount, get(mount.port, f"http://x{mount.prefix}..%2f..%2fsecret.txt#x".encode()))


@pytest.mark.parametrize("mount_name", ["router", "root"])
@pytest.mark.parametrize(
    "raw",
    [
        b"\xc0\xae\xc0\xae/secret.txt",
        b"\xff",
        b"..\x00/secret.txt",
        b"\xe2\x80\xa5/secret.txt",
        b"public.txt ",  # a space ends the target: a malformed request line
        b"..\tsecret.txt",
    ],
)
def test_raw_bytes_in_the_target(mounts: dict[str, Mount], mount_name: str, raw: bytes) -> None:
    mount = mounts[mount_name]
    refused(mount, get(mount.port, mount.prefix.encode() + raw))


def test_other_request_forms(mounts: dict[str, Mount]) -> None:
    port = mounts["root"].port
    for target in (b"*", b"x:80", b"../secret.txt", b"secret.txt", b"?/../secret.txt"):
        refused(mounts["root"], get(port, target))
    response = exchange(port, b"GET /../secret.txt HTTP/1.0\r\n\r\n", HANG_S)
    refused(mounts["root"], response)
    refused(mounts["root"], get(port, b"/public.txt/../../secret.txt?x=1"))


@pytest.mark.parametrize("mount_name", ["router", "root", "dotfiles"])
def test_what_is_inside_is_served(mounts: dict[str, Mount], mount_name: str) -> None:
    mount = mounts[mount_name]
    for trick, body in (
        ("public.txt", PUBLIC),
        ("inside_link", PUBLIC),  # a symlink that stays inside
        ("sub/up/public.txt", PUBLIC),  # through a symlink to the root itself
        ("sub/page.txt", b"sub page"),
        ("pub%6cic.txt", PUBLIC),  # an escape of an ordinary character
        ("", b"<h1>index</h1>"),
    ):
        response = get(mount.port, (mount.prefix + trick).encode())
        assert status_of(response) == 200, (trick, response[:300])
        assert response.endswith(b"\r\n\r\n" + body), (trick, response[-200:])


@pytest.mark.parametrize("mount_name", ["router", "root"])
def test_a_file_with_a_trailing_slash_is_not_a_directory(
    mounts: dict[str, Mount], mount_name: str
) -> None:
    # "name/" names a directory (POSIX open() fails with ENOTDIR for a file): 404, so
    # that a proxy's rule about "/static/x.txt" is not dodged by "/static/x.txt/".
    mount = mounts[mount_name]
    for trick in ("public.txt/", "sub/page.txt/", "inside_link/"):
        response = get(mount.port, (mount.prefix + trick).encode())
        assert status_of(response) == 404, (trick, response[:300])


def test_dotfiles_true_serves_dotfiles_inside_and_nothing_outside(
    mounts: dict[str, Mount],
) -> None:
    mount = mounts["dotfiles"]
    for trick in (".env", "dot_link", ".git/config", "git_link/config"):
        response = get(mount.port, (mount.prefix + trick).encode())
        assert status_of(response) == 200 and response.endswith(DOT_SECRET), trick


@pytest.mark.parametrize("mount_name", ["router", "root"])
def test_a_symlink_to_a_dotfile_is_404_without_dotfiles(
    mounts: dict[str, Mount], mount_name: str
) -> None:
    mount = mounts[mount_name]
    for trick in ("dot_link", "git_link/config", "sub/up/dot_link"):
        refused(mount, get(mount.port, (mount.prefix + trick).encode()))


@pytest.mark.parametrize("mount_name", ["router", "root", "dotfiles"])
@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_precompressed_sibling_out_of_the_root_is_not_served(
    mounts: dict[str, Mount], mount_name: str, coding: str
) -> None:
    mount = mounts[mount_name]
    for name, body in (("page.txt", b"page, identity"), ("zfile.txt", b"zfile, identity")):
        response = get(
            mount.port, (mount.prefix + name).encode(), b"Accept-Encoding: " + coding.encode()
        )
        assert SECRET not in response
        assert status_of(response) == 200 and response.endswith(body), response[:400]
        assert b"Content-Encoding" not in response


@pytest.mark.parametrize("mount_name", ["router", "root"])
def test_a_precompressed_sibling_that_links_to_a_dotfile_is_not_served(
    mounts: dict[str, Mount], mount_name: str
) -> None:
    # note.txt.gz -> .env: without dotfiles, .env is not to be served under any name.
    mount = mounts[mount_name]
    response = get(mount.port, (mount.prefix + "note.txt").encode(), b"Accept-Encoding: gzip")
    assert DOT_SECRET not in response, response
    assert status_of(response) == 200 and response.endswith(b"note, identity")


def test_a_root_given_through_a_symlink(tmp_path: Path) -> None:
    root = build_tree(tmp_path)
    alias = tmp_path / "alias"
    os.symlink(root, alias)
    with serving(mummy.Server(mummy.StaticFiles(alias), workers=2)) as server:
        assert get(server.port, b"/public.txt").endswith(PUBLIC)
        mount = Mount("alias", server.port, "/", False)
        for trick in ("../secret.txt", "out_file", "%2e%2e/secret.txt", "../alias/../secret.txt"):
            refused(mount, get(server.port, b"/" + trick.encode()))


def h2_status_and_body(port: int, path: str) -> tuple[int, bytes]:
    client = RawH2(port)
    try:
        stream_id = client.get(path)
        events = client.events_until(stream_ended(stream_id))
    finally:
        client.sock.close()
    status = next(
        int(dict(e.headers)[b":status"])
        for e in events
        if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream_id
    )
    body = b"".join(
        e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
    )
    return status, body


@pytest.mark.parametrize(
    "trick",
    ["../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "out_file", "..\\secret.txt", ".env"],
)
def test_http2_paths_are_vetted_the_same(mounts: dict[str, Mount], trick: str) -> None:
    mount = mounts["router"]
    status, body = h2_status_and_body(mount.port, mount.prefix + trick)
    assert status in (400, 404) and SECRET not in body and DOT_SECRET not in body
    assert h2_status_and_body(mount.port, "/static/public.txt") == (200, PUBLIC)


def test_a_gzip_sibling_is_served_when_it_is_inside(tmp_path: Path) -> None:
    # The control for the sibling tests above: a real sibling inside is chosen.
    (tmp_path / "a.txt").write_bytes(PUBLIC)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(PUBLIC, mtime=0))
    with serving(mummy.Server(mummy.StaticFiles(tmp_path), workers=2)) as server:
        response = get(server.port, b"/a.txt", b"Accept-Encoding: gzip")
        assert b"Content-Encoding: gzip\r\n" in response
        assert response.endswith(gzip.compress(PUBLIC, mtime=0))
