"""`python -m mummy module:attr`: serve a Server, a handler or Router, or a WSGI app."""

import argparse
import importlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from mummy import Server, __version__
from mummy.core.config import DEFAULT_MAX_WORKERS, DEFAULT_MIN_WORKERS
from mummy.errors import MummyError


def load(spec: str) -> object:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise MummyError(f"expected module:attribute (e.g. app:server), got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MummyError(f"cannot import {module_name!r}: {exc}") from None
    target: object = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise MummyError(f"module {module_name!r} has no attribute {attr!r}") from None
    return target


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mummy",
        description=(
            "Serve APP with mummy: one epoll IO thread, your handlers on a pool of worker "
            "threads (truly parallel on free-threaded Python)."
        ),
        epilog="Example: python3.13t -m mummy app:router --host 0.0.0.0 --port 8000 --workers 40",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "app",
        metavar="APP",
        help="module:attribute — a mummy.Server, a handler or "
        "Router, or with --wsgi a WSGI application",
    )
    p.add_argument("--wsgi", action="store_true", help="APP is a WSGI (PEP 3333) application")
    bind = p.add_argument_group("binding")
    bind.add_argument("--host", default="localhost", help="address to bind; '::' is dual-stack")
    bind.add_argument("--port", type=int, default=8080, help="port to bind")
    bind.add_argument("--uds", default=None, help="bind to this Unix domain socket instead")
    bind.add_argument("--fd", type=int, default=None, help="serve an inherited listening fd")
    bind.add_argument("--reuse-port", action="store_true", help="set SO_REUSEPORT")
    scale = p.add_argument_group("processes and IO threads (docs/deployment.md)")
    scale.add_argument(
        "--processes",
        type=int,
        default=None,
        help="a supervisor binds the socket and runs N child processes on it, restarting "
        "any that dies; SIGHUP restarts them one at a time",
    )
    scale.add_argument(
        "--io-threads",
        type=int,
        default=1,
        help="event loops per process, each on its own thread with its own connections",
    )
    # Set by the supervisor for its children: the inherited socket, the readiness pipe.
    p.add_argument("--child-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--metrics-fd", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="exactly N worker threads; unset: an adaptive pool (--min-workers..--max-workers)",
    )
    p.add_argument(
        "--min-workers",
        type=int,
        default=None,
        help=f"adaptive pool: threads kept hot; unset: 2 x CPUs ({DEFAULT_MIN_WORKERS} here). It "
        "grows while requests wait and the CPU is idle (handlers blocking)",
    )
    p.add_argument(
        "--max-workers",
        type=int,
        default=None,
        help=f"adaptive pool: at most N threads; unset: {DEFAULT_MAX_WORKERS}",
    )
    p.add_argument(
        "--worker-idle-timeout",
        type=float,
        default=30.0,
        help="adaptive pool: a thread idle this many seconds retires",
    )
    logs = p.add_argument_group("logging")
    logs.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error", "critical"]
    )
    logs.add_argument("--access-log", action="store_true", help="log every request")
    limits = p.add_argument_group("limits and timeouts (seconds)")
    limits.add_argument("--max-headers-len", type=int, default=8192)
    limits.add_argument("--max-body-len", type=int, default=1 << 20)
    limits.add_argument("--max-connections", type=int, default=50_000)
    limits.add_argument("--header-timeout", type=float, default=10.0)
    limits.add_argument("--body-timeout", type=float, default=30.0)
    limits.add_argument("--keep-alive-timeout", type=float, default=30.0)
    limits.add_argument("--queue-timeout", type=float, default=None)
    p.add_argument("--no-compress", action="store_true", help="never compress responses")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus metrics on http://METRICS_ADDRESS:PORT/metrics, a listener of its own "
        "(needs the metrics extra: pip install 'mummy-server[metrics]')",
    )
    p.add_argument("--metrics-address", default="127.0.0.1", help="where --metrics-port listens")
    p.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxies trusted for X-Forwarded-*/Forwarded: they set request.remote_address "
        "and request.scheme (with --wsgi: REMOTE_ADDR and wsgi.url_scheme); '*' for all",
    )
    p.add_argument(
        "--reload",
        action="store_true",
        help="development: restart when a .py file under the current directory changes",
    )
    p.add_argument("--version", action="version", version=f"mummy {__version__}")
    return p


