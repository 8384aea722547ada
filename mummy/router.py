"""`Router`: send each request to a handler chosen by its method and path.

A route's path is a pattern, split on "/" into segments, as in Mummy:

- ``/users/list``: literal segments, compared exactly with the decoded path.
- ``@name``: any one segment, captured into ``request.path_params["name"]``.
- ``*``: any one segment.
- ``*.json``, ``page_*``, ``*part*``: one segment that ends with, starts with or
  contains the text between the stars.
- ``**``: one or more whole segments (``/**``, ``/static/**``, ``/**/index.html``).
  It cannot be directly followed by ``*``, ``**`` or ``@name``: which segments
  each would take is ambiguous.

A route matches a path only if it accounts for every segment of it, trying
every length for each ``**``; so, unlike in Mummy, ``/a/**/b/c`` does not match
``/a/x/b`` and does match ``/a/x/b/y/b/c``. Segments may be empty: ``/a/`` is
``a`` then an empty segment, which ``*`` and ``@name`` match. Routes are tried in
the order they were added and the first match wins.

Literal routes sit in a dict keyed by path, so the cost of routing a request does
not grow with their number; only pattern routes added before the literal hit are
tried, in order, to keep first-match-wins.
"""

from __future__ import annotations

import enum
import itertools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeVar, overload

from mummy.errors import MummyError

if TYPE_CHECKING:
    from mummy.request import Request

log = logging.getLogger("mummy")

Handler = Callable[["Request"], None]
ErrorHandler = Callable[["Request", Exception], None]
H = TypeVar("H", bound=Handler)

# RFC 9110 §9.1: a method is a token.
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Kind(enum.Enum):
    LITERAL = "literal"
    PARAM = "@name"
    ANY = "*"
    PREFIX = "text*"
    SUFFIX = "*text"
    INFIX = "*text*"
    DEEP = "**"


def _any(segment: str) -> bool:
    return True


def _deep(segment: str) -> bool:
    """The placeholder test of a `**` segment, which `_match_deep` handles."""
    return True


@dataclass(slots=True, frozen=True)
class _Segment:
    kind: _Kind
    text: str  # the literal, the param's name, or the text around a partial wildcard
    test: Callable[[str], bool]  # whether one path segment matches (but see `_deep`)

    @classmethod
    def parse(cls, segment: str) -> _Segment:
        if segment == "**":
            return cls(_Kind.DEEP, "", _deep)
        if segment == "*":
            return cls(_Kind.ANY, "", _any)
        if len(segment) >= 2 and segment[0] == "@":
            return cls(_Kind.PARAM, segment[1:], _any)
        if len(segment) >= 2 and segment[0] == "*" and segment[-1] == "*":
            infix = segment[1:-1]
            return cls(_Kind.INFIX, infix, lambda s: infix in s)
        if len(segment) >= 2 and segment[0] == "*":
            suffix = segment[1:]
            return cls(_Kind.SUFFIX, suffix, lambda s: s.endswith(suffix))
        if len(segment) >= 2 and segment[-1] == "*":
            prefix = segment[:-1]
            return cls(_Kind.PREFIX, prefix, lambda s: s.startswith(prefix))
        return cls(_Kind.LITERAL, segment, segment.__eq__)


@dataclass(slots=True, frozen=True)
class _Route:
    index: int  # order of registration: the lower index wins
    method: str
    pattern: str
    handler: Handler
    prefix: str  # what every path this route matches starts with: a cheap first check
    tests: tuple[Callable[[str], bool], ...]  # one per segment
    first_deep: int  # index of the first `**` segment; -1 if there is none
    params: tuple[tuple[int, str], ...]  # (segment index, name) of each @name

    @classmethod
    def build(
        cls, index: int, method: str, pattern: str, handler: Handler, segments: Sequence[_Segment]
    ) -> _Route:
        prefix = "/"
        for segment in segments:
            if segment.kind is not _Kind.LITERAL:
                if segment.kind is _Kind.PREFIX:
                    prefix += segment.text
                break
            prefix += segment.text + "/"
        kinds = [s.kind for s in segments]
        return cls(
            index=index,
            method=method,
            pattern=pattern,
            handler=handler,
            prefix=prefix,
            tests=tuple(s.test for s in segments),
            first_deep=kinds.index(_Kind.DEEP) if _Kind.DEEP in kinds else -1,
            params=tuple((i, s.text) for i, s in enumerate(segments) if s.kind is _Kind.PARAM),
        )

    def match(self, path: Sequence[str]) -> dict[str, str] | None:
        """The path params if this route matches the path's segments, else None."""
        tests = self.tests
        if self.first_deep < 0:
            if len(path) != len(tests):
                return None
            for i, test in enumerate(tests):
                if not test(path[i]):
                    return None
            return {name: path[i] for i, name in self.params}
        if len(path) < len(tests):
            return None
        bound = _match_deep(tests, path, self.first_deep)
        if bound is None:
            return None
        return {name: path[bound[i]] for i, name in self.params}


