"""``/j-web/``: a jastiper's own panel, opened without a password by the one-time link
``/web`` sends in chat (``services.jastiper_web``).

A sub-application of the web shell (``admin_web/shell/``) beside ``/admin/``: the same
security headers, error pages, gate and CSRF rule, but its own door (:data:`DOOR`): its
own session cookie (``jastipin_jastiper``), its own session table, CSRF tokens signed
for this panel only. An admin session opens nothing here and a jastiper session opens
nothing under ``/admin/``. The pages are in ``pages.py``.

Opening the link is two steps: ``GET /j-web/<token>`` only shows a button (link
previews and scanners that fetch the URL do not use it up), and the button's ``POST``
— CSRF-tied to a random pre-session cookie like the admin login form — uses it up and
starts the session. A used, expired or unknown link gets the same friendly page: send
``/web`` again.
"""

from __future__ import annotations

from aiohttp import web

from admin_web import shell
from admin_web.jastiper import pages
from admin_web.jastiper.pages import JASTIPER
from admin_web.keys import DB
from admin_web.shell import gate
from admin_web.shell.door import TRANSLATOR, Door, Nav
from admin_web.shell.render import message_page, redirect, render
from locales import _, pgettext
from services import jastiper_web
from storage.models import Jastiper, utcnow

SESSION_COOKIE = "jastipin_jastiper"
OPEN_COOKIE = "jastipin_jweb_open"  # random value the link's button is CSRF-tied to
TOKEN = r"{token:[A-Za-z0-9_-]{43}}"  # secrets.token_urlsafe(32)

SEND_AGAIN_TITLE = _("Link ini sudah tidak berlaku")
SEND_AGAIN = _(
    "Link panel hanya bisa dibuka sekali dan berlaku 10 menit. "
    "Kirim /web di chat WhatsApp untuk mendapatkan link baru."
)


def send_web_again(request: web.Request, *, status: int) -> web.Response:
    """The friendly page for a used, expired or unknown link, or no session."""
    t = request[TRANSLATOR]
    return message_page(request, t(SEND_AGAIN_TITLE), t(SEND_AGAIN), status=status)


def _no_session(request: web.Request) -> web.StreamResponse:
    return send_web_again(request, status=401)


def _nav(request: web.Request, active: str | None) -> Nav:
    path = request.path
    return [
        ("/j-web/", pgettext("plural", "Pesanan"), path == "/j-web/"),
        ("/j-web/proofs", _("Bukti transfer"), path == "/j-web/proofs"),
        (
            "/j-web/broadcasts",
            pgettext("plural", "Broadcast"),
            path.startswith("/j-web/broadcasts"),
        ),
    ]


def _name(jastiper: Jastiper) -> str:
    return jastiper.name


async def _chat_language(request: web.Request, jastiper: Jastiper) -> str | None:
    """The panel speaks the jastiper's chat language unless the reader chose one."""
    async with request.config_dict[DB].read() as session:
        return await jastiper_web.chat_language(session, jastiper)


DOOR: Door[Jastiper] = Door(
    root=jastiper_web.PATH,
    title=_("Panel jastiper"),
    menu_label=_("Menu jastiper"),
    back_label=_("Kembali ke pesanan"),
    who=JASTIPER,
    who_name="jastiper",
    account=_name,
    nav=_nav,
    session_cookie=SESSION_COOKIE,
    sessions=jastiper_web.SESSIONS,
    csrf_purpose="jastiper",
    public=frozenset({"jweb.link", "jweb.link_open"}),
    pre_session={"jweb.link_open": (OPEN_COOKIE, "jastiper-open")},
    no_session=_no_session,
    no_session_text="Send /web in chat for a new link",
    spoken=_chat_language,
    error_texts={401: (SEND_AGAIN_TITLE, SEND_AGAIN)},
    back_needs_session=True,
)


async def link_page(request: web.Request) -> web.StreamResponse:
    """``GET /j-web/<token>``: a button that opens the panel (nothing is used up yet)."""
    async with request.config_dict[DB].read() as session:
        usable = await jastiper_web.link_usable(session, request.match_info["token"], utcnow())
    if not usable:
        return send_web_again(request, status=410)
    finish = gate.pre_session_form(request, "jweb.link_open")
    return finish(render(request, "jweb_open.html", {"action": request.path}))


async def link_open(request: web.Request) -> web.StreamResponse:
    """``POST /j-web/<token>``: the link is used up and the session starts."""
    async with request.config_dict[DB].transaction() as session:
        started = await jastiper_web.open_link(
            session,
            request.match_info["token"],
            utcnow(),
            previous_session=gate.session_token(request),
        )
    if started is None:
        return send_web_again(request, status=410)
    return gate.start_session(redirect(jastiper_web.PATH), request, "jweb.link_open", started)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /j-web/logout``: the session ends here and in the browser."""
    token = gate.session_token(request)
    if token is not None:
        async with request.config_dict[DB].transaction() as session:
            await jastiper_web.logout(session, token, utcnow())
    t = request[TRANSLATOR]
    response = message_page(
        request,
        t(_("Kamu sudah keluar")),
        t(_("Kirim /web di chat WhatsApp kalau mau membuka panel lagi.")),
    )
    return gate.end_session(response, request)


def build(settings_app: web.Application) -> web.Application:
    """The jastiper panel's sub-application (mounted at ``/j-web/`` by :func:`setup`)."""
    app = shell.application(settings_app, DOOR)
    app.router.add_get(f"/{TOKEN}", link_page, name="jweb.link")
    app.router.add_post(f"/{TOKEN}", link_open, name="jweb.link_open")
    app.router.add_post("/logout", logout, name="jweb.logout")
    pages.setup(app)
    return app


def setup(app: web.Application) -> None:
    app.add_subapp(jastiper_web.PATH, build(app))