def build_server(args: argparse.Namespace) -> Server:
    target = load(args.app)
    if isinstance(target, Server):
        pool_flags = (args.workers, args.min_workers, args.max_workers)
        if any(flag is not None for flag in pool_flags) or args.wsgi or args.io_threads != 1:
            raise MummyError("APP is a Server already: configure it in code, not with flags")
        return target
    if args.wsgi:
        from mummy.wsgi import WSGIAdapter

        target = WSGIAdapter(
            target,  # type: ignore[arg-type]
            server_name=args.host,
            server_port=args.port,
        )
    if not callable(target):
        raise MummyError(f"{args.app} is not callable: pass a handler, a Router or a Server")
    return Server(
        target,
        workers=args.workers,
        min_workers=args.min_workers,
        max_workers=args.max_workers,
        worker_idle_timeout=args.worker_idle_timeout,
        max_headers_len=args.max_headers_len,
        max_body_len=args.max_body_len,
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        queue_timeout=args.queue_timeout,
        compress=not args.no_compress,
        access_log=args.access_log,
        forwarded_allow_ips=args.forwarded_allow_ips,
        io_threads=args.io_threads,
    )


def source_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*.py"):
        if not any(part.startswith(".") or part == "__pycache__" for part in path.parts):
            yield path


def reload_loop(argv: list[str]) -> int:
    """Run the server in a child process; restart it when a source file changes."""
    child_argv = [sys.executable, "-m", "mummy", *[a for a in argv if a != "--reload"]]
    root = Path.cwd()

    def snapshot() -> dict[Path, float]:
        return {p: p.stat().st_mtime for p in source_files(root)}

    while True:
        before = snapshot()
        child = subprocess.Popen(child_argv)
        try:
            while child.poll() is None and snapshot() == before:
                time.sleep(0.5)
        except KeyboardInterrupt:
            child.terminate()
            return child.wait()
        if child.poll() is not None:
            return child.returncode
        logging.getLogger("mummy").info("source changed: restarting")
        child.terminate()
        child.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.child_fd is None and args.processes is not None:
            return supervise(args, argv)
        if args.reload:
            return reload_loop(argv)
        server = build_server(args)
        if args.ready_fd is not None:
            threading.Thread(
                target=tell_ready, args=(server, args.ready_fd), name="mummy-ready", daemon=True
            ).start()
        metrics = {"metrics_port": args.metrics_port, "metrics_address": args.metrics_address}
        if args.child_fd is not None:
            pusher = None
            if args.metrics_fd is not None:  # counts go to the supervisor's /metrics
                from mummy.metrics import push_snapshots

                server._count_for_supervisor = True
                pusher = threading.Thread(
                    target=push_snapshots, args=(server, args.metrics_fd), daemon=True
                )
                pusher.start()
            server.serve(args.port, args.host, fd=args.child_fd)
            if pusher is not None:
                pusher.join(5.0)  # its last snapshot
        else:
            bind = {"uds": args.uds, "fd": args.fd, "reuse_port": args.reuse_port}
            server.serve(args.port, args.host, **bind, **metrics)
    except MummyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def supervise(args: argparse.Namespace, argv: list[str]) -> int:
    from mummy.core.listener import make_listener
    from mummy.supervisor import Supervisor

    if args.processes < 1:
        raise MummyError(f"--processes must be at least 1, got {args.processes}")
    if args.reload:
        raise MummyError("--reload runs one process: drop --processes while developing")
    listener = make_listener(
        args.port, args.host, uds=args.uds, fd=args.fd, reuse_port=args.reuse_port
    )
    metrics = None if args.metrics_port is None else (args.metrics_port, args.metrics_address)
    return Supervisor(argv, args.processes, listener, metrics=metrics).run()


def tell_ready(server: Server, fd: int) -> None:
    """A supervised child: one byte on the supervisor's pipe once listening."""
    try:
        server.wait_until_ready(60.0)
        os.write(fd, b"1")
    except (MummyError, OSError):
        pass
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
