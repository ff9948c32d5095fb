"""The web side: public trip page, shortlink redirect and (dev mode) the simulator."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    from admin_web import public

    public.setup(app)
