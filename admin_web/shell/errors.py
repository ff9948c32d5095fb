"""Errors as pages, one handler for both panels: every 4xx/5xx of the admin panel and
of the jastiper panel is a styled page in the reader's language with a way back, never
aiohttp's bare "404: Not Found" or "500 Internal Server Error / Server got itself in
trouble".

:func:`pages` wraps a panel's handlers (inside the security headers, so the error page
carries them too): an ``HTTPException`` of 400 or more, a ``DomainError`` a service
raised (a friendly 409 saying the service's refusal, or 404 for ``NotFound``) and any
other exception (logged with its traceback, then a 500 page) become the panel's
``message.html``. Redirects pass through.

Handlers do not catch ``DomainError``: a form page that should show the refusal above
the form again (with what was typed) says so first with :func:`refusal_shows`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from admin_web.shell.door import DOOR
from admin_web.shell.render import error_text, message_page, remember_locale, translator
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


# a page that shows a service's refusal itself (the form again, the error above it)
Refusal = Callable[[str], Awaitable[web.StreamResponse]]
REFUSAL: web.RequestKey[Refusal] = web.RequestKey("refusal")


def refusal_shows(request: web.Request, page: Refusal) -> None:
    """From here on, a ``DomainError`` (but ``NotFound``: a 404 page) is shown by
    ``page(error_text)`` rather than the error page."""
    request[REFUSAL] = page


def error_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    """The panel's page for ``status`` in the reader's language."""
    door = request.config_dict[DOOR]
    words = {**TEXTS, **door.error_texts}
    t = translator(request)
    title, default = words.get(status) or words[500 if status >= 500 else 400]
    back = door.root if door.who in request or not door.back_needs_session else ""
    response = message_page(request, t(title), message or t(default), status=status, back=back)
    if request.query.get("lang", "") in LOCALES:  # the reader's choice, kept as on a page
        remember_locale(response, request, request.query["lang"])
    return response


@web.middleware
async def pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The error page of the request's panel for whatever its handler did not answer."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, exc.status)
        for name in ("Allow", "WWW-Authenticate", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except NotFound as err:
        return error_page(request, 404, error_text(translator(request), err))
    except DomainError as err:
        refusal = request.get(REFUSAL)
        if refusal is None:
            return error_page(request, 409, error_text(translator(request), err))
        response = await refusal(error_text(translator(request), err))
        if request.query.get("lang", "") in LOCALES:  # as the gate keeps it after a page
            remember_locale(response, request, request.query["lang"])
        return response
    except Exception:
        # the route's template, never the path (a /j-web link's token is in it)
        resource = request.match_info.route.resource
        where = resource.canonical if resource is not None else "unmatched"
        log.exception("panel page failed: %s %s", request.method, where)
        return error_page(request, 500)
