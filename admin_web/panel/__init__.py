"""The admin panel under ``/admin/``: an aiohttp sub-application with its own
middlewares (security headers, then the session/CSRF gate), Jinja2 templates from
``admin_web/templates/`` and one stylesheet from ``admin_web/static/``.

Adding a page: see docs/ADMIN.md.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from admin_web.keys import SETTINGS
from admin_web.panel import (
    audit,
    auth,
    broadcasts,
    dashboard,
    errors,
    jastipers,
    orders,
    proofs,
    queue,
    security,
    trips,
)

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def build(settings_app: web.Application) -> web.Application:
    """The admin sub-application (mounted at ``/admin/`` by :func:`setup`)."""
    panel = web.Application(
        middlewares=[
            security.security_headers,
            errors.middleware("error.html", "/admin/"),
            security.queries_off_the_loop,
            queue.allowlist,
            auth.gate,
        ]
    )
    panel[security.SIGN_KEY] = security.signing_key(settings_app[SETTINGS])
    aiohttp_jinja2.setup(
        panel,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    panel.router.add_static("/static", STATIC, name="admin.static")
    panel.router.add_get("/login", auth.login_page, name="admin.login")
    panel.router.add_post("/login", auth.login_submit, name="admin.login")
    panel.router.add_post("/logout", auth.logout, name="admin.logout")
    dashboard.setup(panel)
    orders.setup(panel)
    proofs.setup(panel)
    trips.setup(panel)
    jastipers.setup(panel)
    audit.setup(panel)
    broadcasts.setup(panel)
    queue.setup(panel)
    return panel


async def _to_panel(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/admin/")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", _to_panel)
    app.add_subapp("/admin/", build(app))
