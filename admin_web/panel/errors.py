"""Errors as pages: every 4xx/5xx of the admin panel and of the jastiper panel is a
styled page in the reader's language with a way back, never aiohttp's bare "404: Not
Found" or "500 Internal Server Error / Server got itself in trouble".

:func:`middleware` wraps a panel's handlers (inside the security headers, so the error
page carries them too): an ``HTTPException`` of 400 or more, a ``DomainError`` a
service raised and nobody caught (a friendly 409, or 404 for ``NotFound``) and any
other exception (logged with its traceback, then a 500 page) become ``template``
rendered with ``title``, ``message``, ``status`` and ``back``. Redirects pass through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from admin_web.panel.render import LANG_COOKIE, error_text, render, translator
from locales import LOCALES, _
from services.errors import DomainError, NotFound

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# (title, message) per status; any other 4xx gets 400's words
TEXTS: dict[int, tuple[str, str]] = {
    400: (
        _("Permintaan tidak bisa diproses"),
        _("Ada isian yang tidak lengkap atau tidak sesuai. Kembali lalu coba lagi."),
    ),
    401: (
        _("Perlu masuk dulu"),
        _("Sesi sudah berakhir. Masuk lagi untuk melanjutkan."),
    ),
    403: (
        _("Tidak diizinkan"),
        _(
            "Halaman ini tidak bisa dibuka dengan akses ini, atau link-nya sudah "
            "kedaluwarsa. Muat ulang halaman sebelumnya lalu coba lagi."
        ),
    ),
    404: (
        _("Halaman tidak ditemukan"),
        _("Yang kamu cari tidak ada (atau sudah dihapus). Periksa link-nya."),
    ),
    405: (
        _("Permintaan tidak bisa diproses"),
        _("Halaman ini tidak bisa dibuka dengan cara itu. Kembali lalu pakai tombolnya."),
    ),
    409: (
        _("Tidak bisa dilakukan"),
        _("Data ini sudah berubah. Muat ulang halamannya lalu coba lagi."),
    ),
    413: (
        _("File terlalu besar"),
        _("File yang dikirim terlalu besar. Pilih file yang lebih kecil."),
    ),
    500: (
        _("Ada yang salah di server"),
        _("Maaf, halaman ini gagal dimuat. Kejadiannya sudah dicatat; coba lagi sebentar lagi."),
    ),
}


def middleware(
    template: str,
    back: str,
    extra: Callable[[web.Request], dict[str, Any]] | None = None,
    texts: dict[int, tuple[str, str]] | None = None,
) -> Middleware:
    """The error middleware of a panel whose error template is ``template`` and whose
    home (the way back) is ``back``; ``extra`` adds the panel's own context and
    ``texts`` overrides words per status."""
    words = {**TEXTS, **(texts or {})}

    def page(request: web.Request, status: int, message: str | None = None) -> web.Response:
        t = translator(request)
        title, default = words.get(status) or words[500 if status >= 500 else 400]
        context = {
            "title": t(title),
            "message": message or t(default),
            "status": status,
            "back": back,
            **(extra(request) if extra is not None else {}),
        }
        response = render(request, template, context, status=status)
        if request.query.get("lang", "") in LOCALES:  # the reader's choice, kept as on a page
            response.set_cookie(
                LANG_COOKIE,
                request.query["lang"],
                path=back.rstrip("/"),
                samesite="Strict",
                max_age=365 * 86400,
            )
        return response

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = page(request, exc.status)
            for name in ("Allow", "WWW-Authenticate", "Retry-After"):
                if name in exc.headers:
                    response.headers[name] = exc.headers[name]
            return response
        except NotFound as err:
            return page(request, 404, error_text(translator(request), err))
        except DomainError as err:
            return page(request, 409, error_text(translator(request), err))
        except Exception:
            # the route's template, never the path (a /j-web link's token is in it)
            resource = request.match_info.route.resource
            where = resource.canonical if resource is not None else "unmatched"
            log.exception("panel page failed: %s %s", request.method, where)
            return page(request, 500)

    return errors
