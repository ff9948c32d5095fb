"""The public pages: ``/t/<CODE>`` (the trip page), ``/j/<slug>`` (a jastiper's page),
``/s/<slug>`` (a counted short link to the trip's WhatsApp join link), the trip's QR
code and the product photos (``/p/<id>/thumb.jpg`` and ``/p/<id>/full.jpg``).

Every answer of these routes carries the security headers of :mod:`admin_web.pages`.
Texts are Indonesian unless ``?lang=en`` or the browser's ``Accept-Language`` asks for
English.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from admin_web import pages
from admin_web.keys import DB, MEDIA, SETTINGS
from locales import DEFAULT_LOCALE, LOCALES, Translator, _
from services import links, photos, products, profiles, sharecard, trips
from services.errors import NotFound
from services.trips import join_link, qr_png
from storage.models import JastiperStatus, TripStatus, utcnow

PUBLIC_PREFIXES = ("/t/", "/j/", "/s/", "/p/")
MAX_POSITION = 100_000  # no catalogue is longer; a bigger number is simply not found
PAGE_CACHE = "public, max-age=60"  # stock and countdown move: a minute is fresh enough
PHOTO_CACHE = "public, max-age=86400"
PHOTO_CACHE_TAGGED = "public, max-age=31536000, immutable"  # a new photo has a new ?v=
TRIP_NOT_FOUND = _("Trip {code} tidak ditemukan. Cek lagi link dari jastiper-mu ya.")
JASTIPER_NOT_FOUND = _("Halaman jastiper ini tidak ditemukan.")
LINK_NOT_FOUND = _("Link ini tidak ditemukan. Cek lagi link dari jastiper-mu ya.")
PRODUCT_NOT_FOUND = _("Produk ini tidak ada di trip {code}. Lihat katalognya di halaman trip.")


def order_link(business_number: str, code: str, position: int) -> str:
    """The ``wa.me`` link that pre-fills ``JOIN <CODE> <n>``: the bot joins the buyer to
    the trip and opens product ``n`` (flows/join.py)."""
    return f"{join_link(business_number, code)}%20{position}"


def locale_of(request: web.Request) -> tuple[str, bool]:
    """(locale, chosen by ``?lang=``): the query first, then ``Accept-Language``."""
    asked = request.query.get("lang", "").lower()
    if asked in LOCALES:
        return asked, True
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(request.headers.get("Accept-Language", "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            ranked.append((-quality, n, primary))
    return (min(ranked)[2] if ranked else DEFAULT_LOCALE), False


def _page(request: web.Request) -> pages.Page:
    locale, chosen = locale_of(request)
    return pages.Page(
        t=Translator(locale),
        base_url=request.app[SETTINGS].public_base_url,
        lang_param=chosen,
        now=utcnow(),
    )


def _html(text: str, *, status: int = 200, cache: str = PAGE_CACHE) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Cache-Control"] = cache if status == 200 else "no-store"
    response.headers["Vary"] = "Accept-Language"
    return response


def _not_found(request: web.Request, message: str, **params: object) -> web.Response:
    p = _page(request)
    return _html(pages.not_found_page(p, p.t(message, **params), request.path), status=404)


async def trip_page(request: web.Request) -> web.Response:
    """The trip: title, destination, closing countdown, catalogue, join button, QR."""
    return await _trip_page(request, request.match_info["code"])


async def _trip_page(request: web.Request, code: str) -> web.Response:
    code = code.upper()[:16]
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        trip = await trips.by_code(session, code)
        if trip is None:
            return _not_found(request, TRIP_NOT_FOUND, code=code)
        catalogue = await products.of_trip(session, trip, visible_only=True)
        link = await links.of_trip(session, trip)
        jastiper = trip.jastiper
        body = pages.trip_page(
            _page(request),
            trip,
            jastiper_name=jastiper.name,
            jastiper_slug=jastiper.slug,
            products=catalogue,
            join_link=join_link(settings.wa_business_number, trip.code),
            short_slug=link.slug if link else None,
            is_open=trip.status == TripStatus.OPEN.value,
        )
    return _html(body)


async def product_page(request: web.Request) -> web.Response:
    """One product of a trip (``/t/<CODE>/p/<n>``, ``n`` its place in the catalogue)."""
    code = request.match_info["code"].upper()[:16]
    position = int(request.match_info["position"])
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        trip = await trips.by_code(session, code)
        if trip is None:
            return _not_found(request, TRIP_NOT_FOUND, code=code)
        product = (
            await products.at_position(session, trip, position)
            if position <= MAX_POSITION
            else None
        )
        if product is None or product.hidden:
            return _not_found(request, PRODUCT_NOT_FOUND, code=code)
        body = pages.product_page(
            _page(request),
            trip,
            product,
            jastiper_name=trip.jastiper.name,
            order_link=order_link(settings.wa_business_number, trip.code, position),
            is_open=trip.status == TripStatus.OPEN.value,
        )
    return _html(body)


async def trip_qr(request: web.Request) -> web.Response:
    """The QR code of the trip's join link (PNG)."""
    code = request.match_info["code"].upper()[:16]
    settings = request.app[SETTINGS]
    async with request.app[DB].read() as session:
        trip = await trips.by_code(session, code)
        if trip is None:
            return _not_found(request, TRIP_NOT_FOUND, code=code)
    data = await asyncio.to_thread(qr_png, join_link(settings.wa_business_number, trip.code))
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": PHOTO_CACHE}
    )


