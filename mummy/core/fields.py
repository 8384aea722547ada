"""HTTP rules shared by HTTP/1.1, HTTP/2, WebSockets and WSGI, each written once."""

import re
from http import HTTPStatus

# RFC 9110 §5.6.2: token = 1*tchar
TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
TOKEN_RE = re.compile(TOKEN)
# RFC 9110 §5.5: field values never contain CR, LF or NUL.
BAD_VALUE_RE = re.compile(r"[\x00\r\n]")

# RFC 9110 §6.4.1: these statuses never carry content.
NO_BODY_STATUSES = frozenset({204, 304})

# RFC 9110 §7.6.1 and RFC 9113 §8.2.2: meaningful for one connection only; the server
# frames and manages its own connections, so a response never carries these as given.
CONNECTION_FIELDS = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    )
)

# RFC 9113 §3.4: the client connection preface of HTTP/2.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

REASONS = {s.value: s.phrase for s in HTTPStatus}


def comma_tokens(values: list[str]) -> list[str]:
    """The lower-cased elements of comma-separated list fields; RFC 9110 §5.6.1:
    empty elements are ignored."""
    return [t for v in values for t in (p.strip(" \t").lower() for p in v.split(",")) if t]
