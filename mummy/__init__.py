"""mummy: a multi-threaded HTTP/1.1 server for free-threaded Python.

All socket IO is multiplexed on one epoll thread; complete requests run on a
pool of worker threads, truly in parallel on CPython 3.13t.

>>> import mummy
>>> def index(request: mummy.Request) -> None:
...     request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")
>>> mummy.Server(index).serve(8080)
"""

from mummy import multipart, wsgi
from mummy.errors import MummyError
from mummy.filelogger import FileLogger
from mummy.headers import Headers, QueryParams
from mummy.request import Request
from mummy.router import Router
from mummy.server import Server
from mummy.sse import EventStream
from mummy.static import StaticFiles
from mummy.websocket import Event, Message, MessageKind, WebSocket

__version__ = "0.1.0"

__all__ = [
    "Event",
    "EventStream",
    "FileLogger",
    "Headers",
    "Message",
    "MessageKind",
    "MummyError",
    "QueryParams",
    "Request",
    "Router",
    "Server",
    "StaticFiles",
    "WebSocket",
    "__version__",
    "multipart",
    "wsgi",
]
