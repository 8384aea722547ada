"""Routing without a server: every case of Mummy's tests/test_routers.nim, then ours."""

from collections.abc import Callable
from urllib.parse import unquote

import pytest

import mummy
from mummy.router import RouteMatch, _deep, _match_deep


def good(request: mummy.Request) -> None:
    raise AssertionError("routing tests never call handlers")


def other(request: mummy.Request) -> None:
    raise AssertionError("routing tests never call handlers")


def matches(router: mummy.Router, path: str, method: str = "GET") -> bool:
    return router.match(method, path) is not None


# --- Mummy's tests/test_routers.nim -------------------------------------------------------

BLOCK_1_ROUTES = [
    "/",
    "/page.html",
    "/*.js",
    "/*/index.html",
    "/styles/*.css",
    "/partial/*",
    "/literal*",
    "/*double*",
    "/質問/日本語のURLはどうする",
]
JAPANESE = unquote(
    "/%E8%B3%AA%E5%95%8F/%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AEURL%E3%81%AF%E3%81%A9%E3%81%86%E3%81%99%E3%82%8B"
)


@pytest.fixture(scope="module")
def block_1() -> mummy.Router:
    router = mummy.Router()
    for route in BLOCK_1_ROUTES:
        router.get(route, good)
    return router


@pytest.mark.parametrize("route", ["/**/*", "/**/**", "/**/bad/**/**", "", "abc"])
def test_block_1_invalid_routes_raise(route: str) -> None:
    with pytest.raises(mummy.MummyError, match="invalid route"):
        mummy.Router().get(route, good)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", False),
        ("page.html", False),
        ("/", True),
        ("/a", False),
        ("/page.html", True),
        ("/script.js", True),
        ("/.js", True),
        ("/script.j", False),
        ("/script.html", False),
        ("/script", False),
        ("/min.js", True),
        ("/index.html", False),
        ("/a/index.html", True),
        ("/b/index.html", True),
        ("/a/b/index.html", False),
        ("/styles/index.css", True),
        ("/styles/2/index.css", False),
        ("/styles/script.js", False),
        ("/partial", False),
        ("/partial/something", True),
        ("/partial/more/here", False),
        ("/literal*", True),
        ("/literal*asdf&asdf", True),
        ("/literalasdf", True),
        ("/adoubleb", True),
        ("/longerdoubleevenmore", True),
        ("/doubleb", True),
        ("/adouble", True),
        ("/double", True),
        ("/doubl", False),
        (JAPANESE, True),
    ],
)
def test_block_1_paths(block_1: mummy.Router, path: str, expected: bool) -> None:
    assert matches(block_1, path) is expected


