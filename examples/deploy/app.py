"""The app docs/deployment.md deploys: GET / says which process answered and who the
client is; /livez answers while the process runs; /readyz answers 503 once the server
is closing (`Server.closing`), so that a load balancer checking it stops sending here.

A handler reaches its server through the module's `server`, so this module is served as
APP:server and configured here, in code (python -m mummy refuses pool flags for a Server).

Run from the repository: .venv-ft/bin/python -m mummy examples.deploy.app:server --port 19080
--processes 2, then curl http://localhost:19080/ and curl -i http://localhost:19080/readyz
"""

import os

import mummy

router = mummy.Router()
TEXT = {"Content-Type": "text/plain"}


@router.get("/")
def index(request: mummy.Request) -> None:
    who = f"pid {os.getpid()}: {request.scheme} from {request.remote_address or 'a Unix socket'}"
    request.respond(200, TEXT, who + "\n")


@router.get("/livez")
def live(request: mummy.Request) -> None:
    request.respond(200, TEXT, "live\n")


@router.get("/readyz")
def ready(request: mummy.Request) -> None:
    if server.closing:
        request.respond(503, {**TEXT, "Retry-After": "1"}, "closing\n")
    else:
        request.respond(200, TEXT, "ready\n")


# The proxies whose X-Forwarded-For/-Proto are believed: nginx or HAProxy on this host
# ("*" when mummy listens on a Unix socket, whose peers have no address).
server = mummy.Server(
    router, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
)

if __name__ == "__main__":
    server.serve(int(os.environ.get("PORT", "8080")))
