"""The benchmark drivers, in the order `./bench/run` runs them. Each module has a TITLE
and `plan(ctx) -> (groups, settings)`: the servers x workloads it measures, started and
measured round after round by harness.runner."""

NAMES = (
    "http1",
    "plumbing",
    "h2",
    "websocket",
    "streams",
    "static",
    "db",
    "compression",
    "scaling",
    "loops",
    "metrics",
    "slowloris",
    "soak",
    "micro",
)
