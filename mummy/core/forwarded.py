"""Who the client is behind a proxy: `forwarded_allow_ips` (the peers trusted to say)
and the forwarding headers they set, RFC 7239 `Forwarded` and the de-facto
`X-Forwarded-For` / `X-Forwarded-Proto`. Shared by `Request` (the server's
`forwarded_allow_ips`: `remote_address` and `scheme`) and the WSGI adapter.
Everything here is read-only once made: any thread may use it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from mummy.errors import MummyError

type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = frozenset(("http", "https"))


class TrustedProxies:
    """The peers whose forwarding headers are believed: `forwarded_allow_ips`.

    >>> TrustedProxies("127.0.0.1, 10.0.0.0/8").trusts("10.1.2.3")
    True

    Accepts a comma-separated string or a list of IP addresses and networks; "*"
    trusts every peer; None or "" trusts none. Read-only once made.
    """

    __slots__ = ("_everyone", "_networks")

    def __init__(self, allow: str | list[str] | None = None) -> None:
        if allow is None:
            entries: list[str] = []
        elif isinstance(allow, str):
            entries = allow.split(",")
        elif isinstance(allow, list) and all(isinstance(entry, str) for entry in allow):
            entries = allow
        else:
            raise MummyError(f"forwarded_allow_ips must be a str or a list of str, got {allow!r}")
        self._everyone = False
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self._everyone = True
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise MummyError(
                    f"forwarded_allow_ips: {entry!r} is not an IP address or network "
                    '(write e.g. "127.0.0.1,10.0.0.0/8", or "*" to trust every peer)'
                ) from None
        self._networks = tuple(networks)

    @property
    def anyone(self) -> bool:
        """True when some peer may be trusted (the headers are worth reading)."""
        return self._everyone or bool(self._networks)

    def trusts(self, address: str) -> bool:
        if self._everyone:
            return True
        if not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)


def _node(value: str) -> str:
    """The address in a forwarding hop: '[2001:db8::1]:80' -> '2001:db8::1',
    '192.0.2.1:80' -> '192.0.2.1'; anything else ('unknown', '_hidden') as is."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.partition(":")[0]
    return value


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if char == "\\" and not escaped:
                escaped = True
                continue
            out.append(char)
            escaped = False
        return "".join(out)
    return value


def parse_forwarded(values: list[str]) -> list[dict[str, str]]:
    """RFC 7239 §4: the `Forwarded` field values as a list of hops (client-most first),
    each a dict of lower-cased parameter names to unquoted values. Pairs that cannot be
    read are left out of their hop; the hop stays, so that positions are kept."""
    hops: list[dict[str, str]] = []
    for value in values:
        for element in _split_outside_quotes(value, ","):
            if not element.strip():
                continue
            hop: dict[str, str] = {}
            for pair in _split_outside_quotes(element, ";"):
                name, sep, raw = pair.partition("=")
                name = name.strip().lower()
                if sep and name and name not in hop:
                    hop[name] = _unquote(raw)
            hops.append(hop)
    return hops


def client_from_headers(
    trusted: TrustedProxies,
    forwarded: list[str],
    x_forwarded_for: list[str],
    x_forwarded_proto: list[str],
) -> tuple[str | None, str | None]:
    """(client address, scheme) told by the proxies' headers, either None when the
    headers do not say; the caller has checked that the peer itself is trusted.

    The client is the right-most hop that is not a trusted proxy (each proxy appends
    the address it received from), or the left-most hop when all are trusted.
    `Forwarded` (RFC 7239) wins over the X-Forwarded-* pair when both are present.
    """
    if forwarded:
        hops = parse_forwarded(forwarded)
        if not hops:
            return None, None
        chosen = hops[0]
        for hop in reversed(hops):
            node = _node(hop["for"]) if "for" in hop else None
            if node is None or not trusted.trusts(node):
                chosen = hop
                break
        address = _node(chosen["for"]) if chosen.get("for") else None
        proto = chosen.get("proto", "").lower()
        return address or None, proto if proto in _SCHEMES else None
    address = None
    entries = [e.strip() for v in x_forwarded_for for e in v.split(",") if e.strip()]
    if entries:
        address = _node(entries[0])
        for entry in reversed(entries):
            node = _node(entry)
            if not trusted.trusts(node):
                address = node
                break
    scheme = None
    protos = [p.strip().lower() for v in x_forwarded_proto for p in v.split(",") if p.strip()]
    # The right-most value is the one the proxy that talks to us wrote.
    if protos and protos[-1] in _SCHEMES:
        scheme = protos[-1]
    return address or None, scheme


def forwarded_client(
    trusted: TrustedProxies, get_all: Callable[[str], list[str]]
) -> tuple[str | None, str | None]:
    """`client_from_headers` over a request's fields (`get_all(name)`: every value)."""
    return client_from_headers(
        trusted, get_all("forwarded"), get_all("x-forwarded-for"), get_all("x-forwarded-proto")
    )
