"""What makes a panel a panel: one :class:`Door` per sub-application (the admin panel,
a jastiper's own), read by the shared gate, pages and error pages under :data:`DOOR`.

The door says which session cookie and session table it uses, who a session belongs
to, which routes answer without one, which forms are tied to a pre-login cookie, and
what its pages show around their content (its nav, its name for itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from aiohttp import web

from locales import Translator
from services import websessions

Who = TypeVar("Who")

# what the gate leaves on each request for the page
TRANSLATOR: web.RequestKey[Translator] = web.RequestKey("translator", Translator)
CSRF_TOKEN: web.RequestKey[str] = web.RequestKey("csrf", str)

# (href, label msgid, lit) per nav entry
Nav = list[tuple[str, str, bool]]


@dataclasses.dataclass(frozen=True, slots=True)
class Door(Generic[Who]):
    """One panel's settings for the shared shell."""

    root: str  # "/admin/": the panel's home, its pages' cookie path
    title: str  # msgid: the page title when a page names none
    menu_label: str  # msgid: the nav's accessible name
    back_label: str  # msgid: the error page's way back
    who: web.RequestKey[Who]  # where the gate puts who is logged in
    who_name: str  # and the name the templates know them by
    account: Callable[[Who], str]  # what the header shows of them
    nav: Callable[[web.Request, str | None], Nav]
    session_cookie: str
    sessions: websessions.Kind[Who]
    csrf_purpose: str  # a session's CSRF tokens are signed for this panel only
    public: frozenset[str]  # route names that answer without a session
    # route name -> (cookie, CSRF purpose): a form posted before there is a session
    # (the login form, the one-time link's button), tied to a random cookie
    pre_session: Mapping[str, tuple[str, str]]
    # a GET without a session (a POST without one is a 401)
    no_session: Callable[[web.Request], web.StreamResponse]
    no_session_text: str
    # the language of who is logged in, when the reader asked for none
    spoken: Callable[[web.Request, Who], Awaitable[str | None]] | None = None
    # the error pages' words per status, over the shell's (admin_web/shell/errors.py)
    error_texts: Mapping[int, tuple[str, str]] = dataclasses.field(default_factory=dict)
    back_needs_session: bool = False  # an error page offers the way home only when logged in


DOOR: web.AppKey[Door[Any]] = web.AppKey("door", Door)