async def trip_card(request: web.Request) -> web.Response:
    """The trip's 1200×630 share card (PNG): what link previews show."""
    code = request.match_info["code"].upper()[:16]
    media = request.app[MEDIA]
    async with request.app[DB].read() as session:
        trip = await trips.by_code(session, code)
        if trip is None:
            return _not_found(request, TRIP_NOT_FOUND, code=code)
        catalogue = await products.of_trip(session, trip, visible_only=True)
        jastiper_name = trip.jastiper.name
    p = _page(request)
    shown = [x for x in catalogue if x.image_key][:3] or catalogue[:3]
    cards = []
    for product in shown:
        photo = None
        if product.image_key:
            try:
                photo = await photos.rendition(media, product.image_key, "thumb")
            except NotFound:
                photo = None
        cards.append(sharecard.CardProduct(product.name, p.t.money(product.price), photo))
    data = await asyncio.to_thread(
        sharecard.render,
        title=trip.title,
        jastiper=jastiper_name,
        destination=trip.destination,
        closes=f"{p.t(pages.CLOSES_ON)}: {p.t.date(trip.closes_on)}",
        products=cards,
    )
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": PHOTO_CACHE}
    )


async def jastiper_page(request: web.Request) -> web.Response:
    """A jastiper's link-in-bio page: open trips with covers, then past trips."""
    slug = request.match_info["slug"].lower()[:48]
    async with request.app[DB].read() as session:
        jastiper = await profiles.by_slug(session, slug)
        if jastiper is None or jastiper.status != JastiperStatus.APPROVED.value:
            return _not_found(request, JASTIPER_NOT_FOUND)
        mine = await trips.jastiper_trips(session, jastiper)
        covers = await products.covers(session, mine)
        open_trips = [t for t in mine if t.status == TripStatus.OPEN.value]
        past_trips = [t for t in mine if t.status != TripStatus.OPEN.value]
        body = pages.jastiper_page(
            _page(request),
            name=jastiper.name,
            slug=slug,
            open_trips=open_trips,
            past_trips=past_trips,
            covers=covers,
            profile=pages.Profile(
                bio=jastiper.bio,
                links=list(jastiper.links or []),
                avatar=(
                    f"/j/{slug}/avatar.jpg?v={photos.tag(jastiper.avatar_key)}"
                    if jastiper.avatar_key
                    else None
                ),
            ),
        )
    return _html(body)


