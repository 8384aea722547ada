"""The WSGI environ and the forwarding headers, without a server: PEP 3333 and RFC 7239."""

import io
import logging
from collections.abc import Iterable

import pytest

import mummy
from mummy.wsgi import (
    ErrorStream,
    TrustedProxies,
    WSGIAdapter,
    client_from_headers,
    parse_forwarded,
    split_uri,
)


def never_called(environ: object, start_response: object) -> list[bytes]:
    raise AssertionError("environ tests never run the application")


def make_request(
    uri: str = "/",
    headers: Iterable[tuple[str, str]] = (("Host", "example.com"),),
    *,
    method: str = "GET",
    body: bytes = b"",
    remote_address: str = "203.0.113.9",
    http_version: str = "HTTP/1.1",
    scheme: str = "http",
) -> mummy.Request:
    """A Request as a worker would hold it; only the fields the adapter reads are set."""
    request = mummy.Request.__new__(mummy.Request)
    request.method = method
    request.uri = uri
    request.http_version = http_version
    request.headers = mummy.Headers(list(headers))
    request.body = body
    request.remote_address = remote_address
    request.scheme = scheme
    return request


def environ_of(request: mummy.Request, **options: object) -> dict[str, object]:
    return WSGIAdapter(never_called, **options).environ(request)  # type: ignore[arg-type]


# --- PEP 3333 keys -----------------------------------------------------------------------


def test_required_keys_and_their_types() -> None:
    env = environ_of(make_request("/a/b?x=1&y=%20"))
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["REQUEST_URI"] == "/a/b?x=1&y=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "example.com" and env["SERVER_PORT"] == "80"
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert isinstance(env["wsgi.errors"], ErrorStream)
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env
    for key, value in env.items():
        if "." not in key:
            assert type(value) is str, key


def test_each_request_gets_a_fresh_environ() -> None:
    adapter = WSGIAdapter(never_called)
    request = make_request()
    first, second = adapter.environ(request), adapter.environ(request)
    assert first is not second and first["wsgi.input"] is not second["wsgi.input"]
    assert first["mummy.request"] is request


def test_path_info_is_percent_decoded_bytes_read_as_latin_1() -> None:
    # PEP 3333: "bytes in a str"; the application decodes them (Werkzeug and Django as UTF-8).
    env = environ_of(make_request("/caf%C3%A9/a%2Fb%20c?q=caf%C3%A9"))
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a/b c"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a/b c"
    assert env["QUERY_STRING"] == "q=caf%C3%A9"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/", ("/", "", None)),
        ("/p?", ("/p", "", None)),
        ("/p?a=1?b", ("/p", "a=1?b", None)),
        ("http://example.org:8080/x%41?q", ("/xA", "q", "example.org:8080")),
        ("http://example.org", ("/", "", "example.org")),
        ("*", ("", "", None)),
        ("example.org:443", ("", "", None)),
    ],
)
def test_split_uri(uri: str, expected: tuple[str, str, str | None]) -> None:
    assert split_uri(uri) == expected


def test_absolute_form_authority_wins_over_host() -> None:
    # RFC 9112 §3.2.2
    env = environ_of(make_request("http://example.org:8080/x", [("Host", "other.example")]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["PATH_INFO"]) == (
        "example.org",
        "8080",
        "/x",
    )
    assert env["HTTP_HOST"] == "other.example"


def test_asterisk_form_has_an_empty_path_info() -> None:
    env = environ_of(make_request("*", method="OPTIONS"))
    assert env["PATH_INFO"] == "" and env["REQUEST_URI"] == "*"


# --- SCRIPT_NAME -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "path_info"), [("/api", ""), ("/api/", "/"), ("/api/users?x", "/users")]
)
def test_script_name_moves_the_prefix_out_of_path_info(uri: str, path_info: str) -> None:
    env = environ_of(make_request(uri), script_name="/api")
    assert env["SCRIPT_NAME"] == "/api" and env["PATH_INFO"] == path_info


