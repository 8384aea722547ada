"""Logging to a file: each request logs a debug line, GET /info an info line and
GET /error an error line; only INFO and above reach `<pid>.txt` in the working directory.

Debug and info lines are written by the FileLogger's own thread, so handlers never
wait for the disk; an error line is in the file before `log.error` returns.

Run: .venv-ft/bin/python examples/logging_file.py, then curl http://localhost:8080/error
and look at the .txt file named after the server's process id.
"""

import logging
import os

import mummy

# A child of the "mummy" logger, to which the server attaches its log_handler.
log = logging.getLogger("mummy.example")


def handler(request: mummy.Request) -> None:
    log.debug("%s %s", request.method, request.uri)
    if request.path == "/info":
        log.info("info from %s", request.remote_address)
    elif request.path == "/error":
        log.error("error from %s", request.remote_address)
    request.respond(200, {"Content-Type": "text/plain"}, "Done")


if __name__ == "__main__":
    logging.getLogger("mummy").setLevel(logging.DEBUG)  # the handler's level filters
    file_logger = mummy.FileLogger(f"{os.getpid()}.txt", level=logging.INFO)
    try:
        mummy.Server(handler, log_handler=file_logger).serve(int(os.environ.get("PORT", "8080")))
    finally:
        file_logger.close()
