"""The interactive API docs page (`/docs`), offline: Swagger UI's script and stylesheet are served from this
package (static/swagger-ui/, vendored from npm `swagger-ui-dist`), not from the CDN FastAPI's default page uses,
and the favicon too, so the page loads nothing from the internet."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_PATH = "/docs"
ASSETS = "/static/swagger-ui"


def add_docs_page(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at /docs from the app's own /static (mounted by create_app)."""

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    app.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
