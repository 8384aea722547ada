"""Handlers with extra parameters: `authenticated` turns `handler(request, user_id)`
into a plain handler that checks the `Access-Token` header first.

GET / is public; GET /me and GET /me/settings need `Access-Token: abc` (user 123)
and answer 401 `Invalid token` without it.

Run: .venv-ft/bin/python examples/custom_handler_params.py,
then curl -H 'Access-Token: abc' http://localhost:8080/me
"""

import functools
import os
from collections.abc import Callable

import mummy

# Access token -> user id; a real app would look tokens up in its database.
TOKENS = {"abc": "123"}

UserHandler = Callable[[mummy.Request, str], None]


def authenticated(handler: UserHandler) -> Callable[[mummy.Request], None]:
    @functools.wraps(handler)
    def check_token(request: mummy.Request) -> None:
        user_id = TOKENS.get(request.headers.get("Access-Token", ""))
        if user_id is None:
            request.respond(401, {"Content-Type": "text/plain"}, "Invalid token")
        else:
            handler(request, user_id)

    return check_token


router = mummy.Router()


@router.get("/")
def index(request: mummy.Request) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, "Hello, World!")


@router.get("/me")
@authenticated
def profile(request: mummy.Request, user_id: str) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"Hello User {user_id}")


@router.get("/me/settings")
@authenticated
def settings(request: mummy.Request, user_id: str) -> None:
    request.respond(200, {"Content-Type": "text/plain"}, f"Settings for User {user_id}")


if __name__ == "__main__":
    mummy.Server(router).serve(int(os.environ.get("PORT", "8080")))
