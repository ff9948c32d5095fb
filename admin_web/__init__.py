"""The web side: public trip page, shortlink redirect, the admin panel (``/admin/``) and
a jastiper's own panel (``/j-web/``), both on the web shell (``admin_web/shell/``)."""

from __future__ import annotations

from aiohttp import web

from admin_web import jastiper, panel, public


def setup(app: web.Application) -> None:
    public.setup(app)
    panel.setup(app)
    jastiper.setup(app)
