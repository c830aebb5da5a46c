"""The console at ``/console``: plain HTML, CSS and JavaScript files shipped in the package
(``api/console/``, no build step, nothing fetched from elsewhere), read once at start.

They are files, not API operations: they stay out of the OpenAPI document, need no key, and
hold no data; the page signs in with an access key that it keeps in the tab's session storage
and sends as ``Authorization: Bearer`` to the API. The Content-Security-Policy allows only
these files (no inline script or style, no other origin; Trusted Types forbid HTML built from
strings, since transcripts are what callers say) and no form ever submits, so a key typed into
the page can reach neither a URL nor the access log.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ari_offload.api.errors import ApiError

CONSOLE_DIR = Path(__file__).with_name("console")
CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "media-src 'self' blob:",  # a call's recording, fetched with the key, played as a blob
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
INDEX = "index.html"


def load_console() -> dict[str, tuple[bytes, str]]:
    """name -> (content, content type) of every console file."""
    return {
        path.name: (path.read_bytes(), CONTENT_TYPES[path.suffix])
        for path in sorted(CONSOLE_DIR.iterdir())
        if path.suffix in CONTENT_TYPES
    }


def add_console(app: web.Application) -> None:
    files = load_console()
    if INDEX not in files:
        raise RuntimeError(f"the console is missing from the package: no {CONSOLE_DIR / INDEX}")

    def serve(name: str) -> web.Response:
        body, content_type = files[name]
        return web.Response(
            body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS
        )

    async def index(request: web.Request) -> web.Response:
        return serve(INDEX)

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == INDEX or name not in files:
            raise ApiError.not_found("console file")
        return serve(name)

    app.router.add_get("/console", index)
    app.router.add_get("/console/{name}", asset)