def _match_deep(
    tests: Sequence[Callable[[str], bool]], path: Sequence[str], first_deep: int
) -> list[int] | None:
    """For each route segment, the index of the path segment it matched (for `**`,
    the first of its run), or None when the route does not match the whole path.

    Glob matching with backtracking to the most recent `**` only; that suffices
    because every other pattern segment matches exactly one path segment. So this
    takes O(len(route) * len(path)) steps whatever the path, where a regex with
    several `**` could take polynomially many more.
    """
    m, n = len(tests), len(path)
    bound = list(range(m))
    for i in range(first_deep):  # before the first `**`, segments pair up one to one
        if not tests[i](path[i]):
            return None
    i = j = first_deep
    star = -1  # index in `tests` of the last `**` met
    grown = 0  # the path index where that `**` currently ends (exclusive)
    while True:
        if i == m and j == n:
            return bound
        if i < m and j < n:
            test = tests[i]
            if test is _deep:
                # `**` takes one segment now; it grows on backtracking.
                star, bound[i] = i, j
                i += 1
                j += 1
                grown = j
                continue
            if test(path[j]):
                bound[i] = j
                i += 1
                j += 1
                continue
        if star < 0 or grown >= n:
            return None
        grown += 1
        i, j = star + 1, grown


def _parse_pattern(method: str, pattern: str) -> tuple[_Segment, ...]:
    """The segments of a route; MummyError for an invalid method or pattern."""
    if not isinstance(method, str) or _METHOD.fullmatch(method) is None:
        raise MummyError(f"invalid HTTP method {method!r}; use e.g. 'GET' or 'POST'")
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise MummyError(f"invalid route {pattern!r}: routes must begin with /")
    segments = tuple(_Segment.parse(s) for s in pattern[1:].split("/"))
    for before, after in itertools.pairwise(segments):
        if before.kind is _Kind.DEEP and after.kind in (_Kind.ANY, _Kind.DEEP, _Kind.PARAM):
            raise MummyError(
                f"invalid route {pattern!r}: ** cannot be followed by *, ** or @name; "
                "put a literal segment (or one like *.html) after it"
            )
    names = [s.text for s in segments if s.kind is _Kind.PARAM]
    if len(set(names)) != len(names):
        raise MummyError(f"invalid route {pattern!r}: each @name may appear only once")
    return segments


class RouteMatch(NamedTuple):
    """What `Router.match` found: the route's handler and the path params."""

    handler: Handler
    path_params: dict[str, str]


def not_found(request: Request) -> None:
    """The default `Router.not_found_handler`: 404 with a small HTML body."""
    request.respond(404, {"Content-Type": "text/html"}, "<h1>Not Found</h1>")


def log_and_respond_500(request: Request, exc: Exception) -> None:
    """The default `Router.error_handler`: log the traceback on the "mummy"
    logger and answer 500 if the handler had not responded yet."""
    log.exception("handler raised on %s %s", request.method, request.uri, exc_info=exc)
    if not request.responded:
        try:
            request.respond(500, {"Content-Type": "text/html"}, "<h1>Internal Server Error</h1>")
        except MummyError:
            pass  # the handler responded from another thread in the meantime


