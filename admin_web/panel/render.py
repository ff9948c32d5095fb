"""Rendering an admin page: the reader's language, the base context, the nav.

A handler calls :func:`render` with its template and its own values; the base layout
gets the admin, the CSRF token, the locale, the translator ``_`` and the nav from here.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from admin_web.keys import OUTBOX_NOTIFY
from locales import DEFAULT_LOCALE, LOCALES, Translator, _, pgettext
from services import amounts
from services.errors import DomainError, Msg
from storage.models import AdminUser

# what the gate (admin_web/panel/auth.py) leaves on each request for the page
ADMIN: web.RequestKey[AdminUser] = web.RequestKey("admin", AdminUser)
TRANSLATOR: web.RequestKey[Translator] = web.RequestKey("translator", Translator)
CSRF_TOKEN: web.RequestKey[str] = web.RequestKey("csrf", str)
SESSION_HASH: web.RequestKey[str] = web.RequestKey("session_hash", str)

LANG_COOKIE = "lang"
# (route name, label msgid); pages not built yet still have their link
NAV: tuple[tuple[str, str], ...] = (
    ("admin.dashboard", _("Dasbor")),
    ("admin.trips", pgettext("plural", "Trip")),
    ("admin.orders", _("Daftar pesanan")),
    ("admin.proofs", _("Bukti transfer")),
    ("admin.jastipers", pgettext("plural", "Jastiper")),
    ("admin.broadcasts", pgettext("plural", "Broadcast")),
    ("admin.queue", _("Antrean")),
    ("admin.audit", _("Log audit")),
)
# where the links of pages not built yet point (their routes will take these names)
NAV_PATHS = {
    "admin.dashboard": "/admin/",
    "admin.trips": "/admin/trips",
    "admin.orders": "/admin/orders",
    "admin.proofs": "/admin/proofs",
    "admin.jastipers": "/admin/jastipers",
    "admin.broadcasts": "/admin/broadcasts",
    "admin.queue": "/admin/queue",
    "admin.audit": "/admin/audit",
}


# what a page says after an action redirected back to it (``?done=<key>``)
FLASH = {
    "approved": _("Bukti disetujui. Pembeli sudah dikabari."),
    "rejected": _("Bukti ditolak. Pembeli diminta mengirim ulang."),
    "moved": _("Status pesanan diperbarui dan pembeli sudah dikabari."),
}


def pick_locale(request: web.Request) -> tuple[str, bool]:
    """The reader's language: ``?lang=`` (remembered in a cookie), the ``lang`` cookie,
    then ``Accept-Language``; Indonesian by default. Second: whether ``?lang=`` chose it
    (so the cookie should be set)."""
    asked = request.query.get("lang", "")
    if asked in LOCALES:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE, "")
    if cookie in LOCALES:
        return cookie, False
    best, best_q = DEFAULT_LOCALE, -1.0
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _sep, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in LOCALES and q > best_q:
            best, best_q = lang, q
    return best, False


def translator(request: web.Request) -> Translator:
    t = request.get(TRANSLATOR)
    if t is not None:
        return t
    locale, _chosen = pick_locale(request)
    return Translator(locale)


def error_text(t: Translator, error: DomainError) -> str:
    """A service's refusal in the reader's language."""
    params = {k: t(v) if isinstance(v, Msg) else v for k, v in error.params.items()}
    return t(error.message, **params)


def current_admin(request: web.Request) -> AdminUser:
    """The logged-in admin (the middleware lets no page run without one)."""
    admin = request.get(ADMIN)
    if admin is None:
        raise web.HTTPUnauthorized()
    return admin


def base_context(request: web.Request, active: str | None = None) -> dict[str, Any]:
    t = translator(request)
    return {
        "_": t,
        "t": t,
        "pgettext": t.pgettext,
        "locale": t.locale,
        "locales": LOCALES,
        "admin": request.get(ADMIN),
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "csrf_field": "csrf_token",
        "nav": [(NAV_PATHS[name], label, name == active) for name, label in NAV],
        "path": request.path,
        # one amount everywhere (services/amounts.py): what an order costs its buyer
        "amount": amounts.amount,
        "due_now": amounts.due_now,
        "flash": t(FLASH[done]) if (done := request.query.get("done", "")) in FLASH else "",
    }


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    active: str | None = None,
    status: int = 200,
) -> web.Response:
    """``template`` with the base context plus ``context``."""
    values = base_context(request, active)
    values.update(context or {})
    return aiohttp_jinja2.render_template(template, request, values, status=status)


def outbox_notify(request: web.Request) -> None:
    """Committed outbox rows (a buyer told): send now rather than at the next poll."""
    notify = request.config_dict.get(OUTBOX_NOTIFY)
    if notify is not None:
        notify()


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs ``location``."""
    return web.Response(status=303, headers={"Location": location})
