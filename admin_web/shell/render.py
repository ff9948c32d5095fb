"""Rendering a page of either panel: the reader's language, the base context that
``base.html`` needs, and the door's own part of it (its nav, who is logged in).

A handler calls its panel's ``render`` (``admin_web.panel.render.render``,
``admin_web.jastiper.pages.page``); both end in :func:`render` here.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from admin_web.keys import OUTBOX_NOTIFY
from admin_web.shell.door import CSRF_TOKEN, DOOR, TRANSLATOR
from locales import DEFAULT_LOCALE, LOCALES, Translator, _
from services import amounts
from services.errors import DomainError, Msg
from storage.models import User

LANG_COOKIE = "lang"
CSRF_FIELD = "csrf_token"

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


def remember_locale(response: web.StreamResponse, request: web.Request, locale: str) -> None:
    """The language chosen with ``?lang=``, kept for this panel's pages for a year."""
    root = request.config_dict[DOOR].root.rstrip("/")
    response.set_cookie(LANG_COOKIE, locale, path=root, samesite="Strict", max_age=365 * 86400)


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


def buyer_name(user: User | None) -> str:
    if user is None:
        return "-"
    return user.display_name or user.profile_name or "-"


def base_context(request: web.Request, active: str | None = None) -> dict[str, Any]:
    """What ``base.html`` and every page may use; ``active`` is the nav entry lit."""
    t = translator(request)
    door = request.config_dict[DOOR]
    who = request.get(door.who)
    return {
        "_": t,
        "t": t,
        "pgettext": t.pgettext,
        "locale": t.locale,
        "locales": LOCALES,
        "home": door.root,
        "panel_title": door.title,
        "menu_label": door.menu_label,
        "account": door.account(who) if who is not None else "",
        "nav": door.nav(request, active) if who is not None else [],
        door.who_name: who,
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "csrf_field": CSRF_FIELD,
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


def message_page(
    request: web.Request, title: str, message: str, *, status: int = 200, back: str = ""
) -> web.Response:
    """The panel's page that only says something (an error, "you have logged out")."""
    door = request.config_dict[DOOR]
    context = {
        "title": title,
        "message": message,
        "status": status if status >= 400 else None,
        "back": back,
        "back_label": door.back_label,
    }
    return render(request, "message.html", context, status=status)


def outbox_notify(request: web.Request) -> None:
    """Committed outbox rows (a buyer told): send now rather than at the next poll."""
    notify = request.config_dict.get(OUTBOX_NOTIFY)
    if notify is not None:
        notify()


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser GETs ``location``."""
    return web.Response(status=303, headers={"Location": location})
