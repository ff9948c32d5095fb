"""The gate in front of every admin page, and the login and logout pages.

:func:`gate` runs for every request under ``/admin/``: it finds the session, refuses
any page but the public ones without it (a page shows nothing to nobody), and refuses a
state-changing request whose CSRF token is missing or wrong with 403 before the
handler runs, so nothing changes. New pages get all of this by being routes of the
admin application; only routes named in :data:`PUBLIC` answer without a session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel import security
from admin_web.panel.render import (
    ADMIN,
    CSRF_TOKEN,
    LANG_COOKIE,
    SESSION_HASH,
    TRANSLATOR,
    pick_locale,
    redirect,
    render,
)
from locales import Translator, _
from services import admins
from storage.models import utcnow

PUBLIC = frozenset({"admin.login", "admin.static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def gate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    locale, chosen = pick_locale(request)
    request[TRANSLATOR] = Translator(locale)
    resource = request.match_info.route.resource
    name = resource.name if resource is not None else None
    token = security.read_cookie(request, security.SESSION_COOKIE)
    if token is not None:
        db, now = request.config_dict[DB], utcnow()
        async with db.read() as session:
            found = await admins.current(session, token, now)
        if found is not None and (found.touch or found.expired):
            async with db.transaction() as session:  # at most once a minute, or to end it
                found = await admins.record_use(session, token, now)
        if found is not None and not found.expired:
            request[ADMIN] = found.admin
            request[SESSION_HASH] = found.token_hash
            request[CSRF_TOKEN] = security.session_csrf(request, found.token_hash)
    if ADMIN not in request and name not in PUBLIC:
        if request.method in SAFE_METHODS:
            # a signed link's query stays out of the login URL
            where = request.path if "sig" in request.query else request.path_qs
            target = quote(where, safe="/?=&")
            raise web.HTTPSeeOther(f"/admin/login?next={target}")
        raise web.HTTPUnauthorized(text="Log in first")
    if request.method not in SAFE_METHODS:
        form = await request.post()
        if name == "admin.login":
            login_value = security.read_cookie(request, security.LOGIN_COOKIE)
            expected = security.login_csrf(request, login_value) if login_value else None
        else:
            expected = request.get(CSRF_TOKEN)
        if not security.csrf_matches(form.get(security.CSRF_FIELD), expected):
            return render(
                request,
                "error.html",
                {
                    "title": request[TRANSLATOR](_("Permintaan ditolak")),
                    "message": request[TRANSLATOR](
                        _(
                            "Formulir ini sudah kedaluwarsa atau tidak berasal dari panel. "
                            "Muat ulang halamannya lalu coba lagi."
                        )
                    ),
                },
                status=403,
            )
    response = await handler(request)
    if chosen:
        response.set_cookie(
            LANG_COOKIE, locale, path="/admin", samesite="Strict", max_age=365 * 86400
        )
    return response


def _safe_next(raw: str) -> str:
    """Only a path inside the panel (no other host, no scheme), with no control
    character: a CR or LF in the ``Location`` header would make aiohttp drop the
    connection after the session was made."""
    if (
        raw.startswith("/admin/")
        and not raw.startswith("//")
        and "\\" not in raw
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw)
    ):
        return raw
    return "/admin/"


async def login_page(request: web.Request) -> web.StreamResponse:
    """``GET /admin/login``: the form (works without JavaScript)."""
    return _login_form(request)


def _login_form(
    request: web.Request, *, error: str = "", status: int = 200, email: str = ""
) -> web.Response:
    value = security.read_cookie(request, security.LOGIN_COOKIE)
    fresh = value is None
    if value is None:
        value = security.new_login_value()
    request[CSRF_TOKEN] = security.login_csrf(request, value)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "email": email,
            "next": _safe_next(request.query.get("next", "")),
        },
        status=status,
    )
    if fresh:
        security.set_cookie(response, request, security.LOGIN_COOKIE, value)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    """``POST /admin/login``: the same answer for an unknown email and a wrong password;
    after repeated failures a wait, per account and per address."""
    form = await request.post()
    email = str(form.get("email", ""))[:200]
    password = str(form.get("password", ""))[:1024]
    t = request[TRANSLATOR]
    result = await admins.login(
        request.config_dict[DB].transaction,
        email,
        password,
        address_key=security.address_key(request),
        network=security.network_of(security.client_address(request)),
        now=utcnow(),
        previous_token=security.read_cookie(request, security.SESSION_COOKIE),
    )
    if result.wait_seconds:
        minutes = max(1, (result.wait_seconds + 59) // 60)
        message = t(
            _("Terlalu banyak percobaan yang gagal. Coba lagi dalam {minutes} menit."),
            minutes=minutes,
        )
        return _login_form(request, error=message, status=429, email=email)
    if result.token is None:
        message = t(_("Email atau kata sandi salah."))
        return _login_form(request, error=message, status=401, email=email)
    response = redirect(_safe_next(str(form.get("next", ""))))
    security.set_cookie(response, request, security.SESSION_COOKIE, result.token)
    security.clear_cookie(response, request, security.LOGIN_COOKIE)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout``: the session ends here and in the browser."""
    token = security.read_cookie(request, security.SESSION_COOKIE)
    if token is not None:
        async with request.config_dict[DB].transaction() as session:
            await admins.logout(session, token, utcnow())
    response = redirect("/admin/login")
    security.clear_cookie(response, request, security.SESSION_COOKIE)
    return response
