"""The web side: public trip page, shortlink redirect and (dev mode) the simulator."""

from __future__ import annotations

from aiohttp import web

from admin_web import public


def setup(app: web.Application) -> None:
    public.setup(app)
