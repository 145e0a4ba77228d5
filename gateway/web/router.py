"""``GET /`` (the page), its assets under ``/web/``, and ``/docs``: Swagger UI served from the
gateway itself (the files ``fastapi-offline`` ships), never from a CDN. There is no ``/redoc``:
ReDoc's bundle fetches its logo from its vendor's CDN, and Swagger UI already shows it all.

The page uses the public API only; nothing here knows about users or records."""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from gateway.config import Settings

STATIC = Path(__file__).parent / "static"
ASSETS_PATH = "/web"
DOCS_ASSETS_PATH = "/docs-assets"
# fastapi-offline's copy of swagger-ui-dist 5 (FastAPI's documented self-hosting of docs assets).
_DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))


def page_headers(public_base_url: str | None) -> dict[str, str]:
    """The page loads nothing from elsewhere, and says so to the browser. Record links are
    absolute (``PUBLIC_BASE_URL`` when set), so the player may fetch from there too."""
    media = f"'self' {public_base_url}" if public_base_url else "'self'"
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src {media}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # A new version of the page is picked up at once (the assets revalidate by ETag).
        "Cache-Control": "no-cache",
    }


def install_web(app: FastAPI, settings: Settings) -> None:
    """The page and the docs. The app is built with ``docs_url=None, redoc_url=None``."""
    headers = page_headers(settings.public_base_url)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC), name="web")
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=headers)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/icon.svg",
        )
