"""The gate in front of every page of both panels, and the session cookie's life.

:func:`gate` runs for every request of a panel (its :class:`~admin_web.shell.door.Door`
says which cookie, which session table, who): it picks the reader's language, finds
the session, refuses any page but the door's public ones without it (a page shows
nothing to nobody), and refuses a state-changing request whose CSRF token is missing
or wrong with 403 before the handler runs, so nothing changes. A session's CSRF token
is signed for its panel: one panel's token is refused by the other. New pages get all
of this by being routes of the panel's application.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from admin_web.keys import DB
from admin_web.shell import security
from admin_web.shell.door import CSRF_TOKEN, DOOR, TRANSLATOR
from admin_web.shell.render import (
    CSRF_FIELD,
    LANG_COOKIE,
    message_page,
    pick_locale,
    remember_locale,
)
from locales import LOCALES, Translator, _
from services import websessions
from storage.models import utcnow

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REFUSED_TITLE = _("Permintaan ditolak")
REFUSED = _(
    "Formulir ini sudah kedaluwarsa atau tidak berasal dari panel. "
    "Muat ulang halamannya lalu coba lagi."
)


def route_name(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return resource.name if resource is not None else None


@web.middleware
async def gate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The session and the CSRF check of the request's panel, before the handler runs."""
    door = request.config_dict[DOOR]
    locale, chosen = pick_locale(request)
    asked = chosen or request.cookies.get(LANG_COOKIE, "") in LOCALES
    request[TRANSLATOR] = Translator(locale)
    name = route_name(request)
    token = security.read_cookie(request, door.session_cookie)
    if token is not None:
        db, now = request.config_dict[DB], utcnow()
        async with db.read() as session:
            found = await websessions.current(door.sessions, session, token, now)
        if found is not None and (found.touch or found.expired):
            async with db.transaction() as session:  # at most once a minute, or to end it
                found = await websessions.record_use(door.sessions, session, token, now)
        if found is not None and not found.expired:
            request[door.who] = found.who
            request[CSRF_TOKEN] = security.csrf_for(request, door.csrf_purpose, found.token_hash)
            if not asked and door.spoken is not None:
                spoken = await door.spoken(request, found.who)
                if spoken in LOCALES:
                    request[TRANSLATOR] = Translator(spoken)
    if door.who not in request and name not in door.public:
        if request.method in SAFE_METHODS:
            return door.no_session(request)
        raise web.HTTPUnauthorized(text=door.no_session_text)
    if request.method not in SAFE_METHODS:
        form = await request.post()
        pre_session = door.pre_session.get(name) if name is not None else None
        if pre_session is not None:
            cookie, purpose = pre_session
            value = security.read_cookie(request, cookie)
            expected = security.csrf_for(request, purpose, value) if value else None
        else:
            expected = request.get(CSRF_TOKEN)
        if not security.csrf_matches(form.get(CSRF_FIELD), expected):
            t = request[TRANSLATOR]
            return message_page(request, t(REFUSED_TITLE), t(REFUSED), status=403)
    response = await handler(request)
    if chosen:
        remember_locale(response, request, locale)
    return response


def pre_session_form(
    request: web.Request, route: str
) -> Callable[[web.StreamResponse], web.StreamResponse]:
    """For a page whose form posts to ``route`` before there is a session: the form's
    CSRF token, tied to the route's random cookie (made now when the browser has none).
    Pass the page's response to the returned function, which sets a new cookie."""
    cookie, purpose = request.config_dict[DOOR].pre_session[route]
    value = security.read_cookie(request, cookie)
    fresh = value is None
    if value is None:
        value = security.new_login_value()
    request[CSRF_TOKEN] = security.csrf_for(request, purpose, value)

    def finish(response: web.StreamResponse) -> web.StreamResponse:
        if fresh:
            security.set_cookie(response, request, cookie, value)
        return response

    return finish


def session_token(request: web.Request) -> str | None:
    """The raw session cookie of the request's panel (to revoke it), if any."""
    return security.read_cookie(request, request.config_dict[DOOR].session_cookie)


def start_session(
    response: web.StreamResponse, request: web.Request, route: str, token: str
) -> web.StreamResponse:
    """The new session's cookie on ``response``; the pre-session cookie of the form
    posted to ``route`` is spent."""
    door = request.config_dict[DOOR]
    security.set_cookie(response, request, door.session_cookie, token)
    security.clear_cookie(response, request, door.pre_session[route][0])
    return response


def end_session(response: web.StreamResponse, request: web.Request) -> web.StreamResponse:
    """The browser forgets the panel's session cookie."""
    security.clear_cookie(response, request, request.config_dict[DOOR].session_cookie)
    return response
