"""The web console: a single-page app built from console/ into ``dist/`` in this package.

``pip install`` ships the built files, so no user needs Node. The server answers every
console path with index.html (the app routes in the browser), serves the hashed assets
with long cache lifetimes, and sets headers that keep the console out of other sites'
frames, except the public app pages (/s/...), which exist to be embedded.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DIST = Path(__file__).parent / "dist"

# First path segments that belong to the console (the browser routes within them).
CONSOLE_SECTIONS = frozenset(
    {
        "",
        "hub",
        "playground",
        "apps",
        "knowledge",
        "refinery",
        "keys",
        "s",
        "studio",
        "insight",
        "notifications",
        "feed",
        "u",
    }
)

_CSP = (
    "default-src 'self'; img-src 'self' data: blob: https:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors {frames}"
)

_NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>danlu</title>
<h1>danlu is running</h1><p>The console has not been built in this checkout: run
<code>make console</code> (needs Node.js 20) and reload.
The API is at <a href="/docs">/docs</a>.</p>
<p>控制台尚未构建：请运行 <code>make console</code> 后刷新。
API 文档见 <a href="/docs">/docs</a>。</p>"""


def _page_headers(path: str) -> dict[str, str]:
    embeddable = path == "/s" or path.startswith("/s/")
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _CSP.format(frames="*" if embeddable else "'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if not embeddable:
        headers["X-Frame-Options"] = "DENY"
    return headers


def install_console(app: FastAPI, dist: Path = DIST) -> None:
    """Serve the built console at / (call after every API router is included)."""
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="console-assets")

    @app.get("/favicon.svg", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(dist / "favicon.svg", headers={"Cache-Control": "max-age=86400"})

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        # Loaded by other sites to add a chat bubble for a published app.
        return FileResponse(
            dist / "widget.js",
            media_type="text/javascript",
            headers={"Cache-Control": "max-age=300", "Access-Control-Allow-Origin": "*"},
        )

    async def page(request: Request) -> Response:
        return _index(index, request.url.path)

    # One route per section rather than a catch-all, so API paths keep their own 404s and
    # 405s, and the hub's file routes (/{owner}/{name}/resolve/...) stay theirs.
    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    for section in sorted(CONSOLE_SECTIONS - {""}):
        app.add_api_route(f"/{section}", page, methods=["GET"], include_in_schema=False)
        app.add_api_route(
            f"/{section}/{{rest:path}}", page, methods=["GET"], include_in_schema=False
        )


def _index(index: Path, path: str) -> Response:
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, headers=_page_headers(path))
    return FileResponse(index, media_type="text/html", headers=_page_headers(path))
