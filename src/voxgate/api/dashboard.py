"""Dashboard pages: a token login that sets a cookie, then a static single-page app.

The pages are plain HTML/JS/CSS shipped in the package (no build step, no CDN: the dashboard
must work on an air-gapped node) and read the same token-protected REST API as scripts do.
The token is typed once into the login form and kept in an ``HttpOnly; SameSite=Strict``
cookie: scripts on the page cannot read it, other sites cannot make the browser send it, and
``require_token`` already accepts it. Static assets hold no data and are served to anyone;
the app page itself and every byte of call data need the token.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from voxgate.api.auth import request_token, token_ok
from voxgate.observability.metrics import HTTP_AUTH_FAILURES

router = APIRouter(include_in_schema=False)

COOKIE = "voxgate_token"
COOKIE_MAX_AGE_S = 12 * 3600
"""A working day: long enough not to nag an operator, short enough for a shared screen."""

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> bytes | None:
    """A file of the static folder by bare name only (no sub-paths, so no traversal)."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    node = resources.files("voxgate.api").joinpath("static", "dashboard", name)
    return node.read_bytes() if node.is_file() else None


def _page(name: str, status_code: int = 200, error: str = "") -> Response:
    body = _asset(name)
    assert body is not None, f"dashboard page {name} missing from the package"
    if error:
        body = body.replace(b"<!--error-->", f'<p class="error" role="alert">{error}</p>'.encode())
    return Response(body, status_code, media_type=_TYPES[".html"], headers=_HEADERS)


def _signed_in(request: Request) -> bool:
    return token_ok(request_token(request), request.app.state.settings.auth.api_tokens)


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    """The app when signed in, the login form otherwise."""
    return _page("app.html" if _signed_in(request) else "login.html")


@router.post("/dashboard/login")
async def login(request: Request, token: Annotated[str, Form(max_length=1024)]) -> Response:
    """Check the token once and hand the browser a cookie holding it."""
    if not token_ok(token.strip(), request.app.state.settings.auth.api_tokens):
        HTTP_AUTH_FAILURES.labels(surface="dashboard").inc()
        return _page("login.html", 401, "That token is not valid.")
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/dashboard/logout")
async def logout() -> Response:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/dashboard/static/{name}")
async def static(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    body = _asset(name) if suffix in _TYPES else None
    if body is None:
        raise HTTPException(404, "not found")
    return Response(body, media_type=_TYPES[suffix], headers=_HEADERS)


__all__ = ["COOKIE", "router"]