async def jastiper_avatar(request: web.Request) -> web.Response:
    """The jastiper's profile photo (a 400 px JPEG, like a product thumbnail)."""
    slug = request.match_info["slug"].lower()[:48]
    async with request.app[DB].read() as session:
        jastiper = await profiles.by_slug(session, slug)
    if jastiper is None or jastiper.status != JastiperStatus.APPROVED.value:
        raise web.HTTPNotFound()
    if not jastiper.avatar_key:
        raise web.HTTPNotFound()
    tagged = request.query.get("v") == photos.tag(jastiper.avatar_key)
    try:
        data = await photos.rendition(request.app[MEDIA], jastiper.avatar_key, "thumb")
    except NotFound:
        raise web.HTTPNotFound() from None
    cache = PHOTO_CACHE_TAGGED if tagged else PHOTO_CACHE
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": cache})


# Link-preview crawlers by user agent: they get the trip's Open Graph page (a preview with
# the trip's card), not the redirect to wa.me (whose generic card they would show). Not
# "Instagram" or "Line": those are in-app browsers of people, who must get the redirect.
_PREVIEW_BOTS = re.compile(
    r"facebookexternalhit|facebookcatalog|Facebot|WhatsApp|Twitterbot|TelegramBot|Slackbot"
    r"|LinkedInBot|Discordbot|Pinterest|redditbot|Applebot|SkypeUriPreview|Embedly|vkShare"
    r"|Iframely|Googlebot|bingbot",
    re.IGNORECASE,
)


def is_preview_bot(user_agent: str) -> bool:
    return bool(_PREVIEW_BOTS.search(user_agent))


async def short_redirect(request: web.Request) -> web.StreamResponse:
    """302 to the trip's ``wa.me`` join link, counting the click for today; a link-preview
    crawler gets the trip's page instead (uncounted)."""
    settings = request.app[SETTINGS]
    if is_preview_bot(request.headers.get("User-Agent", "")):
        async with request.app[DB].read() as session:
            found = await links.resolve(session, request.match_info["slug"])
        if found is None:
            return _not_found(request, LINK_NOT_FOUND)
        if found.trip_code:
            return await _trip_page(request, found.trip_code)
        raise web.HTTPFound(found.target)
    async with request.app[DB].transaction() as session:
        followed = await links.follow(session, request.match_info["slug"], links.day_of(utcnow()))
    if followed is None:
        return _not_found(request, LINK_NOT_FOUND)
    target = (
        join_link(settings.wa_business_number, followed.trip_code)
        if followed.trip_code
        else followed.target
    )
    ttl = settings.worker_cache_ttl
    # private: a browser may skip us for a while, a shared cache never (clicks count)
    cache = f"private, max-age={ttl}" if ttl > 0 else "no-store"
    raise web.HTTPFound(target, headers={"Cache-Control": cache})


async def product_photo(request: web.Request) -> web.StreamResponse:
    """A product photo, ``thumb`` (400 px) or ``full`` (1080 px), JPEG, cacheable."""
    size = request.match_info["size"]
    try:
        product_id = int(request.match_info["product_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    try:
        async with request.app[DB].read() as session:
            image_key = await photos.photo_key(session, product_id, size)
        etag = photos.etag_of(image_key, size)
        tagged = request.query.get("v") == photos.tag(image_key)
        headers = {"ETag": etag, "Cache-Control": PHOTO_CACHE_TAGGED if tagged else PHOTO_CACHE}
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        data = await photos.rendition(request.app[MEDIA], image_key, size)
    except NotFound:
        raise web.HTTPNotFound() from None
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CSP, nosniff and a referrer policy on every answer of the public routes."""
    if request.path.startswith(PUBLIC_PREFIXES):
        for name, value in pages.SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)


def setup(app: web.Application) -> None:
    app.router.add_get("/t/{code}", trip_page)
    app.router.add_get(r"/t/{code}/p/{position:\d+}", product_page)
    app.router.add_get("/t/{code}/qr.png", trip_qr)
    app.router.add_get("/t/{code}/card.png", trip_card)
    app.router.add_get("/j/{slug}", jastiper_page)
    app.router.add_get("/j/{slug}/avatar.jpg", jastiper_avatar)
    app.router.add_get("/s/{slug}", short_redirect)
    app.router.add_get(r"/p/{product_id:\d+}/{size}.jpg", product_photo)
    app.on_response_prepare.append(_security_headers)
