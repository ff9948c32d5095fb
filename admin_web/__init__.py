"""The web side: public trip page, shortlink redirect and the admin panel (``/admin/``)."""

from __future__ import annotations

from aiohttp import web

from admin_web import panel, public
from admin_web.panel import jweb


def setup(app: web.Application) -> None:
    public.setup(app)
    panel.setup(app)
    jweb.setup(app)
