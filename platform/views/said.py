"""What a page says once an action is done ("Take: done on T-000042."): set on the redirect
that follows a POST, in a short-lived cookie, and shown by the next page, which clears it.
The text is a sentence of ours, shown through the autoescaped base template."""
from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "deskbase_said"
LONGEST = 300


def say(response: Response, text: str) -> Response:
    """Have the next page say `text`; the response is given back."""
    response.set_cookie(COOKIE, quote(text[:LONGEST]), max_age=60, path="/", httponly=True, samesite="lax")
    return response


def heard(request: Request) -> str:
    """What the page should say, if anything."""
    return unquote(request.cookies.get(COOKIE, ""))[:LONGEST]


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")