@pytest.mark.parametrize(
    "path", ["/", "/index.html", "/path", "/path/to/thing.html", "/a/b/c/d/e/f/g/h.txt"]
)
def test_block_2_first_registered_route_wins(path: str) -> None:
    router = mummy.Router()
    router.get("/**", good)
    router.get("/**", other)
    assert router.match("GET", path) == RouteMatch(good, {})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", False),
        ("/TEST/page.html", False),  # ** takes at least one segment
        ("/TEST/a/b/c/d.html", False),
        ("/a/TEST/b.html", True),
    ],
)
def test_block_3_deep_wildcards_around_a_literal(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/**/TEST/**", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", False),
        ("/index.html", False),
        ("/path", False),
        ("/path/to/thing.html", False),
        ("/a/b/c/d/e/f/g/h.txt", False),
        ("/a/b/TEST/d/f/g.html", False),
        ("/a/TEST/page.html", False),
        ("/a/b/TEST/d/f/g/TEST2/page.html", True),
        ("/a/TEST/b/TEST2/page.html", True),
        ("/TEST/page.html&3", False),
        ("/TEST/TEST2/", False),
        ("/TEST/TEST2/page.html", False),
        ("/a/TEST/TEST2/", False),
        ("/a/TEST/TEST2/page.html", False),
    ],
)
def test_block_4_three_deep_wildcards(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/**/TEST/**/TEST2/**", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", False),
        ("/page/thing/do.html", True),
        ("/2page/thing/do.html", True),
        ("/wowpage/do.html", False),
        ("/wowpage/a/do.htm", False),
    ],
)
def test_block_5_partial_then_deep_then_partial(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/*page/**/*.html", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a", True), ("/aa", True), ("/somethinga", True), ("/a/", False), ("/something", False)],
)
def test_block_6_suffix_wildcard(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/*a", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/something", True),
        ("/asomething", True),
        ("/somethingb", True),
        ("/asomethingb", True),
        ("/something/", False),
        ("/something/else", False),
    ],
)
def test_block_7_infix_wildcard(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/*something*", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a", False), ("/ab", False), ("/asomethingb", False), ("/a*b", True)],
)
def test_block_8_star_in_the_middle_is_literal(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/a*b", good)
    assert matches(router, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a", False), ("/ab", False), ("/asomethingb", False), ("/a**b", True)],
)
def test_block_9_double_star_inside_a_segment_is_not_a_wildcard(path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get("/**z", good)
    router.get("/a**b", good)
    assert matches(router, path) is expected


def test_block_10_path_params_are_a_plain_dict() -> None:
    router = mummy.Router()
    router.get("/", good)
    found = router.match("GET", "/")
    assert found is not None
    params = found.path_params
    assert type(params) is dict and "foo" not in params
    params["foo"] = "bar"
    assert "foo" in params and len(params) == 1 and params["foo"] == "bar"


def h1(request: mummy.Request) -> None: ...
def h2(request: mummy.Request) -> None: ...
def h3(request: mummy.Request) -> None: ...
def h4(request: mummy.Request) -> None: ...
def h5(request: mummy.Request) -> None: ...


@pytest.mark.parametrize(
    ("path", "handler", "params"),
    [
        ("/123", h1, {"id": "123"}),
        ("/abc/123", h2, {"name": "abc", "id": "123"}),
        ("/a/zzz/b", h3, {"first": "a", "second": "b"}),
        ("/a/wild/b", h4, {"first": "a", "second": "b"}),
        # Params from the failed attempts at earlier routes must not leak in.
        ("/a/b/c/d/literal/bob", h5, {"name": "bob"}),
    ],
)
def test_block_11_named_params(path: str, handler: object, params: dict[str, str]) -> None:
    router = mummy.Router()
    router.get("/@id", h1)
    router.get("/@name/@id", h2)
    router.get("/@first/zzz/@second", h3)
    router.get("/@first/*/@second", h4)
    router.get("/a/**/literal/@name", h5)
    assert router.match("GET", path) == RouteMatch(handler, params)  # type: ignore[arg-type]


# --- beyond Mummy's tests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "path", "expected"),
    [
        # Mummy matches these (it stops once the path runs out); every segment must match.
        ("/a/**/b/c", "/a/x/b", False),
        ("/a/**/b/c", "/a/x/y/b", False),
        ("/a/**/b/c", "/a/x/b/c", True),
        # ...and it never reconsiders how much a ** took; we backtrack.
        ("/a/**/b/c", "/a/x/b/y/b/c", True),
        ("/**/x", "/x/x/x", True),
        ("/**/*.json", "/a.json/b.json", True),
        ("/**/*.json", "/a.json/b.txt", False),
        ("/files/**", "/files", False),
        ("/files/**", "/files/", True),
        ("/files/**", "/files/a/b/c", True),
        ("/*", "/", True),
        ("/*", "//", False),
        ("/*/x", "//x", True),
        ("/@id", "/", True),
        ("/@", "/@", True),
        ("/@", "/x", False),
        ("/***", "/a*b", True),
        ("/***", "/ab", False),
    ],
)
def test_pattern_semantics(route: str, path: str, expected: bool) -> None:
    router = mummy.Router()
    router.get(route, good)
    assert matches(router, path) is expected


def test_params_under_deep_wildcards_come_from_the_final_attempt() -> None:
    router = mummy.Router()
    router.get("/@a/**/x/@b/**/y/@c", good)
    assert router.match("GET", "/1/x/2/x/3/q/y/4/y/5") == RouteMatch(
        good, {"a": "1", "b": "3", "c": "5"}
    )


def test_matching_is_not_exponential_in_deep_wildcards() -> None:
    router = mummy.Router()
    router.get("/**/a/**/b/**/c/**/d", good)
    assert not matches(router, "/" + "/".join(["a", "b", "c"] * 1500))
    # Steps, not seconds: the segment tests the matcher makes on 1500 repeats grow
    # like the path (at most 2x the 10-repeat count, scaled), not like its square.
    (route,) = router._patterns["GET"]

    def steps(repeats: int) -> int:
        calls = 0

        def counted(test: Callable[[str], bool]) -> Callable[[str], bool]:
            def run(segment: str) -> bool:
                nonlocal calls
                calls += 1
                return test(segment)

            return run

        tests = tuple(t if t is _deep else counted(t) for t in route.tests)
        assert _match_deep(tests, ["a", "b", "c"] * repeats, route.first_deep) is None
        return calls

    assert steps(1500) <= 2 * (1500 / 10) * steps(10)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/**/@id", r"\*\* cannot be followed"),
        ("/@id/x/@id", "only once"),
        ("x/y", "must begin with /"),
    ],
)
def test_invalid_routes_say_why(route: str, message: str) -> None:
    with pytest.raises(mummy.MummyError, match=message):
        mummy.Router().get(route, good)


