"""Rendering an admin page: the admin panel's nav and who is logged in, over the
shell's base context (``admin_web/shell/render.py``).

A handler calls :func:`render` with its template and its own values; the base layout
gets the admin, the CSRF token, the locale, the translator ``_`` and the nav.
"""

from __future__ import annotations

from aiohttp import web

from admin_web.shell.door import Nav
from locales import _, pgettext
from storage.models import AdminUser

# what the gate (admin_web/shell/gate.py) leaves on each request for the page
ADMIN: web.RequestKey[AdminUser] = web.RequestKey("admin", AdminUser)

# (route name, label msgid); pages not built yet still have their link
NAV: tuple[tuple[str, str], ...] = (
    ("admin.dashboard", _("Dasbor")),
    ("admin.trips", pgettext("plural", "Trip")),
    ("admin.orders", _("Daftar pesanan")),
    ("admin.proofs", _("Bukti transfer")),
    ("admin.jastipers", pgettext("plural", "Jastiper")),
    ("admin.broadcasts", pgettext("plural", "Broadcast")),
    ("admin.queue", _("Antrean")),
    ("admin.audit", _("Log audit")),
)
# where the links of pages not built yet point (their routes will take these names)
NAV_PATHS = {
    "admin.dashboard": "/admin/",
    "admin.trips": "/admin/trips",
    "admin.orders": "/admin/orders",
    "admin.proofs": "/admin/proofs",
    "admin.jastipers": "/admin/jastipers",
    "admin.broadcasts": "/admin/broadcasts",
    "admin.queue": "/admin/queue",
    "admin.audit": "/admin/audit",
}


def nav(request: web.Request, active: str | None) -> Nav:
    return [(NAV_PATHS[name], label, name == active) for name, label in NAV]


def current_admin(request: web.Request) -> AdminUser:
    """The logged-in admin (the gate lets no page run without one)."""
    admin = request.get(ADMIN)
    if admin is None:
        raise web.HTTPUnauthorized()
    return admin
