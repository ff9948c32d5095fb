"""The admin panel's door (:data:`DOOR`: its session cookie and table, who is logged
in, its nav) and its login and logout pages.

The gate itself is the shell's (``admin_web/shell/gate.py``): only routes named in
``PUBLIC`` answer without a session; a page without one sends the reader to the login
form, a state-changing request without a valid CSRF token is refused with 403 before
its handler runs.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from admin_web.keys import DB
from admin_web.panel.render import ADMIN, nav
from admin_web.shell import gate, security
from admin_web.shell.door import TRANSLATOR, Door
from admin_web.shell.render import redirect, render
from locales import _
from services import admins
from storage.models import AdminUser, utcnow

SESSION_COOKIE = "jastipin_admin"
LOGIN_COOKIE = "jastipin_login"  # random value the login form's CSRF token is tied to
PUBLIC = frozenset({"admin.login", "admin.static"})


def _to_login(request: web.Request) -> web.StreamResponse:
    # a signed link's query stays out of the login URL
    where = request.path if "sig" in request.query else request.path_qs
    target = quote(where, safe="/?=&")
    raise web.HTTPSeeOther(f"/admin/login?next={target}")


def _email(admin: AdminUser) -> str:
    return admin.email


DOOR: Door[AdminUser] = Door(
    root="/admin/",
    title=_("Panel admin"),
    menu_label=_("Menu admin"),
    back_label=_("Kembali ke dasbor"),
    who=ADMIN,
    who_name="admin",
    account=_email,
    nav=nav,
    session_cookie=SESSION_COOKIE,
    sessions=admins.SESSIONS,
    csrf_purpose="session",
    public=PUBLIC,
    pre_session={"admin.login": (LOGIN_COOKIE, "login")},
    no_session=_to_login,
    no_session_text="Log in first",
)


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
) -> web.StreamResponse:
    finish = gate.pre_session_form(request, "admin.login")
    return finish(
        render(
            request,
            "login.html",
            {
                "error": error,
                "email": email,
                "next": _safe_next(request.query.get("next", "")),
            },
            status=status,
        )
    )


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
        previous_token=gate.session_token(request),
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
    return gate.start_session(response, request, "admin.login", result.token)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /admin/logout``: the session ends here and in the browser."""
    token = gate.session_token(request)
    if token is not None:
        async with request.config_dict[DB].transaction() as session:
            await admins.logout(session, token, utcnow())
    return gate.end_session(redirect("/admin/login"), request)
