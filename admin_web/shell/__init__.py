"""The web shell both panels are built on: the admin panel (``admin_web/panel/``) and a
jastiper's own (``admin_web/jastiper/``) are each an aiohttp sub-application made by
:func:`application` from a :class:`~admin_web.shell.door.Door`.

Each gets the same middlewares — security headers (``security.py``), error pages in the
reader's language (``errors.py``: a ``DomainError`` a service raises becomes a page),
queries off the event loop, then the gate (``gate.py``: session cookie, CSRF, language
cookie) — and the same templates, whose ``base.html`` each page extends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from admin_web.keys import SETTINGS
from admin_web.shell import errors, gate, security
from admin_web.shell.door import DOOR, Door

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def templates(app: web.Application) -> None:
    """The panels' Jinja2 templates on ``app``."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def application(
    settings_app: web.Application, door: Door[Any], *, before_gate: tuple[Middleware, ...] = ()
) -> web.Application:
    """A panel's sub-application: the shell's middlewares around ``before_gate`` (a
    panel's own checks that come before the session's), the door, the templates."""
    app = web.Application(
        middlewares=[
            security.security_headers,
            errors.pages,
            security.queries_off_the_loop,
            *before_gate,
            gate.gate,
        ]
    )
    app[DOOR] = door
    app[security.SIGN_KEY] = security.signing_key(settings_app[SETTINGS])
    templates(app)
    return app
