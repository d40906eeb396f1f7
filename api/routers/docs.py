"""api.routers.docs: the OpenAPI documentation page, with Swagger UI served from this server (no CDN).

The page has no inline script (the pages' Content-Security-Policy forbids it): Swagger UI starts from
/static/docs/swagger-init.js, which reads the OpenAPI address from the page.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

SWAGGER_STATIC = "/static/vendor/swagger-ui-dist"


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for /openapi.json; its scripts and styles come from the npm-installed swagger-ui-dist."""
    openapi_url = escape(request.app.openapi_url or "/openapi.json")
    title = escape(f"{request.app.title} — API 文档")
    html = f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="{SWAGGER_STATIC}/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{SWAGGER_STATIC}/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""
    return HTMLResponse(html)
