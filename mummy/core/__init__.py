"""The engine: IO loop, ring, worker pool, connection state and HTTP/1.1 protocol.

Nothing here is imported by users; the public API lives in `mummy`.
"""
