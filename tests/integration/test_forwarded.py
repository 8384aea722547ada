"""`Server(forwarded_allow_ips=...)`: from trusted peers only, `Forwarded` (RFC 7239) and
`X-Forwarded-For` / `X-Forwarded-Proto` set `request.remote_address` and
`request.scheme`; from anyone else they change nothing. Real server, raw sockets."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Any

import pytest

import mummy
from mummy.__main__ import build_server, parser
from mummy.wsgi import WSGIAdapter
from tests.client import connect, read_response
from tests.integration.test_tls import cert  # noqa: F401 - the fixture

Serve = Callable[..., mummy.Server]


def who(request: mummy.Request) -> None:
    seen = {"address": request.remote_address, "scheme": request.scheme}
    request.respond(200, {"Content-Type": "application/json"}, json.dumps(seen))


def ask(port: int, *fields: str) -> dict[str, Any]:
    head = "".join(f"{field}\r\n" for field in fields)
    with connect(port) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        status, _, body = read_response(sock)
    assert status == 200
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_nobody_is_trusted_by_default(serve: Serve) -> None:
    port = serve(who, workers=1).port
    told = ask(port, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
    assert told == {"address": "127.0.0.1", "scheme": "http"}
    told = ask(port, "Forwarded: for=203.0.113.7;proto=https")
    assert told == {"address": "127.0.0.1", "scheme": "http"}


def test_a_trusted_proxy_tells_the_client_and_the_scheme(serve: Serve) -> None:
    port = serve(who, workers=1, forwarded_allow_ips="127.0.0.1").port
    assert ask(port, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https") == {
        "address": "203.0.113.7",
        "scheme": "https",
    }
    # Forwarded wins over X-Forwarded-*; its hop's proto too.
    told = ask(port, 'Forwarded: for="[2001:db8::1]:4711";proto=https', "X-Forwarded-For: 1.2.3.4")
    assert told == {"address": "2001:db8::1", "scheme": "https"}
    # Without forwarding fields, the peer itself.
    assert ask(port) == {"address": "127.0.0.1", "scheme": "http"}


def test_the_client_is_the_right_most_untrusted_hop(serve: Serve) -> None:
    port = serve(who, workers=1, forwarded_allow_ips="127.0.0.1, 10.0.0.0/8").port
    # A client may write anything on the left; the proxies append on the right.
    told = ask(port, "X-Forwarded-For: 6.6.6.6, 198.51.100.2, 10.1.1.1")
    assert told["address"] == "198.51.100.2"


def test_an_untrusted_peer_is_not_believed(serve: Serve) -> None:
    port = serve(who, workers=1, forwarded_allow_ips="10.0.0.0/8").port
    told = ask(port, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
    assert told == {"address": "127.0.0.1", "scheme": "http"}


def test_tls_is_https(cert: tuple[str, str]) -> None:  # noqa: F811
    server = mummy.Server(who, workers=1)
    server.start(0, "127.0.0.1", certfile=cert[0], keyfile=cert[1])
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with connect(server.port) as raw, context.wrap_socket(raw) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["scheme"] == "https"
    finally:
        server.close()


def test_wsgi_gets_the_servers_answer(serve: Serve) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        seen = {"address": environ["REMOTE_ADDR"], "scheme": environ["wsgi.url_scheme"]}
        return [json.dumps(seen).encode()]

    port = serve(WSGIAdapter(app), workers=1, forwarded_allow_ips="*").port
    told = ask(port, "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
    assert told == {"address": "203.0.113.7", "scheme": "https"}


def test_bad_values_raise_mummy_error() -> None:
    with pytest.raises(mummy.MummyError, match="not an IP address or network"):
        mummy.Server(who, forwarded_allow_ips="localhost")
    with pytest.raises(mummy.MummyError, match="must be a str or a list of str"):
        mummy.Server(who, forwarded_allow_ips=42)  # type: ignore[arg-type]


def test_the_cli_flag_applies_to_every_app() -> None:
    args = parser().parse_args(
        ["tests.integration.test_forwarded:who", "--forwarded-allow-ips", "*"]
    )
    server = build_server(args)
    assert server.trusted_proxies is not None and server.forwarded_allow_ips == "*"