def test_script_name_is_latin_1_too() -> None:
    env = environ_of(make_request("/caf%C3%A9/x"), script_name="/café")
    assert env["SCRIPT_NAME"] == "/caf\xc3\xa9" and env["PATH_INFO"] == "/x"


@pytest.mark.parametrize("uri", ["/", "/apis", "/other/api"])
def test_a_request_outside_script_name_has_no_environ(uri: str) -> None:
    with pytest.raises(mummy.MummyError, match="outside script_name"):
        environ_of(make_request(uri), script_name="/api")


@pytest.mark.parametrize("bad", ["api", "/api/", "/"])
def test_bad_script_name_is_refused(bad: str) -> None:
    with pytest.raises(mummy.MummyError, match="script_name"):
        WSGIAdapter(never_called, script_name=bad)


# --- headers -----------------------------------------------------------------------------


def test_headers_become_http_keys_and_repeats_are_joined() -> None:
    env = environ_of(
        make_request(
            headers=[
                ("Host", "example.com"),
                ("Accept", "text/html"),
                ("X-Dup", "one"),
                ("x-dup", "two"),
                ("Cookie", "a=1"),
                ("Cookie", "b=2"),
                ("X-Empty", ""),
            ]
        )
    )
    assert env["HTTP_HOST"] == "example.com"
    assert env["HTTP_ACCEPT"] == "text/html"
    assert env["HTTP_X_DUP"] == "one, two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_EMPTY"] == ""


def test_content_type_and_length_have_no_http_prefix() -> None:
    env = environ_of(
        make_request(
            headers=[
                ("Host", "h"),
                ("Content-Type", "application/json"),
                ("Content-Length", "7"),
            ],
            method="POST",
            body=b'{"a":1}',
        )
    )
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["wsgi.input"].read() == b'{"a":1}'


def test_a_chunked_body_is_given_a_content_length() -> None:
    env = environ_of(
        make_request(
            headers=[("Host", "h"), ("Transfer-Encoding", "chunked")], method="POST", body=b"abc"
        )
    )
    assert env["CONTENT_LENGTH"] == "3" and "HTTP_TRANSFER_ENCODING" not in env
    assert env["wsgi.input_terminated"] is True


def test_an_empty_declared_body_has_content_length_zero() -> None:
    env = environ_of(make_request(headers=[("Host", "h"), ("Content-Length", "0")], method="POST"))
    assert env["CONTENT_LENGTH"] == "0"


def test_a_decoded_body_drops_its_content_encoding() -> None:
    # The server gunzips request bodies before any handler runs; the length is the decoded one.
    env = environ_of(
        make_request(
            headers=[("Host", "h"), ("Content-Encoding", "gzip"), ("Content-Length", "20")],
            method="POST",
            body=b"hello",
        )
    )
    assert "HTTP_CONTENT_ENCODING" not in env and env["CONTENT_LENGTH"] == "5"


def test_header_names_with_underscores_are_dropped() -> None:
    env = environ_of(
        make_request(
            headers=[("Host", "h"), ("X_Forwarded_For", "1.2.3.4"), ("Content_Type", "x/y")]
        )
    )
    assert "HTTP_X_FORWARDED_FOR" not in env and "CONTENT_TYPE" not in env


def test_wsgi_input_is_seekable() -> None:
    env = environ_of(make_request(method="POST", body=b"line1\nline2\n"))
    stream = env["wsgi.input"]
    assert isinstance(stream, io.BytesIO)
    assert stream.readline() == b"line1\n"
    assert list(stream) == [b"line2\n"]
    stream.seek(0)
    assert stream.readlines() == [b"line1\n", b"line2\n"]


# --- SERVER_NAME and SERVER_PORT ---------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [
        ("example.com", "example.com", "80"),
        ("example.com:8080", "example.com", "8080"),
        ("[::1]:9000", "[::1]", "9000"),
        ("[::1]", "[::1]", "80"),
        ("example.com:nope", "example.com", "80"),
    ],
)
def test_server_name_and_port_come_from_host(host: str, name: str, port: str) -> None:
    env = environ_of(make_request(headers=[("Host", host)]))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == (name, port)


