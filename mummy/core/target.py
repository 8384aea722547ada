"""Request-target parsing (RFC 9112 §3.2) and strict percent-decoding (RFC 3986 §2.1)."""

import re
from urllib.parse import unquote_to_bytes, urlsplit

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class TargetError(ValueError):
    """The request-target cannot be decoded; the answer is 400."""


def percent_decode(text: str, *, plus_is_space: bool = False) -> str:
    if plus_is_space and "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise TargetError(f"invalid percent-encoding in {text!r}")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise TargetError(f"percent-encoded bytes in {text!r} are not UTF-8") from None


def split_target(target: str) -> tuple[str, str]:
    """(decoded path, raw query) of a request-target."""
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif target == "*":  # asterisk-form, OPTIONS only
        return "*", ""
    elif "://" in target:  # absolute-form: keep only the path and query
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:  # authority-form (CONNECT)
        return "", ""
    return percent_decode(path), query


def parse_query(query: str) -> list[tuple[str, str]]:
    """application/x-www-form-urlencoded pairs, in order; a name without '=' gets ''."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append(
            (percent_decode(name, plus_is_space=True), percent_decode(value, plus_is_space=True))
        )
    return pairs
