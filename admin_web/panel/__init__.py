"""The admin panel under ``/admin/``: a sub-application of the web shell
(``admin_web/shell/``: security headers, error pages, the session/CSRF gate, the
templates in ``admin_web/templates/``) through the door in ``auth.py``, with the
queue page's address fence before the gate and one stylesheet from
``admin_web/static/`` (the jastiper panel's pages use it too).

Adding a page: see docs/ADMIN.md.
"""

from __future__ import annotations

from aiohttp import web

from admin_web import shell
from admin_web.panel import (
    audit,
    auth,
    broadcasts,
    dashboard,
    jastipers,
    orders,
    proofs,
    queue,
    trips,
)


def build(settings_app: web.Application) -> web.Application:
    """The admin sub-application (mounted at ``/admin/`` by :func:`setup`)."""
    panel = shell.application(settings_app, auth.DOOR, before_gate=(queue.allowlist,))
    panel.router.add_static("/static", shell.STATIC, name="admin.static")
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
