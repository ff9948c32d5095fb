"""``/j-web/``: a jastiper's own panel, opened without a password by the one-time link
``/web`` sends in chat (``services.jastiper_web``).

A sub-application of its own (mounted beside ``/admin/``), with the admin panel's
security headers and the same machinery in ``security.py`` (signing key, cookie flags,
CSRF comparison), but its own session cookie (``jastipin_jastiper``), its own session
table and its own gate: an admin session opens nothing here and a jastiper session
opens nothing under ``/admin/``.

Opening the link is two steps: ``GET /j-web/<token>`` only shows a button (link
previews and scanners that fetch the URL do not use it up), and the button's ``POST``
— CSRF-tied to a random pre-login cookie like the admin login form — uses it up and
starts the session. A used, expired or unknown link gets the same friendly page: send
``/web`` again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp_jinja2
import jinja2
from aiohttp import web

from admin_web.keys import DB, SETTINGS
from admin_web.panel import TEMPLATES, errors, jweb_pages, security
from admin_web.panel.jweb_pages import JASTIPER, page
from admin_web.panel.render import (
    CSRF_TOKEN,
    LANG_COOKIE,
    TRANSLATOR,
    pick_locale,
    redirect,
)
from locales import LOCALES, Translator, _
from services import jastiper_web
from storage.models import utcnow
from storage.repo import users as users_repo

SESSION_COOKIE = "jastipin_jastiper"
OPEN_COOKIE = "jastipin_jweb_open"  # random value the link's button is CSRF-tied to
TOKEN = r"{token:[A-Za-z0-9_-]{43}}"  # secrets.token_urlsafe(32)
PUBLIC = frozenset({"jweb.link", "jweb.link_open"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _csrf(request: web.Request, session_hash: str) -> str:
    return security.sign(request, "csrf:jastiper:" + session_hash)


def _open_csrf(request: web.Request, value: str) -> str:
    return security.sign(request, "csrf:jastiper-open:" + value)


def message_page(request: web.Request, title: str, message: str, *, status: int) -> web.Response:
    return page(request, "jweb_message.html", {"title": title, "message": message}, status=status)


SEND_AGAIN_TITLE = _("Link ini sudah tidak berlaku")
SEND_AGAIN = _(
    "Link panel hanya bisa dibuka sekali dan berlaku 10 menit. "
    "Kirim /web di chat WhatsApp untuk mendapatkan link baru."
)


def send_web_again(request: web.Request, *, status: int) -> web.Response:
    """The friendly page for a used, expired or unknown link, or no session."""
    t = request[TRANSLATOR]
    return message_page(request, t(SEND_AGAIN_TITLE), t(SEND_AGAIN), status=status)


@web.middleware
async def gate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The session (a jastiper's, never an admin's) and the CSRF check on every POST,
    before the handler runs."""
    locale, chosen = pick_locale(request)
    asked = chosen or request.cookies.get(LANG_COOKIE, "") in LOCALES
    request[TRANSLATOR] = Translator(locale)
    resource = request.match_info.route.resource
    name = resource.name if resource is not None else None
    token = security.read_cookie(request, SESSION_COOKIE)
    if token is not None:
        db, now = request.config_dict[DB], utcnow()
        async with db.read() as session:
            found = await jastiper_web.current(session, token, now)
        if found is not None and (found.touch or found.expired):
            async with db.transaction() as session:
                found = await jastiper_web.record_use(session, token, now)
        if found is not None and not found.expired:
            request[JASTIPER] = found.jastiper
            request[CSRF_TOKEN] = _csrf(request, found.token_hash)
            if not asked:  # the panel speaks the jastiper's chat language
                async with db.read() as session:
                    user = await users_repo.get_user(session, found.jastiper.user_id)
                if user is not None:
                    request[TRANSLATOR] = Translator(user.locale)
    if JASTIPER not in request and name not in PUBLIC:
        if request.method in SAFE_METHODS:
            return send_web_again(request, status=401)
        raise web.HTTPUnauthorized(text="Send /web in chat for a new link")
    if request.method not in SAFE_METHODS:
        form = await request.post()
        if name == "jweb.link_open":
            value = security.read_cookie(request, OPEN_COOKIE)
            expected = _open_csrf(request, value) if value else None
        else:
            expected = request.get(CSRF_TOKEN)
        if not security.csrf_matches(form.get(security.CSRF_FIELD), expected):
            t = request[TRANSLATOR]
            return message_page(
                request,
                t(_("Permintaan ditolak")),
                t(
                    _(
                        "Formulir ini sudah kedaluwarsa atau tidak berasal dari panel. "
                        "Muat ulang halamannya lalu coba lagi."
                    )
                ),
                status=403,
            )
    response = await handler(request)
    if chosen:
        response.set_cookie(
            LANG_COOKIE, locale, path="/j-web", samesite="Strict", max_age=365 * 86400
        )
    return response


async def link_page(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/<token>``: a button that opens the panel (nothing is used up yet)."""
    async with request.config_dict[DB].read() as session:
        usable = await jastiper_web.link_usable(session, request.match_info["token"], utcnow())
    if not usable:
        return send_web_again(request, status=410)
    value = security.read_cookie(request, OPEN_COOKIE)
    fresh = value is None
    if value is None:
        value = security.new_login_value()
    request[CSRF_TOKEN] = _open_csrf(request, value)
    response = page(request, "jweb_open.html", {"action": request.path})
    if fresh:
        security.set_cookie(response, request, OPEN_COOKIE, value)
    return response


async def link_open(request: web.Request) -> web.StreamResponse:
    """``POST /j-web/<token>``: the link is used up and the session starts."""
    async with request.config_dict[DB].transaction() as session:
        started = await jastiper_web.open_link(
            session,
            request.match_info["token"],
            utcnow(),
            previous_session=security.read_cookie(request, SESSION_COOKIE),
        )
    if started is None:
        return send_web_again(request, status=410)
    response = redirect(jastiper_web.PATH)
    security.set_cookie(response, request, SESSION_COOKIE, started)
    security.clear_cookie(response, request, OPEN_COOKIE)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    token = security.read_cookie(request, SESSION_COOKIE)
    if token is not None:
        async with request.config_dict[DB].transaction() as session:
            await jastiper_web.logout(session, token, utcnow())
    response = message_page(
        request,
        request[TRANSLATOR](_("Kamu sudah keluar")),
        request[TRANSLATOR](_("Kirim /web di chat WhatsApp kalau mau membuka panel lagi.")),
        status=200,
    )
    security.clear_cookie(response, request, SESSION_COOKIE)
    return response


def build(settings_app: web.Application) -> web.Application:
    app = web.Application(
        middlewares=[
            security.security_headers,
            errors.middleware(
                "jweb_message.html",
                jastiper_web.PATH,
                extra=lambda request: {"jastiper": request.get(JASTIPER)},
                texts={401: (SEND_AGAIN_TITLE, SEND_AGAIN)},
            ),
            security.queries_off_the_loop,
            gate,
        ]
    )
    app[security.SIGN_KEY] = security.signing_key(settings_app[SETTINGS])
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.router.add_get(f"/{TOKEN}", link_page, name="jweb.link")
    app.router.add_post(f"/{TOKEN}", link_open, name="jweb.link_open")
    app.router.add_post("/logout", logout, name="jweb.logout")
    jweb_pages.setup(app)
    return app


def setup(app: web.Application) -> None:
    app.add_subapp(jastiper_web.PATH, build(app))