def test_without_host_the_configured_name_and_port_are_used() -> None:
    request = make_request(headers=[], http_version="HTTP/1.0")
    env = environ_of(request)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("localhost", "80")
    env = environ_of(request, server_name="api.internal", server_port=8443)
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("api.internal", "8443")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


@pytest.mark.parametrize("port", [0, 70000, "80", True])
def test_bad_server_port_is_refused(port: object) -> None:
    with pytest.raises(mummy.MummyError, match="server_port"):
        WSGIAdapter(never_called, server_port=port)  # type: ignore[arg-type]


def test_a_non_callable_app_is_refused() -> None:
    with pytest.raises(mummy.MummyError, match="callable"):
        WSGIAdapter("app:app")  # type: ignore[arg-type]


# --- wsgi.errors -------------------------------------------------------------------------


def test_wsgi_errors_logs_whole_lines_to_mummy_wsgi(caplog: pytest.LogCaptureFixture) -> None:
    stream = ErrorStream()
    with caplog.at_level(logging.ERROR, logger="mummy.wsgi"):
        stream.write("partial ")
        assert caplog.records == []
        stream.write("line\n")
        stream.writelines(["two\n", "three"])
        stream.flush()
        stream.flush()
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("mummy.wsgi", logging.ERROR, "partial line"),
        ("mummy.wsgi", logging.ERROR, "two"),
        ("mummy.wsgi", logging.ERROR, "three"),
    ]


def test_wsgi_errors_takes_text_only() -> None:
    with pytest.raises(TypeError):
        ErrorStream().write(b"bytes")  # type: ignore[arg-type]


# --- forwarded_allow_ips -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "address", "trusted"),
    [
        (None, "127.0.0.1", False),
        ("", "127.0.0.1", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("127.0.0.1, 10.0.0.0/8", "10.200.0.1", True),
        (["::1", "192.168.0.0/16"], "::1", True),
        (["::1", "192.168.0.0/16"], "192.168.4.4", True),
        ("127.0.0.1", "::ffff:127.0.0.1", True),
        ("*", "198.51.100.7", True),
        ("*", "unknown", True),
        ("10.0.0.0/8", "unknown", False),
    ],
)
def test_trusted_proxies(allow: str | list[str] | None, address: str, trusted: bool) -> None:
    assert TrustedProxies(allow).trusts(address) is trusted


@pytest.mark.parametrize("bad", ["127.0.0.1, nonsense", ["10.0.0.0/33"], 42, [1]])
def test_bad_forwarded_allow_ips_are_refused(bad: object) -> None:
    with pytest.raises(mummy.MummyError, match="forwarded_allow_ips"):
        WSGIAdapter(never_called, forwarded_allow_ips=bad)  # type: ignore[arg-type]


def test_parse_forwarded_rfc_7239_examples() -> None:
    # RFC 7239 §4 and §7.1
    assert parse_forwarded(['for="_gazonk"']) == [{"for": "_gazonk"}]
    assert parse_forwarded(['For="[2001:db8:cafe::17]:4711"']) == [
        {"for": "[2001:db8:cafe::17]:4711"}
    ]
    assert parse_forwarded(["for=192.0.2.60;proto=http;by=203.0.113.43"]) == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded(["for=192.0.2.43, for=198.51.100.17"]) == [
        {"for": "192.0.2.43"},
        {"for": "198.51.100.17"},
    ]
    # Separators inside quoted strings, escapes, repeated fields, junk pairs.
    assert parse_forwarded(['for="a,b;c\\"d";proto=https', "junk, for=1.2.3.4"]) == [
        {"for": 'a,b;c"d', "proto": "https"},
        {},
        {"for": "1.2.3.4"},
    ]


TRUST_LOCAL = TrustedProxies("127.0.0.1, 10.0.0.0/8")


