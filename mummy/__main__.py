"""`python -m mummy module:attr`: serve a Server or a handler from a module."""

import argparse
import importlib
import logging
import sys

from mummy import Server, __version__
from mummy.errors import MummyError


def load(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise MummyError(f"expected module:attribute (e.g. app:server), got {spec!r}")
    sys.path.insert(0, ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MummyError(f"cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise MummyError(f"module {module_name!r} has no attribute {attr!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mummy",
        description="Serve a mummy Server or request handler (module:attribute).",
    )
    parser.add_argument("app", help="module:attribute, a mummy.Server or a handler/Router")
    parser.add_argument("--host", default="localhost", help="address to bind (default: localhost)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default: 8080)")
    parser.add_argument(
        "--workers", type=int, default=None, help="worker threads (default: 10 x CPUs)"
    )
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    parser.add_argument("--version", action="version", version=f"mummy {__version__}")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        target = load(args.app)
        if isinstance(target, Server):
            if args.workers is not None:
                raise MummyError("--workers cannot change a Server built by the module")
            server = target
        else:
            server = Server(target, workers=args.workers)  # type: ignore[arg-type]
        server.serve(args.port, args.host)
    except MummyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
