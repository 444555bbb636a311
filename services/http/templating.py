"""The Jinja2 templates of the server-rendered pages (templates/ beside this module), autoescaped."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates


@cache
def environment() -> jinja2.Environment:
    """The one template environment: pages render the same in the app and in the fast-tier tests."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("services.http", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a context variable a handler forgot fails loudly, not as blank text
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(env=environment())


def render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page: templates/`name` with `context` (each template's top comment lists what it expects)."""
    return templates().TemplateResponse(request, name, context, status_code=status_code)