def test_x_forwarded_for_takes_the_right_most_untrusted_hop() -> None:
    got = client_from_headers(TRUST_LOCAL, [], ["198.51.100.1, 192.0.2.7, 10.0.0.2"], [])
    assert got == ("192.0.2.7", None)


def test_x_forwarded_for_repeated_fields_are_one_list() -> None:
    got = client_from_headers(TRUST_LOCAL, [], ["192.0.2.7", "10.0.0.3, 10.0.0.2"], ["https"])
    assert got == ("192.0.2.7", "https")


def test_x_forwarded_for_all_trusted_gives_the_left_most() -> None:
    got = client_from_headers(TRUST_LOCAL, [], ["10.0.0.9, 10.0.0.2"], [])
    assert got == ("10.0.0.9", None)


def test_x_forwarded_proto_right_most_value_and_only_http_or_https() -> None:
    assert client_from_headers(TRUST_LOCAL, [], [], ["http, HTTPS"]) == (None, "https")
    assert client_from_headers(TRUST_LOCAL, [], [], ["gopher"]) == (None, None)


def test_x_forwarded_for_entries_with_ports() -> None:
    got = client_from_headers(TRUST_LOCAL, [], ["[2001:db8::1]:4711, 192.0.2.1:80"], [])
    assert got == ("192.0.2.1", None)


def test_forwarded_takes_for_and_proto_of_the_same_hop() -> None:
    got = client_from_headers(
        TRUST_LOCAL,
        ['for=198.51.100.1;proto=http, for="[2001:db8:cafe::17]:4711";proto=https'],
        [],
        [],
    )
    assert got == ("2001:db8:cafe::17", "https")


def test_forwarded_skips_trusted_hops() -> None:
    got = client_from_headers(
        TRUST_LOCAL, ["for=192.0.2.60;proto=https", "for=10.1.1.1;proto=http"], [], []
    )
    assert got == ("192.0.2.60", "https")


def test_forwarded_wins_over_x_forwarded_for() -> None:
    got = client_from_headers(TRUST_LOCAL, ["for=192.0.2.60"], ["198.51.100.1"], ["https"])
    assert got == ("192.0.2.60", None)


def test_forwarded_obfuscated_and_missing_nodes() -> None:
    assert client_from_headers(TRUST_LOCAL, ["for=unknown"], [], []) == ("unknown", None)
    assert client_from_headers(TRUST_LOCAL, ["proto=https"], [], []) == (None, "https")
    assert client_from_headers(TRUST_LOCAL, [""], [], []) == (None, None)


def test_forwarding_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = [
        ("Host", "example.com"),
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Forwarded-Proto", "https"),
    ]
    env = environ_of(make_request(headers=headers), forwarded_allow_ips="127.0.0.1")
    assert env["REMOTE_ADDR"] == "203.0.113.9" and env["wsgi.url_scheme"] == "http"
    env = environ_of(make_request(headers=headers))
    assert env["REMOTE_ADDR"] == "203.0.113.9" and env["wsgi.url_scheme"] == "http"


def test_forwarding_headers_from_a_trusted_peer_set_remote_addr_and_scheme() -> None:
    headers = [
        ("Host", "example.com"),
        ("X-Forwarded-For", "192.0.2.7"),
        ("X-Forwarded-Proto", "https"),
    ]
    env = environ_of(
        make_request(headers=headers, remote_address="127.0.0.1"),
        forwarded_allow_ips="127.0.0.1",
    )
    assert env["REMOTE_ADDR"] == "192.0.2.7"
    assert env["wsgi.url_scheme"] == "https" and env["SERVER_PORT"] == "443"
    assert env["HTTP_X_FORWARDED_FOR"] == "192.0.2.7"


def test_star_trusts_every_peer() -> None:
    env = environ_of(
        make_request(headers=[("Host", "h:8000"), ("Forwarded", "for=192.0.2.7;proto=https")]),
        forwarded_allow_ips="*",
    )
    assert env["REMOTE_ADDR"] == "192.0.2.7"
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"]) == ("https", "8000")