@pytest.mark.parametrize("method", ["", "GET /", "GE T", None])
def test_invalid_methods_raise(method: str) -> None:
    with pytest.raises(mummy.MummyError, match="invalid HTTP method"):
        mummy.Router().add_route(method, "/", good)


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(mummy.MummyError, match="must be callable"):
        mummy.Router().get("/", "index")  # type: ignore[call-overload]


def test_decorators_register_and_return_the_function() -> None:
    router = mummy.Router()

    @router.post("/items/@id")
    def update(request: mummy.Request) -> None: ...

    @router.add_route("PURGE", "/cache")
    def purge(request: mummy.Request) -> None: ...

    assert router.match("POST", "/items/7") == RouteMatch(update, {"id": "7"})
    assert router.match("PURGE", "/cache") == RouteMatch(purge, {})
    assert callable(update) and update.__name__ == "update"


def test_a_decorator_checks_its_route_before_decorating() -> None:
    with pytest.raises(mummy.MummyError, match="must begin with /"):
        mummy.Router().get("nope")


@pytest.mark.parametrize(
    ("method", "register"),
    [
        ("GET", mummy.Router.get),
        ("HEAD", mummy.Router.head),
        ("POST", mummy.Router.post),
        ("PUT", mummy.Router.put),
        ("DELETE", mummy.Router.delete),
        ("OPTIONS", mummy.Router.options),
        ("PATCH", mummy.Router.patch),
    ],
)
def test_each_shorthand_routes_its_method(method, register) -> None:
    router = mummy.Router()
    register(router, "/x", good)
    assert router.match(method, "/x") == RouteMatch(good, {})
    assert router.match("TRACE", "/x") is None
    assert router.match(method.lower(), "/x") is None  # methods are case-sensitive


def test_head_falls_back_to_get_unless_a_head_route_matches() -> None:
    router = mummy.Router()
    router.get("/page", good)
    router.get("/both", good)
    router.head("/both", other)
    assert router.match("HEAD", "/page") == RouteMatch(good, {})
    assert router.match("HEAD", "/both") == RouteMatch(other, {})
    assert router.match("HEAD", "/none") is None


def test_an_earlier_pattern_beats_a_later_literal() -> None:
    router = mummy.Router()
    router.get("/users/@id", good)
    router.get("/users/me", other)
    assert router.match("GET", "/users/me") == RouteMatch(good, {"id": "me"})


def test_an_earlier_literal_beats_a_later_pattern() -> None:
    router = mummy.Router()
    router.get("/users/me", other)
    router.get("/users/@id", good)
    assert router.match("GET", "/users/me") == RouteMatch(other, {})
    assert router.match("GET", "/users/7") == RouteMatch(good, {"id": "7"})


def test_the_first_of_two_identical_literal_routes_wins() -> None:
    router = mummy.Router()
    router.get("/x", good)
    router.get("/x", other)
    assert router.match("GET", "/x") == RouteMatch(good, {})


def test_literal_routes_with_empty_segments() -> None:
    router = mummy.Router()
    router.get("/a/", good)
    router.get("/a//b", other)
    assert router.match("GET", "/a/") == RouteMatch(good, {})
    assert router.match("GET", "/a//b") == RouteMatch(other, {})
    assert router.match("GET", "/a") is None


def test_allowed_methods_in_registration_order_with_head_after_get() -> None:
    router = mummy.Router()
    router.post("/items/@id", good)
    router.get("/items/*", good)
    router.delete("/items/7", good)
    router.put("/other", good)
    assert router.allowed_methods("/items/7") == ["POST", "GET", "HEAD", "DELETE"]
    assert router.allowed_methods("/items/8") == ["POST", "GET", "HEAD"]
    assert router.allowed_methods("/other") == ["PUT"]
    assert router.allowed_methods("/nothing") == []
    assert router.allowed_methods("") == []
    assert router.allowed_methods("*") == []


def test_the_number_of_literal_routes_does_not_change_the_cost_of_a_match() -> None:
    router = mummy.Router()
    for i in range(20_000):
        router.get(f"/route/{i}", good)
    found = router.match("GET", "/route/19999")
    assert found == RouteMatch(good, {})
    assert router._patterns == {}  # literal routes are looked up in a dict, not scanned