class Router:
    """Routes requests to handlers by method and path; a Router is itself a handler.

    >>> router = mummy.Router()
    >>> router.get("/objects/@id", lambda r: r.respond(200, body=r.path_params["id"]))
    >>> mummy.Server(router).serve(8080)

    The shorthands also work as decorators: ``@router.post("/upload")``.

    HEAD requests with no HEAD route of their own are served by the GET route
    (the server sends its headers and drops the body). A path no route matches
    goes to `not_found_handler` (404); a path some route matches, but not with
    this method, goes to `method_not_allowed_handler` (405, with an Allow header).
    Any exception raised while routing or in a handler goes to
    `error_handler(request, exc)`. All three are attributes you may replace.

    Add routes before serving. Adding one while serving is safe (routing reads
    the tables without a lock; adding takes `_lock`), but a request that races
    the addition may or may not see the new route.
    """

    not_found_handler: Handler
    method_not_allowed_handler: Handler
    error_handler: ErrorHandler

    def __init__(
        self,
        *,
        not_found_handler: Handler | None = None,
        method_not_allowed_handler: Handler | None = None,
        error_handler: ErrorHandler | None = None,
    ) -> None:
        self.not_found_handler = not_found_handler or not_found
        self.method_not_allowed_handler = (
            method_not_allowed_handler or self._respond_method_not_allowed
        )
        self.error_handler = error_handler or log_and_respond_500
        self._lock = threading.Lock()
        self._count = 0
        # path -> method -> the first literal route for them.
        self._literal: dict[str, dict[str, _Route]] = {}
        # method -> the pattern routes for it, in registration order.
        self._patterns: dict[str, list[_Route]] = {}

    def __call__(self, request: Request) -> None:
        """Route `request`: this is what makes a Router a handler for `Server`."""
        try:
            found = self.match(request.method, request.path)
            if found is not None:
                if found.path_params:
                    request.path_params.update(found.path_params)
                found.handler(request)
            elif self.allowed_methods(request.path):
                self.method_not_allowed_handler(request)
            else:
                self.not_found_handler(request)
        except Exception as exc:
            self.error_handler(request, exc)

    # --- routing ------------------------------------------------------------------

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The first route for `method` matching the decoded `path`, or None.
        A HEAD request falls back to the GET routes when no HEAD route matches."""
        found = self._find(method, path)
        if found is None and method == "HEAD":
            found = self._find("GET", path)
        return found

    def allowed_methods(self, path: str) -> list[str]:
        """The methods some route accepts for `path`, in registration order
        (HEAD is added after GET): the Allow header of a 405."""
        first: dict[str, int] = {}
        # list(): another thread may be adding a route (see the class docstring).
        for method, route in list(self._literal.get(path, {}).items()):
            first[method] = route.index
        segments = path[1:].split("/")
        for method, routes in list(self._patterns.items()):
            for route in routes:
                if method in first and route.index > first[method]:
                    break
                if path.startswith(route.prefix) and route.match(segments) is not None:
                    first[method] = route.index
                    break
        methods = sorted(first, key=first.__getitem__)
        if "GET" in first and "HEAD" not in first:
            methods.insert(methods.index("GET") + 1, "HEAD")
        return methods

    def _find(self, method: str, path: str) -> RouteMatch | None:
        by_method = self._literal.get(path)
        literal = by_method.get(method) if by_method is not None else None
        segments = None
        for route in self._patterns.get(method, ()):
            # First match wins: a pattern route added after the literal hit loses.
            if literal is not None and route.index > literal.index:
                break
            if not path.startswith(route.prefix):
                continue
            if segments is None:
                segments = path[1:].split("/")
            params = route.match(segments)
            if params is not None:
                return RouteMatch(route.handler, params)
        if literal is not None:
            return RouteMatch(literal.handler, {})
        return None

    def _respond_method_not_allowed(self, request: Request) -> None:
        allow = ", ".join(self.allowed_methods(request.path))
        request.respond(
            405, {"Content-Type": "text/html", "Allow": allow}, "<h1>Method Not Allowed</h1>"
        )

    # --- registration ---------------------------------------------------------------

    @overload
    def add_route(self, method: str, path: str, handler: None = None) -> Callable[[H], H]: ...
    @overload
    def add_route(self, method: str, path: str, handler: Handler) -> None: ...
    def add_route(
        self, method: str, path: str, handler: Handler | None = None
    ) -> Callable[[H], H] | None:
        """Route `method` requests whose path matches the pattern `path` to
        `handler`; without a handler, return a decorator that does. Raises
        MummyError for an invalid method or pattern."""
        if handler is not None:
            self._add(method, path, handler)
            return None
        _parse_pattern(method, path)  # an invalid route fails here, not when decorating

        def decorator(function: H) -> H:
            self._add(method, path, function)
            return function

        return decorator

    def _add(self, method: str, path: str, handler: Handler) -> None:
        segments = _parse_pattern(method, path)
        if not callable(handler):
            raise MummyError(f"the handler for {method} {path} must be callable, got {handler!r}")
        with self._lock:
            route = _Route.build(self._count, method, path, handler, segments)
            self._count += 1
            if all(s.kind is _Kind.LITERAL for s in segments):
                # A later literal route for the same method and path never wins.
                self._literal.setdefault(path, {}).setdefault(method, route)
            else:
                self._patterns.setdefault(method, []).append(route)

    @overload
    def get(self, path: str) -> Callable[[H], H]: ...
    @overload
    def get(self, path: str, handler: Handler) -> None: ...
    def get(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route GET (and, unless a HEAD route matches first, HEAD) requests."""
        return self.add_route("GET", path, handler)

    @overload
    def head(self, path: str) -> Callable[[H], H]: ...
    @overload
    def head(self, path: str, handler: Handler) -> None: ...
    def head(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route HEAD requests."""
        return self.add_route("HEAD", path, handler)

    @overload
    def post(self, path: str) -> Callable[[H], H]: ...
    @overload
    def post(self, path: str, handler: Handler) -> None: ...
    def post(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route POST requests."""
        return self.add_route("POST", path, handler)

    @overload
    def put(self, path: str) -> Callable[[H], H]: ...
    @overload
    def put(self, path: str, handler: Handler) -> None: ...
    def put(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route PUT requests."""
        return self.add_route("PUT", path, handler)

    @overload
    def delete(self, path: str) -> Callable[[H], H]: ...
    @overload
    def delete(self, path: str, handler: Handler) -> None: ...
    def delete(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route DELETE requests."""
        return self.add_route("DELETE", path, handler)

    @overload
    def options(self, path: str) -> Callable[[H], H]: ...
    @overload
    def options(self, path: str, handler: Handler) -> None: ...
    def options(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route OPTIONS requests."""
        return self.add_route("OPTIONS", path, handler)

    @overload
    def patch(self, path: str) -> Callable[[H], H]: ...
    @overload
    def patch(self, path: str, handler: Handler) -> None: ...
    def patch(self, path: str, handler: Handler | None = None) -> Callable[[H], H] | None:
        """Route PATCH requests."""
        return self.add_route("PATCH", path, handler)

    def __repr__(self) -> str:
        return f"<Router with {self._count} routes>"
